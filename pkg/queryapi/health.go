package queryapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// errStoreDown is the cancellation cause of calls waiting on a store that stopped
// answering.
var errStoreDown = errors.New("queryapi: the audit store stopped answering")

// storeGate probes the store and, the moment a probe fails, cancels every call
// waiting on it, so a frozen ClickHouse (connections open, no bytes) makes calls
// fail fast with 503 instead of hanging until the client gives up.
type storeGate struct {
	ping     func(context.Context) error
	interval time.Duration
	timeout  time.Duration

	mu     sync.Mutex
	err    error           // non-nil while the store is down
	down   context.Context // cancelled when the store goes down
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}
}

func newStoreGate(ping func(context.Context) error, interval, timeout time.Duration) *storeGate {
	g := &storeGate{ping: ping, interval: interval, timeout: timeout, stop: make(chan struct{}), done: make(chan struct{})}
	g.down, g.cancel = context.WithCancelCause(context.Background())
	go g.run()
	return g
}

func (g *storeGate) run() {
	defer close(g.done)
	t := time.NewTicker(g.interval)
	defer t.Stop()
	for {
		g.probe()
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
	}
}

func (g *storeGate) probe() {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	err := g.ping(ctx)
	cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case err != nil && g.err == nil:
		g.err = fmt.Errorf("%w: no answer to a ping within %v: %v", errStoreDown, g.timeout, err)
		g.cancel(g.err)
	case err == nil && g.err != nil:
		g.err = nil
		g.down, g.cancel = context.WithCancelCause(context.Background())
	}
}

// Err is nil while the store answers its probes.
func (g *storeGate) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Context returns parent, cancelled with errStoreDown as its cause as soon as the
// store is (or goes) down.
func (g *storeGate) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	g.mu.Lock()
	down, err := g.down, g.err
	g.mu.Unlock()
	if err != nil {
		cancel(err)
		return ctx, func() {}
	}
	stop := context.AfterFunc(down, func() { cancel(context.Cause(down)) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}

func (g *storeGate) Close() {
	close(g.stop)
	<-g.done
}
