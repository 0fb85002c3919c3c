package chainerapp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestReadyzWaitsForEveryStage(t *testing.T) {
	var r readiness
	r.want("chainer")
	r.want("writer")
	h := healthMux(&r, prometheus.NewRegistry())
	probe := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	steps := []struct {
		name    string
		started string
		code    int
		body    string
	}{
		{"none started", "", http.StatusServiceUnavailable, "starting: chainer, writer"},
		{"chainer started", "chainer", http.StatusServiceUnavailable, "starting: writer"},
		{"both started", "writer", http.StatusOK, "ok"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.started != "" {
				r.set(s.started)
			}
			code, body := probe("/readyz")
			if code != s.code || !strings.Contains(body, s.body) {
				t.Fatalf("/readyz = %d %q; want %d containing %q", code, body, s.code, s.body)
			}
		})
	}
	if code, _ := probe("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := probe("/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics = %d", code)
	}
}
