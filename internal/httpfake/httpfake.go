// Package httpfake is what the in-process receivers (sink/splunk/hectest,
// sink/datadog/ddtest) share: serving a handler on an address that can be closed and
// served again on the same address, so a test can take a receiver down and bring it
// back.
package httpfake

import (
	"net"
	"net/http"
	"sync"
)

// Listener serves one handler at a time.
type Listener struct {
	mu  sync.Mutex
	srv *http.Server
}

// Listen serves h on addr ("127.0.0.1:0" for any port) and returns the base URL.
func (l *Listener) Listen(addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h}
	l.mu.Lock()
	l.srv = srv
	l.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops listening; connections are refused until the next Listen.
func (l *Listener) Close() {
	l.mu.Lock()
	srv := l.srv
	l.srv = nil
	l.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}
