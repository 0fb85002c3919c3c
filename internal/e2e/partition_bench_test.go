package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/gen"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// BenchmarkPartitionReads10M: what reading one chain partition costs over the
// generated 10M-event log (90 days, 4 partitions of 2.5M records, the database
// BenchmarkSearch10M keeps). A writer asks MaxSeq at every partition open and after
// a failed insert; trailctl verify --store and the query API's chain endpoint stream
// a partition with RecordsBetween; an all-tenant follower (trailctl tail -f, the
// console's live view) polls Follow every second. Reports the median of 20 MaxSeq
// calls, the scan of every row MaxSeq used to send (for comparison, timed the same
// way), the median of 20 all-tenant Head calls (a follower's start) and of 20
// Follow polls from the head (nothing new: what a waiting follower costs), and one
// RecordsBetween of a whole partition in records/s. The same for one of the 40
// tenants (a quarter million events, all in one partition, as ingest keys them):
// the median of 20 Head calls and of 20 Follow polls from its head.
func BenchmarkPartitionReads10M(b *testing.B) {
	store, _ := searchBenchStore(b)
	ctx := context.Background()
	median := func(fn func() error) time.Duration {
		var ds []time.Duration
		for range 20 {
			start := time.Now()
			if err := fn(); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	for b.Loop() {
		var top uint64
		maxSeq := median(func() error {
			seq, ok, err := store.MaxSeq(ctx, 0)
			if err == nil && !ok {
				b.Fatal("partition 0 holds nothing")
			}
			top = seq
			return err
		})
		scan := median(func() error {
			return store.Exec(ctx, "SELECT count(), max(seq) FROM "+store.Database()+".audit_events WHERE chain_partition = 0")
		})
		var head clickhouse.Position
		headTime := median(func() error {
			var err error
			head, err = store.Head(ctx, nil)
			return err
		})
		follow := median(func() error {
			recs, _, err := store.Follow(ctx, clickhouse.ExportRequest{}, head, clickhouse.MaxSearchLimit)
			if err == nil && len(recs) != 0 {
				b.Fatalf("%d records after the head of a quiet store", len(recs))
			}
			return err
		})
		tenant := []string{gen.Tenant(0)}
		var tenantHead clickhouse.Position
		tenantHeadTime := median(func() error {
			var err error
			tenantHead, err = store.Head(ctx, tenant)
			return err
		})
		tenantFollow := median(func() error {
			recs, _, err := store.Follow(ctx, clickhouse.ExportRequest{Tenants: tenant}, tenantHead, clickhouse.MaxSearchLimit)
			if err == nil && len(recs) != 0 {
				b.Fatalf("%d records after the head of a quiet tenant", len(recs))
			}
			return err
		})
		start := time.Now()
		var n uint64
		err := store.RecordsBetween(ctx, 0, 0, top+1, func(chain.Record) error { n++; return nil })
		if err != nil || n != top+1 {
			b.Fatalf("streamed %d of %d records: %v", n, top+1, err)
		}
		b.ReportMetric(float64(maxSeq.Microseconds())/1000, "maxseq-ms")
		b.ReportMetric(float64(scan.Microseconds())/1000, "fullscan-ms")
		b.ReportMetric(float64(follow.Microseconds())/1000, "follow-ms")
		b.ReportMetric(float64(headTime.Microseconds())/1000, "head-ms")
		b.ReportMetric(float64(tenantHeadTime.Microseconds())/1000, "tenant-head-ms")
		b.ReportMetric(float64(tenantFollow.Microseconds())/1000, "tenant-follow-ms")
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
	}
}

// BenchmarkHistogram10M: the all-tenant histogram the console draws with every
// search (60 buckets over the last week of the generated log, as an admin sees
// it), median of 20.
func BenchmarkHistogram10M(b *testing.B) {
	store, _ := searchBenchStore(b)
	ctx := context.Background()
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) // internal/gen's default end
	req := clickhouse.HistogramRequest{From: end.Add(-7 * 24 * time.Hour), To: end, Step: 7 * 24 * time.Hour / 60}
	for b.Loop() {
		var ds []time.Duration
		var total uint64
		for range 20 {
			start := time.Now()
			buckets, err := store.Histogram(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
			total = 0
			for _, bk := range buckets {
				total += bk.Count
			}
		}
		if total == 0 {
			b.Fatal("no event in the last week of the generated log")
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "ms")
		b.ReportMetric(float64(total), "events")
	}
}
