package clickhouse_test

import (
	"context"
	"encoding/json"
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
			f.produceRaw(p, val)
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

// startWriter runs a writer with small batches (changed by the edits); done
// delivers Run's result, and stop cancels it and returns that result (nil for a
// clean cancel).
func startWriter(t *testing.T, store *clickhouse.Store, broker, group string, f *chainedFixture, edits ...func(*clickhouse.WriterConfig)) (w *clickhouse.Writer, done <-chan error, stop func() error) {
	t.Helper()
	cfg := clickhouse.WriterConfig{Brokers: []string{broker}, Group: group,
		ChainedTopic: f.topic, CheckpointTopic: f.topic + ".cp", DeadLetterTopic: f.topic + ".dl", BatchRows: 50, BatchAge: 100 * time.Millisecond}
	for _, e := range edits {
		e(&cfg)
	}
	w, err := clickhouse.NewWriter(store, cfg)
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
	// The events and the tree's leaves are two inserts side by side: either failing
	// alone holds the commit, and each is retried until stored.
	for _, away := range []string{"audit_events", "audit_leaves"} {
		t.Run(away+" refused", func(t *testing.T) {
			chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
				broker := kafkatest.Shared(t)
				f := newChainedFixture(t, broker.Addr, 2)
				group := f.topic + "-writer"
				ctx := context.Background()
				for p := int32(0); p < 2; p++ {
					f.add(p, 120, true)
				}
				w, _, stop := startWriter(t, store, broker.Addr, group, f)
				waitFor(t, "the first 240 rows", func() bool { return w.Stats().Rows >= 240 })
				waitFor(t, "their offsets to be committed", func() bool { c := f.committed(group); return c[0] == 120 && c[1] == 120 })

				table := store.Database() + "." + away
				if err := store.Exec(ctx, "RENAME TABLE "+table+" TO "+table+"_away"); err != nil {
					t.Fatal(err)
				}
				for p := int32(0); p < 2; p++ {
					f.add(p, 150, true)
				}
				time.Sleep(3 * time.Second) // the writer fails, backs off, retries
				if c := f.committed(group); c[0] != 120 || c[1] != 120 {
					t.Fatalf("offsets committed past the stored rows while inserts failed: %v", c)
				}
				if err := store.Exec(ctx, "RENAME TABLE "+table+"_away TO "+table); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the writer to catch up", func() bool { c := f.committed(group); return c[0] == 270 && c[1] == 270 })
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				for p := int32(0); p < 2; p++ {
					wantSeqs(t, store, p, 270)
					wantTree(t, store, p, f.recs[p])
				}
			})
		})
	}
}

// TestWriterBatchesAcrossPartitions: BatchRows counts the rows of all partitions
// together. Four partitions of 10 rows fill a 40-row insert at once, so with a
// BatchAge of an hour they are stored in one insert now; a per-partition threshold
// (10 < 40 each) would hold every row for the hour.
func TestWriterBatchesAcrossPartitions(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		f := newChainedFixture(t, broker.Addr, 4)
		for p := int32(0); p < 4; p++ {
			f.add(p, 10, true)
		}
		w, _, stop := startWriter(t, store, broker.Addr, f.topic+"-writer", f, func(c *clickhouse.WriterConfig) {
			c.BatchRows, c.BatchAge = 40, time.Hour
		})
		waitFor(t, "40 rows", func() bool { return w.Stats().Rows == 40 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); st.Batches != 1 {
			t.Errorf("the 40 rows took %d inserts, want 1: %+v", st.Batches, st)
		}
		for p := int32(0); p < 4; p++ {
			wantSeqs(t, store, p, 10)
		}
	})
}

// TestWriterSendsABacklogsRemainderAtOnce: after a full insert (BatchRows), rows
// that arrive once every partition has caught up are a backlog's remainder and go
// at once, not after BatchAge (an hour here); after that small insert, a trickle
// is batched by BatchAge again.
func TestWriterSendsABacklogsRemainderAtOnce(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		f := newChainedFixture(t, broker.Addr, 1)
		f.add(0, 40, true)
		w, _, stop := startWriter(t, store, broker.Addr, f.topic+"-remainder", f, func(c *clickhouse.WriterConfig) {
			c.BatchRows, c.BatchAge = 40, time.Hour
		})
		waitFor(t, "the full insert of 40 rows", func() bool { return w.Stats().Rows == 40 })
		f.add(0, 5, true)
		waitFor(t, "the remainder of 5 rows, without waiting an hour", func() bool { return w.Stats().Rows == 45 })
		f.add(0, 3, true) // a trickle now: the last insert was not full
		time.Sleep(2 * time.Second)
		if st := w.Stats(); st.Rows != 45 || st.Batches != 2 {
			t.Errorf("after a small insert, 3 more rows were inserted before BatchAge: %+v", st)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWriterDoesNotHoldAFullBuffer: a batch the Runner took from a full buffer is
// inserted without waiting for BatchRows or BatchAge (both out of reach here), since
// its partition cannot send more rows until that insert ends. With events large
// enough that two buffers hold fewer than BatchRows, the writer used to wait out
// BatchAge for every insert. All but the last buffer's worth must be stored.
func TestWriterDoesNotHoldAFullBuffer(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		f := newChainedFixture(t, broker.Addr, 1)
		const total, buffer = 2000, 64 << 10
		f.add(0, total, true)
		w, _, stop := startWriter(t, store, broker.Addr, f.topic+"-full", f, func(c *clickhouse.WriterConfig) {
			c.BatchRows, c.BatchAge, c.BufferBytes = 1_000_000, time.Hour, buffer
		})
		// Chained records here are over 400 bytes.
		waitFor(t, "all but the last buffer's rows, without waiting an hour", func() bool { return w.Stats().Rows >= total-buffer/400 })
		t.Logf("%d of %d rows stored in %d inserts", w.Stats().Rows, total, w.Stats().Batches)
		if err := stop(); err != nil {
			t.Fatal(err)
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

// produceRaw sends value to partition p of the fixture's chained topic.
func (f *chainedFixture) produceRaw(p int32, value []byte) {
	f.t.Helper()
	if err := f.cl.ProduceSync(context.Background(), &kgo.Record{Topic: f.topic, Partition: p, Value: value}).FirstErr(); err != nil {
		f.t.Fatal(err)
	}
}

// stored returns partition p's seqs in ClickHouse, in order.
func storedSeqs(t *testing.T, store *clickhouse.Store, p int32) []uint64 {
	t.Helper()
	var seqs []uint64
	if err := store.Records(context.Background(), p, 0, func(r chain.Record) error { seqs = append(seqs, r.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// wantSeqs fails unless partition p holds seq 0..n-1, each once.
func wantSeqs(t *testing.T, store *clickhouse.Store, p int32, n int) {
	t.Helper()
	seqs := storedSeqs(t, store, p)
	if len(seqs) != n {
		t.Fatalf("partition %d holds %d rows, want %d exactly once", p, len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i) {
			t.Fatalf("partition %d row %d has seq %d", p, i, s)
		}
	}
}

// TestWriterParksUndecodableRecords: a value in audit.chained that is not a chained
// record is not part of the chain; it goes to the writer's dead-letter topic with
// the reason and its source, and the rows around it are stored (it used to stop the
// writer for good, holding back every later row).
func TestWriterParksUndecodableRecords(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		f := newChainedFixture(t, broker.Addr, 1)
		f.add(0, 30, true)
		f.produceRaw(0, []byte(`{"not":"a chained record"}`))
		f.add(0, 30, true)
		w, _, stop := startWriter(t, store, broker.Addr, f.topic+"-dl", f)
		waitFor(t, "60 rows", func() bool { return w.Stats().Rows == 60 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, store, 0, 60)
		dl := kafkatest.ReadAll(t, broker.Addr, f.topic+".dl")
		if len(dl) != 1 || string(dl[0].Value) != `{"not":"a chained record"}` {
			t.Fatalf("dead letters %d, want the one undecodable record", len(dl))
		}
		heads := map[string]string{}
		for _, h := range dl[0].Headers {
			heads[h.Key] = string(h.Value)
		}
		if heads["source"] != f.topic+"/0@30" || heads["kind"] != "undecodable" || heads["sink"] != "clickhouse" || heads["reason"] == "" {
			t.Fatalf("dead letter headers %v, want sink clickhouse, kind undecodable, a reason and source %s/0@30", heads, f.topic)
		}
	})
}

// TestWriterStoresCheckpointsAfterTheirRows: a checkpoint that reaches the writer
// before the rows it covers (another partition of another topic, so Kafka orders
// nothing between them) waits for them: a stored checkpoint never covers rows
// ClickHouse does not hold, so a proof against it never points at a missing row.
func TestWriterStoresCheckpointsAfterTheirRows(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		_, f, late, w, stop := startCheckpointAhead(t, store)
		time.Sleep(1500 * time.Millisecond) // the checkpoint has been delivered and waits
		if cps, err := store.Checkpoints(context.Background(), 0); err != nil || len(cps) != 0 {
			t.Fatalf("checkpoint of size 40 stored with 20 rows in ClickHouse (%d checkpoints, %v)", len(cps), err)
		}
		f.produceRecords(0, late)
		waitFor(t, "the checkpoint", func() bool { return w.Stats().Checkpoints == 1 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, store, 0, 40)
	})
}

// checkpointAhead produces, beside 20 chained rows of partition 0, a signed
// checkpoint of size 40 whose last 20 rows are returned, not yet produced.
func checkpointAhead(t *testing.T, f *chainedFixture) (late []chain.Record) {
	t.Helper()
	skey, _, err := chain.GenerateKey("test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := chain.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	f.add(0, 20, true)
	late = f.add(0, 20, false)
	cp, err := f.chains[0].Sign(chain.Origin("test", f.topic, 0), signer)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(cp)
	if err := f.cl.ProduceSync(context.Background(), &kgo.Record{Topic: f.topic + ".cp", Partition: 0, Value: raw}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return late
}

// startCheckpointAhead starts a writer on a fresh one-partition topic whose first
// 20 rows are stored and whose checkpoint of size 40 has been produced ahead of the
// last 20 rows (late, not yet produced); store's connection counts and injects
// faults from here on.
func startCheckpointAhead(t *testing.T, store *clickhouse.Store) (faults *clickhouse.FaultConn, f *chainedFixture, late []chain.Record, w *clickhouse.Writer, stop func() error) {
	t.Helper()
	broker := kafkatest.Shared(t)
	faults = clickhouse.Faults(store)
	f = newChainedFixture(t, broker.Addr, 1)
	late = checkpointAhead(t, f)
	w, _, stop = startWriter(t, store, broker.Addr, f.topic+"-cp", f)
	waitFor(t, "the first 20 rows", func() bool { return w.Stats().Rows == 20 })
	return faults, f, late, w, stop
}

// produceRecords produces recs to partition p as the chainer writes them.
func (f *chainedFixture) produceRecords(p int32, recs []chain.Record) {
	for _, r := range recs {
		val, _ := r.MarshalJSON()
		f.produceRaw(p, val)
	}
}

// maxSeqSQL is the statement every question for a partition's highest stored seq
// (Store.MaxSeq) sends: the read of the per-day summary.
const maxSeqSQL = "SELECT chain_partition, day, countMerge(rows)"

// TestWriterWaitsForACheckpointsRowsWithoutAskingClickHouse: a checkpoint that
// arrives before its rows waits for the writer's own inserts; it does not ask
// ClickHouse for the partition's highest seq (a scan of the whole partition) while
// it waits, however long that is.
func TestWriterWaitsForACheckpointsRowsWithoutAskingClickHouse(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		faults, f, late, w, stop := startCheckpointAhead(t, store)
		faults.Count(maxSeqSQL)
		time.Sleep(2500 * time.Millisecond) // the checkpoint has been delivered and waits
		if n := faults.Counted(0); n != 0 {
			t.Fatalf("the waiting checkpoint asked ClickHouse for the partition's highest seq %d times", n)
		}
		f.produceRecords(0, late)
		waitFor(t, "the checkpoint", func() bool { return w.Stats().Checkpoints == 1 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if n := faults.Counted(0); n != 0 {
			t.Fatalf("asked ClickHouse for the partition's highest seq %d times", n)
		}
	})
}

// TestWriterLearnsRowsStoredBehindALostAcknowledgement: an insert ClickHouse
// applies but whose answer is lost is retried without duplicating a row, and the
// writer learns from the retry that the rows are stored: a checkpoint covering
// them is stored without any later insert of that partition (the writer trusts
// what it knows of its own partitions and no longer asks ClickHouse while one
// waits).
func TestWriterLearnsRowsStoredBehindALostAcknowledgement(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		faults, f, late, w, stop := startCheckpointAhead(t, store)
		faults.LoseAcks("audit_events", 1)
		f.produceRecords(0, late)
		waitFor(t, "the checkpoint", func() bool { return w.Stats().Checkpoints == 1 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, store, 0, 40)
	})
}

// TestWriterDoesNotResendRowsItCannotCheck: an insert is applied but its
// acknowledgement lost, and ClickHouse then cannot say what it holds (the reads of
// the stored maxima fail, as while it restarts). The writer must not send the rows
// again until it knows they are not stored: every row ends up stored once.
func TestWriterDoesNotResendRowsItCannotCheck(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		faults := clickhouse.Faults(store)
		f := newChainedFixture(t, broker.Addr, 1)
		f.add(0, 20, true)
		w, _, stop := startWriter(t, store, broker.Addr, f.topic+"-resend", f)
		waitFor(t, "the first 20 rows", func() bool { return w.Stats().Rows == 20 })
		faults.Count(maxSeqSQL)
		faults.LoseAcks("audit_events", 1)
		faults.FailNext(maxSeqSQL, 2)
		f.add(0, 20, true)
		// Two failed reads of the stored maxima and a third that answers take 1+2+4 s
		// of backoff; a writer that resent the rows instead stops asking.
		for deadline := time.Now().Add(15 * time.Second); faults.Counted(0) < 3 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // the third read's answer is applied
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		faults.FailNext(maxSeqSQL, 0)
		wantSeqs(t, store, 0, 40)
		if n := faults.Counted(0); n < 3 {
			t.Fatalf("the stored maxima were read %d times; the test meant two failures and an answer", n)
		}
	})
}

// TestWritersSharingAGroupStoreEachRowOnce: writers joining and leaving one group
// while rows stream in move partitions between them mid-batch; every row is stored
// exactly once and in order, because a revoked partition's insert completes before
// the next owner reads what is stored.
func TestWritersSharingAGroupStoreEachRowOnce(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		const parts = 4
		f := newChainedFixture(t, broker.Addr, parts)
		group := f.topic + "-shared"
		wave := func() {
			for p := int32(0); p < parts; p++ {
				f.add(p, 200, true)
			}
		}
		total := func(ws ...*clickhouse.Writer) (n int64) {
			for _, w := range ws {
				n += w.Stats().Rows
			}
			return n
		}
		a, _, stopA := startWriter(t, store, broker.Addr, group, f)
		wave()
		b, _, stopB := startWriter(t, store, broker.Addr, group, f) // rebalance while a inserts
		wave()
		waitFor(t, "two waves", func() bool { return total(a, b) == 2*parts*200 })
		wave()
		if err := stopA(); err != nil { // a leaves while the third wave streams in
			t.Fatal(err)
		}
		wave()
		waitFor(t, "four waves", func() bool { return total(a, b) == 4*parts*200 })
		if err := stopB(); err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < parts; p++ {
			wantSeqs(t, store, p, 4*200)
			wantTree(t, store, p, f.recs[p])
		}
		if s := a.Stats().Rows + b.Stats().Rows; s != 4*parts*200 {
			t.Fatalf("writers stored %d rows, want %d", s, 4*parts*200)
		}
	})
}

// TestWriterFillsTheTreeOfAnOlderStore: a store written before the tree tables
// existed (events only) gets the subtrees of its old range from the writer that opens
// the partition, computed from the stored events, along with the new rows' own.
func TestWriterFillsTheTreeOfAnOlderStore(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		broker := kafkatest.Shared(t)
		f := newChainedFixture(t, broker.Addr, 1)
		if err := store.InsertRecords(context.Background(), f.add(0, 600, false)); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"audit_leaves", "audit_subtrees"} {
			if err := store.Exec(context.Background(), "TRUNCATE TABLE "+store.Database()+"."+table); err != nil {
				t.Fatal(err)
			}
		}
		f.add(0, 100, true)
		w, _, stop := startWriter(t, store, broker.Addr, f.topic+"-older", f)
		waitFor(t, "the new rows", func() bool { return w.Stats().Rows == 100 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		wantTree(t, store, 0, f.recs[0])
	})
}
