package chainerapp

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/chainer"
)

// TestChainerSeriesAreServed: every chainer counter is on /metrics, so a refused
// partition or a loop of aborts can be alerted on. (No broker is reached: the client
// connects on first use.)
func TestChainerSeriesAreServed(t *testing.T) {
	skey, vkey, err := chain.GenerateKey("metrics")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := chain.NewSigner(skey)
	verifiers, _ := chain.NewVerifiers(vkey)
	c, err := chainer.New(chainer.Config{Brokers: []string{"127.0.0.1:1"}, TransactionalID: "metrics-test", Deployment: "test", Signer: signer, Verifiers: verifiers})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	registerChainer(reg, c)
	rec := httptest.NewRecorder()
	healthMux(&readiness{}, reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, s := range chainerSeries {
		if !strings.Contains(rec.Body.String(), s.name+" 0\n") {
			t.Errorf("/metrics lacks %s:\n%s", s.name, rec.Body.String())
		}
	}
	if n := reflect.TypeOf(chainer.Stats{}).NumField(); len(chainerSeries) != n {
		t.Errorf("%d chainer series for the %d counters of chainer.Stats: add the new one to chainerSeries", len(chainerSeries), n)
	}
}
