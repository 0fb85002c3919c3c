package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/gen"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// searchBenchStore returns a store holding the generated log (internal/gen defaults:
// 10M events, 40 tenants, 90 days, 4 partitions; TRAILKEEP_BENCH_SEARCH_EVENTS
// overrides the count). The database is kept between runs and regenerated only when
// its row count differs: generating and inserting 10M events takes minutes.
func searchBenchStore(b *testing.B) (*clickhouse.Store, gen.Options) {
	o := gen.Options{Events: 10_000_000}
	if v := os.Getenv("TRAILKEEP_BENCH_SEARCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("TRAILKEEP_BENCH_SEARCH_EVENTS: %v", err)
		}
		o.Events = n
	}
	ctx := context.Background()
	db := fmt.Sprintf("bench_search_%d", o.Events)
	store := benchDB(b, db)
	n, err := store.Count(ctx, clickhouse.ExportRequest{})
	if err != nil {
		b.Fatal(err)
	}
	if n == uint64(o.Events) {
		b.Logf("reusing %s (%d events)", db, n)
		return store, o
	}
	if err := store.Exec(ctx, "TRUNCATE TABLE "+db+".audit_events"); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	batches := make(chan []chain.Record, 2)
	done := make(chan error, 1)
	go func() {
		var err error
		for recs := range batches {
			if err == nil {
				err = store.InsertRecords(ctx, recs)
			}
		}
		done <- err
	}()
	_, gerr := gen.Generate(o, 50_000, func(recs []chain.Record) error { batches <- recs; return nil })
	close(batches)
	if err := <-done; err != nil || gerr != nil {
		b.Fatalf("generate: %v, insert: %v", gerr, err)
	}
	if err := store.Exec(ctx, "OPTIMIZE TABLE "+db+".audit_events FINAL"); err != nil {
		b.Logf("optimize: %v", err)
	}
	b.Logf("generated and stored %d events in %s", o.Events, time.Since(start).Round(time.Second))
	return store, o
}

// benchDB opens and migrates a benchmark database on the local server, kept between
// runs (with a hot window of ten years: the generated data is dated).
func benchDB(b *testing.B, db string) *clickhouse.Store {
	chtest.Start(b)
	store, err := clickhouse.Open(context.Background(), clickhouse.Options{Addr: []string{chtest.Addr}, Database: db, HotWindow: 3650 * 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if err := store.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return store
}

// BenchmarkSearch10M: first-page latency of the searches over the generated
// log, as the query API runs them (scoped to the caller's tenant) and as an
// all-tenant admin. Reports p50/p95/max over 40 searches of each kind.
func BenchmarkSearch10M(b *testing.B) {
	store, o := searchBenchStore(b)
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	after := end.Add(-30 * 24 * time.Hour).Format(time.DateOnly)
	before := end.Format(time.DateOnly)
	rng := rand.New(rand.NewPCG(7, 7))
	tenants := 40
	kinds := []struct {
		name   string
		scoped bool
		q      func() (string, string)
	}{
		{"actor+30d/tenant", true, func() (string, string) {
			t := gen.Tenant(rng.IntN(tenants))
			return t, fmt.Sprintf("actor:user:%s after:%s before:%s", gen.Actor(t, rng.IntN(20)), after, before)
		}},
		{"event-glob/tenant", true, func() (string, string) {
			return gen.Tenant(rng.IntN(tenants)), []string{"event:skill.*", "event:team.*", "event:rule.*", "event:tool_call.*"}[rng.IntN(4)]
		}},
		{"actor+30d/all-tenants", false, func() (string, string) {
			t := gen.Tenant(rng.IntN(tenants))
			return "", fmt.Sprintf("actor:user:%s after:%s before:%s", gen.Actor(t, rng.IntN(20)), after, before)
		}},
		{"event-glob/all-tenants", false, func() (string, string) {
			return "", []string{"event:skill.*", "event:team.*", "event:rule.*", "event:tool_call.*"}[rng.IntN(4)]
		}},
	}
	ctx := context.Background()
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			var lat []time.Duration
			hits := 0
			for b.Loop() {
				lat = lat[:0]
				for i := 0; i < 40; i++ {
					tenant, q := k.q()
					f, err := query.Compile(q, end)
					if err != nil {
						b.Fatal(err)
					}
					req := clickhouse.SearchRequest{Filter: f, Limit: 100}
					if tenant != "" {
						req.Tenants = []string{tenant}
					}
					start := time.Now()
					h, _, err := store.Search(ctx, req)
					lat = append(lat, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					hits += len(h)
				}
			}
			slices.Sort(lat)
			p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(p(0.5), "p50-ms")
			b.ReportMetric(p(0.95), "p95-ms")
			b.ReportMetric(p(1), "max-ms")
			b.ReportMetric(float64(hits)/float64(b.N*40), "hits/search")
			b.Logf("%s over %d events: p50 %.1f ms, p95 %.1f ms, max %.1f ms", k.name, o.Events, p(0.5), p(0.95), p(1))
		})
	}
}

// BenchmarkExport1M: streams exports of 250k and 1M generated events (one and four
// tenants) through the NDJSON encoder to a discarding writer, sampling the Go heap
// every 20 ms. Flat memory means the peak does not grow with the row count.
func BenchmarkExport1M(b *testing.B) {
	store, _ := searchBenchStore(b)
	ctx := context.Background()
	for _, n := range []int{1, 4} {
		var tenants []string
		for i := 0; i < n; i++ {
			tenants = append(tenants, gen.Tenant(i))
		}
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			var rows int
			var peak uint64
			for b.Loop() {
				rows = 0
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				stop := make(chan struct{})
				sampled := make(chan uint64)
				go func() {
					var m runtime.MemStats
					var p uint64
					t := time.NewTicker(20 * time.Millisecond)
					defer t.Stop()
					for {
						runtime.ReadMemStats(&m)
						p = max(p, m.HeapInuse)
						select {
						case <-stop:
							sampled <- p
							return
						case <-t.C:
						}
					}
				}()
				enc, _ := export.NewEncoder("ndjson", io.Discard)
				err := store.Export(ctx, clickhouse.ExportRequest{Tenants: tenants}, func(rec chain.Record) error {
					ev, err := event.Unmarshal(rec.Event)
					if err != nil {
						return err
					}
					rows++
					return enc.Write(rec, ev)
				})
				close(stop)
				peak = <-sampled
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows), "rows")
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds()*float64(b.N), "rows/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.Logf("exported %d rows: %.0f rows/s, peak heap in use %.1f MiB", rows, float64(rows)/b.Elapsed().Seconds()*float64(b.N), float64(peak)/(1<<20))
		})
	}
}
