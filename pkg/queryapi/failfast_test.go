package queryapi_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// freezer is a TCP proxy to ClickHouse that can stop moving bytes while keeping
// every connection open and accepting new ones: to a client it looks exactly like
// a server stopped with SIGSTOP, without stopping the server other tests share.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	f.cond = sync.NewCond(&f.mu)
	var conns []net.Conn
	var cmu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			cmu.Lock()
			conns = append(conns, c, up)
			cmu.Unlock()
			go f.pipe(up, c)
			go f.pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		f.set(false)
		ln.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
	})
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		f.mu.Lock()
		for f.frozen {
			f.cond.Wait()
		}
		f.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (f *freezer) set(frozen bool) {
	f.mu.Lock()
	f.frozen = frozen
	f.cond.Broadcast()
	f.mu.Unlock()
}

// TestFrozenStoreFailsFast: with ClickHouse frozen, a call in flight and a new
// call are answered 503 with Retry-After within 2 s, Ready reports it within 5 s,
// and everything recovers when the server answers again.
func TestFrozenStoreFailsFast(t *testing.T) {
	direct := chtest.Store(t)
	fz := newFreezer(t, chtest.Addr)
	ctx := context.Background()
	store, err := clickhouse.Open(ctx, clickhouse.Options{Addr: []string{fz.ln.Addr().String()}, Database: direct.Database()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	broker := kafkatest.Shared(t)
	topic := kafkatest.Topic("audit.events.failfast")
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{broker.Addr}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(ctx)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(cctx, prod.Client(), kafka.Topic{Name: topic, Partitions: 1, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	ts, secrets := tokens(t, tokenSpec{"auditor", "auditor", []string{"acme"}})
	api, err := queryapi.New(queryapi.Options{Store: store, Tokens: ts, Publisher: prod,
		SQL: clickhouse.SQLLimits{MaxRows: 100, MaxTime: 4 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	hs := httptest.NewServer(api.Handler())
	defer hs.Close()
	callBody := func(method, path, body string) (int, http.Header, []byte, time.Duration) {
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secrets["auditor"])
		start := time.Now()
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header, b, time.Since(start)
	}
	call := func(method, path, body string) (int, http.Header, time.Duration) {
		code, h, _, took := callBody(method, path, body)
		return code, h, took
	}
	if code, _, _ := call("GET", "/v1/events", ""); code != 200 {
		t.Fatalf("before the freeze: %d", code)
	}
	// Over the time limit: a 400 naming it, within the limit + 2 s.
	code, _, body, took := callBody("POST", "/v1/sql", `{"sql":"SELECT sleep(3) AS s UNION ALL SELECT sleep(3) UNION ALL SELECT sleep(3)"}`)
	if code != 400 || !strings.Contains(string(body), `"rule":"limit"`) || !strings.Contains(string(body), "max_execution_time=4s") || took > 6*time.Second {
		t.Fatalf("a statement over the 4 s limit: %d after %v: %s", code, took, body)
	}

	inFlight := make(chan [2]any, 1)
	go func() {
		code, h, _ := call("POST", "/v1/sql", `{"sql":"SELECT sleep(3) AS s"}`)
		inFlight <- [2]any{code, h.Get("Retry-After")}
	}()
	time.Sleep(500 * time.Millisecond)
	fz.set(true)
	frozenAt := time.Now()
	r := <-inFlight
	if took := time.Since(frozenAt); r[0] != 503 || r[1] == "" || took > 2*time.Second+300*time.Millisecond {
		t.Errorf("the call in flight when the store froze: %v Retry-After %q after %v; want 503 with Retry-After within 2 s", r[0], r[1], took)
	}
	code, h, took := call("GET", "/v1/events", "")
	if code != 503 || h.Get("Retry-After") == "" || took > 2*time.Second {
		t.Errorf("a call to the frozen store: %d Retry-After %q after %v; want 503 with Retry-After within 2 s", code, h.Get("Retry-After"), took)
	}
	if api.Ready() == nil {
		t.Errorf("Ready reports nothing %v after the freeze", time.Since(frozenAt))
	}

	fz.set(false)
	deadline := time.Now().Add(10 * time.Second)
	for api.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the store answers again but Ready still reports %v", api.Ready())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, _ := call("GET", "/v1/events", ""); code != 200 {
		t.Fatalf("after the freeze: %d", code)
	}
}
