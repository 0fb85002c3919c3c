package clickhouse_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chdb"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/proctest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/sink"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// BenchmarkEmbeddedInsert: what storing a chained event costs the in-process engine
// (trailkeep dev), background merges included. Records of 4 partitions (~450-byte
// events, 12 tenants) go through the ClickHouse writer's Sink as dev's writer sends
// them under a backlog: one insert of TRAILKEEP_BENCH_EMBEDDED_BATCH rows (default
// 2,500, dev's WRITER_BATCH_ROWS) at a time, the Merkle tree tables beside it. The
// timer covers the inserts and the wait until no merge runs; the process's CPU (Go
// and the engine's threads) is reported per 1,000 events.
//
// TRAILKEEP_BENCH_EMBEDDED_ALTER (statements separated by ';', {db} for the
// database) runs after the migration: a way to measure what an index, a
// projection or a codec of the DDL costs, by dropping or changing it.
func BenchmarkEmbeddedInsert(b *testing.B) {
	const events, partitions = 200000, 4
	batch := 2500
	if v := os.Getenv("TRAILKEEP_BENCH_EMBEDDED_BATCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < partitions {
			b.Fatalf("TRAILKEEP_BENCH_EMBEDDED_BATCH=%q: want a whole number of at least %d", v, partitions)
		}
		batch = n
	}
	recs := benchRecords(b, events, partitions)
	for b.Loop() {
		st := chtest.Embedded(b)
		ctx := context.Background()
		for _, stmt := range strings.Split(os.Getenv("TRAILKEEP_BENCH_EMBEDDED_ALTER"), ";") {
			if stmt = strings.TrimSpace(stmt); stmt != "" {
				if err := st.Exec(ctx, strings.ReplaceAll(stmt, "{db}", st.Database())); err != nil {
					b.Fatal(err)
				}
			}
		}
		sk := clickhouse.NewSink(st, clickhouse.SinkConfig{BatchRows: batch, BatchAge: time.Minute})
		for p := range int32(partitions) {
			if err := sk.OpenPartition(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		cpu0, t0 := proctest.SelfCPU(b), time.Now()
		for i := 0; i < len(recs); i += batch {
			sendRound(b, sk, recs[i:min(i+batch, len(recs))], partitions)
		}
		inserted := time.Since(t0)
		waitMerges(b, st.Database())
		cpu := proctest.SelfCPU(b) - cpu0
		b.ReportMetric(float64(events)/inserted.Seconds(), "events/s")
		b.ReportMetric(float64(cpu.Milliseconds())/float64(events/1000), "cpu-ms/1k-events")
		b.ReportMetric(time.Since(t0).Seconds(), "s-to-merged")
	}
}

// sendRound sends recs to sk as one batch per partition and waits until they are
// stored: one insert, since the rows reach the Sink's BatchRows together.
func sendRound(b *testing.B, sk *clickhouse.Sink, recs []chain.Record, partitions int) {
	b.Helper()
	ctx := context.Background()
	batches := make([]sink.Batch, partitions)
	for i, r := range recs {
		bt := &batches[r.Partition]
		bt.Partition = r.Partition
		bt.Records = append(bt.Records, sink.Record{Offset: int64(i), Chain: r})
	}
	var acks []sink.Ack
	for i := range batches {
		if len(batches[i].Records) == 0 {
			continue
		}
		a, err := sk.Send(ctx, &batches[i])
		if err != nil {
			b.Fatal(err)
		}
		acks = append(acks, a)
	}
	for _, a := range acks {
		if err := a.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRecords returns n records chained round-robin over partitions, each
// received and chained a microsecond after the one before.
func benchRecords(b *testing.B, n, partitions int) []chain.Record {
	b.Helper()
	log := chaintest.New(b, "bench", 0)
	at := time.Now().UTC()
	for i := range n {
		doc := map[string]any{"action": "skill.updated", "actor": map[string]any{"type": "user", "id": fmt.Sprintf("usr_%d", i%500), "email": "user@acme.example"},
			"resource": map[string]any{"type": "skill", "id": fmt.Sprintf("skl_%d", i), "name": "api-conventions"},
			"change":   map[string]any{"from_version": "1.4.0", "to_version": "1.5.0", "diff_summary": "Adjusted rate limiting instructions for payments endpoints"},
			"result":   map[string]any{"status": "success"}, "metadata": map[string]any{"request_id": fmt.Sprint(i), "team": "payments"}}
		log.Add(int32(i%partitions), fmt.Sprintf("tenant-%d", i%12), at.Add(time.Duration(i)*time.Microsecond), doc)
	}
	return log.Records
}

// waitMerges returns once no merge of db has run for 3 s.
func waitMerges(b *testing.B, db string) {
	b.Helper()
	e := chdb.Shared(b)
	quiet := 0
	for quiet < 6 {
		out, err := e.Query("SELECT count() FROM system.merges WHERE database = '"+db+"'", "TSV")
		if err != nil {
			b.Fatal(err)
		}
		if strings.TrimSpace(out) == "0" {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(500 * time.Millisecond)
	}
}
