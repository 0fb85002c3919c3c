package clickhouse_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// chainedFixture produces chained records of several partitions to a fresh topic.
type chainedFixture struct {
	t      *testing.T
	cl     *kgo.Client
	topic  string
	chains map[int32]*chain.Chain
	recs   map[int32][]chain.Record
}

func newChainedFixture(t *testing.T, broker string, parts int32) *chainedFixture {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f := &chainedFixture{t: t, cl: cl, topic: kafkatest.Topic("writer") + ".chained", chains: map[int32]*chain.Chain{}, recs: map[int32][]chain.Record{}}
	if err := kafka.EnsureTopics(context.Background(), cl, kafka.Topic{Name: f.topic, Partitions: parts, Replication: 1}, kafka.Topic{Name: f.topic + ".cp", Partitions: parts, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < parts; p++ {
		f.chains[p] = chain.New(p)
	}
	return f
}

// add appends n events to partition p's chain; produce sends them when true.
func (f *chainedFixture) add(p int32, n int, produce bool) []chain.Record {
	f.t.Helper()
	var out []chain.Record
	for i := 0; i < n; i++ {
		c := f.chains[p]
		at := time.Now().UTC()
		doc := map[string]any{"action": "skill.updated", "actor": map[string]any{"type": "user", "id": "usr"},
			"resource": map[string]any{"type": "skill", "id": fmt.Sprintf("skl_%d_%d", p, c.Size())}}
		if err := (event.Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: at}).Apply(doc); err != nil {
			f.t.Fatal(err)
		}
		_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			f.t.Fatal(err)
		}
		rec, err := c.Append(canon, at)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, rec)
		if produce {
			val, _ := rec.MarshalJSON()
			if err := f.cl.ProduceSync(context.Background(), &kgo.Record{Topic: f.topic, Partition: p, Value: val}).FirstErr(); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	f.recs[p] = append(f.recs[p], out...)
	return out
}

// committed returns the group's committed offset per partition of the topic.
func (f *chainedFixture) committed(group string) map[int32]int64 {
	f.t.Helper()
	offs, err := kadm.NewClient(f.cl).FetchOffsets(context.Background(), group)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == f.topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// startWriter runs a writer with small batches; done delivers Run's result, and stop
// cancels it and returns that result (nil for a clean cancel).
func startWriter(t *testing.T, store *clickhouse.Store, broker, group string, f *chainedFixture) (w *clickhouse.Writer, done <-chan error, stop func() error) {
	t.Helper()
	w, err := clickhouse.NewWriter(store, clickhouse.WriterConfig{Brokers: []string{broker}, Group: group,
		ChainedTopic: f.topic, CheckpointTopic: f.topic + ".cp", BatchRows: 50, BatchAge: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); w.Close() })
	return w, errc, func() error {
		cancel()
		err := <-errc
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWriterCommitsOnlyStoredBatches: while ClickHouse refuses inserts the writer
// keeps retrying and its committed offsets never pass what is stored; once inserts
// work again it catches up, and every record is stored exactly once.
func TestWriterCommitsOnlyStoredBatches(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		f := newChainedFixture(t, broker.Addr, 2)
		group := f.topic + "-writer"
		ctx := context.Background()
		for p := int32(0); p < 2; p++ {
			f.add(p, 120, true)
		}
		w, _, stop := startWriter(t, store, broker.Addr, group, f)
		waitFor(t, "the first 240 rows", func() bool { return w.Stats().Rows == 240 })
		waitFor(t, "their offsets to be committed", func() bool { c := f.committed(group); return c[0] == 120 && c[1] == 120 })

		db := store.Database()
		if err := store.Exec(ctx, "RENAME TABLE "+db+".audit_events TO "+db+".audit_events_away"); err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 2; p++ {
			f.add(p, 150, true)
		}
		time.Sleep(3 * time.Second) // the writer fails, backs off, retries
		if c := f.committed(group); c[0] != 120 || c[1] != 120 {
			t.Fatalf("offsets committed past the stored rows while inserts failed: %v", c)
		}
		if err := store.Exec(ctx, "RENAME TABLE "+db+".audit_events_away TO "+db+".audit_events"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the writer to catch up", func() bool { c := f.committed(group); return c[0] == 270 && c[1] == 270 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 2; p++ {
			var seqs []uint64
			if err := store.Records(ctx, p, 0, func(r chain.Record) error { seqs = append(seqs, r.Seq); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(seqs) != 270 {
				t.Fatalf("partition %d holds %d rows, want 270 exactly once", p, len(seqs))
			}
			for i, s := range seqs {
				if s != uint64(i) {
					t.Fatalf("partition %d row %d has seq %d", p, i, s)
				}
			}
		}
	})
}

// TestWriterStopsOnGap: when ClickHouse lacks rows that audit.chained skips over, the
// writer stops with ErrGap rather than store a chain with a hole.
func TestWriterStopsOnGap(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		f := newChainedFixture(t, broker.Addr, 1)
		if err := store.InsertRecords(context.Background(), f.add(0, 5, false)); err != nil { // seq 0-4 stored
			t.Fatal(err)
		}
		f.add(0, 3, false) // seq 5-7: lost between ClickHouse and Kafka
		f.add(0, 2, true)  // seq 8-9 in audit.chained
		_, done, _ := startWriter(t, store, broker.Addr, f.topic+"-gap", f)
		select {
		case err := <-done:
			if !errors.Is(err, clickhouse.ErrGap) || !strings.Contains(err.Error(), "partition 0: ClickHouse holds up to seq 4") || !strings.Contains(err.Error(), "has seq 8") {
				t.Fatalf("writer returned %v, want ErrGap naming stored seq 4 and the record's seq 8", err)
			}
			t.Log(err)
		case <-time.After(60 * time.Second):
			t.Fatal("the writer did not stop on a seq gap")
		}
		var n int
		if err := store.Records(context.Background(), 0, 0, func(chain.Record) error { n++; return nil }); err != nil || n != 5 {
			t.Fatalf("after the gap: %d rows (%v), want the 5 stored before it and nothing after", n, err)
		}
	})
}
