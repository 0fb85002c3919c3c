package chainerapp

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readiness tracks which enabled stages have started their loop. A stage that fails
// ends the process, so "started" stays true for as long as /readyz is answered.
type readiness struct {
	mu      sync.Mutex
	pending map[string]bool // stage -> still starting
}

func (r *readiness) want(stage string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[string]bool{}
	}
	r.pending[stage] = true
}

func (r *readiness) set(stage string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, stage)
}

// waiting lists the stages not yet running, sorted.
func (r *readiness) waiting() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for s := range r.pending {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// healthMux serves the probes an orchestrator uses (/healthz, /readyz) and the
// process's metrics (/metrics): reg's series, the writer's among them, and the Go
// and process collectors.
func healthMux(r *readiness, reg *prometheus.Registry) http.Handler {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if wait := r.waiting(); len(wait) > 0 {
			http.Error(w, fmt.Sprintf("starting: %s", strings.Join(wait, ", ")), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}
