package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailkeep/trailkeep/internal/browsertest"
	"github.com/trailkeep/trailkeep/internal/gen"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/console"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
)

// BenchmarkConsoleFirstPage10M: in headless Chromium, the time from pressing Search
// in the console to the first page of results (100 rows) on screen, over the
// generated 10M-event log (searchBenchStore), through the real query API with its
// access events produced to the local broker. The token reads one tenant, as reader
// and auditor tokens do. Reports p50/p95/max over 20 searches of each kind.
func BenchmarkConsoleFirstPage10M(b *testing.B) {
	store, o := searchBenchStore(b)
	broker := kafkatest.Shared(b)
	topic := kafkatest.Topic("bench-console-access")
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{broker.Addr}, Topic: topic})
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close(context.Background())
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, prod.Client(), kafka.Topic{Name: topic, Partitions: 1, Replication: 1}); err != nil {
		b.Fatal(err)
	}
	tenant := gen.Tenant(7)
	secret := "tk_bench_console"
	tokens, err := queryapi.ParseTokens([]byte(fmt.Sprintf(`{"tokens":[{"name":"bench","sha256":"%x","role":"auditor","tenants":[%q]}]}`, sha256.Sum256([]byte(secret)), tenant)))
	if err != nil {
		b.Fatal(err)
	}
	api, err := queryapi.New(queryapi.Options{Store: store, Tokens: tokens, Publisher: prod})
	if err != nil {
		b.Fatal(err)
	}
	defer api.Close()
	mux := http.NewServeMux()
	mux.Handle("/v1/", api.Handler())
	mux.Handle(console.Prefix, console.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tab := browsertest.New(b, 20*time.Minute)
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/ui/#/signin")); err != nil {
		b.Fatal(err)
	}
	if _, err := browsertest.Eval[bool](tab, fmt.Sprintf(`sessionStorage.setItem('trailkeep.token', %q), true`, secret)); err != nil {
		b.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/ui/#/search"), chromedp.WaitVisible(chromedp.ID("q"))); err != nil {
		b.Fatal(err)
	}
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(9, 9))
	kinds := []struct {
		name string
		q    func() (q, after, before string)
	}{
		{"actor+30d", func() (string, string, string) {
			return "actor:user:" + gen.Actor(tenant, rng.IntN(20)), end.Add(-30 * 24 * time.Hour).Format(time.DateOnly), end.Format(time.DateOnly)
		}},
		{"event-glob", func() (string, string, string) {
			return []string{"event:skill.*", "event:team.*", "event:rule.*", "event:tool_call.*"}[rng.IntN(4)], "", ""
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			var lat []float64
			rows := 0
			for b.Loop() {
				lat = lat[:0]
				for range 20 {
					q, after, before := k.q()
					res, err := browsertest.Eval[[2]float64](tab, firstPageJS(q, after, before))
					if err != nil {
						b.Fatal(err)
					}
					lat = append(lat, res[0])
					rows += int(res[1])
				}
			}
			slices.Sort(lat)
			p := func(q float64) float64 { return lat[int(q*float64(len(lat)-1))] }
			b.ReportMetric(p(0.5), "p50-ms")
			b.ReportMetric(p(0.95), "p95-ms")
			b.ReportMetric(p(1), "max-ms")
			b.ReportMetric(float64(rows)/float64(b.N*20), "rows/page")
			b.Logf("%s, one tenant of %d events: first page on screen p50 %.0f ms, p95 %.0f ms, max %.0f ms", k.name, o.Events, p(0.5), p(0.95), p(1))
		})
	}
}

// firstPageJS fills the search form, presses Search and resolves, once the
// results are on screen, with [milliseconds, rows shown].
func firstPageJS(q, after, before string) string {
	return fmt.Sprintf(`(async () => {
	  const $ = (id) => document.getElementById(id);
	  $('q').value = %q; $('after').value = %q; $('before').value = %q; $('limit').value = '100';
	  $('search-status').textContent = ''; $('search-error').textContent = '';
	  const t0 = performance.now();
	  $('search-form').requestSubmit();
	  while (!/^(\d+ events|No events)/.test($('search-status').textContent)) {
	    if ($('search-error').textContent) throw new Error($('search-error').textContent);
	    await new Promise((r) => setTimeout(r, 2));
	  }
	  return [performance.now() - t0, document.querySelectorAll('#results-body tr').length];
	})()`, q, after, before)
}
