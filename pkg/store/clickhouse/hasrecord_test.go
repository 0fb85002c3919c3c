package clickhouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/sink"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// TestHasRecord: a record is stored once its event row and its leaf are, whatever
// day it was chained on (rows of other partitions and days around it), and not
// while either is missing.
func TestHasRecord(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		log := chaintest.New(t, "test", 0)
		base := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
		for i := range 30 {
			// Partition 2 chains a record every 3 hours (three days); partition 1
			// beside it every hour.
			log.Add(2, "acme", base.Add(time.Duration(3*i)*time.Hour+time.Duration(i)*time.Millisecond), chaintest.Doc("skill.updated", fmt.Sprint("u", i), "skill", "s"))
			log.Add(1, "globex", base.Add(time.Duration(i)*time.Hour), chaintest.Doc("skill.updated", "g", "skill", "s"))
		}
		if err := store.InsertRecords(ctx, log.Records[:40]); err != nil { // partition 2 seq 0..19
			t.Fatal(err)
		}
		for _, tc := range []struct {
			seq  uint64
			want bool
		}{{0, true}, {7, true}, {19, true}, {20, false}, {29, false}, {1 << 40, false}} {
			got, err := store.HasRecord(ctx, 2, tc.seq)
			if err != nil || got != tc.want {
				t.Errorf("HasRecord(2, %d) = %v, %v; want %v", tc.seq, got, err, tc.want)
			}
		}
		if got, err := store.HasRecord(ctx, 3, 0); err != nil || got {
			t.Errorf("HasRecord of a partition with nothing stored = %v, %v", got, err)
		}
		// A record alone in its day partition, with a fraction of a second: the
		// one ClickHouse 26.5 missed when its second was bound with toDateTime.
		lone := log.Add(4, "initech", base.Add(-5*24*time.Hour+123456789*time.Nanosecond), chaintest.Doc("skill.updated", "i", "skill", "s"))
		if err := store.InsertRecords(ctx, []chain.Record{lone}); err != nil {
			t.Fatal(err)
		}
		if got, err := store.HasRecord(ctx, 4, 0); err != nil || !got {
			t.Errorf("HasRecord of a record alone in its day = %v, %v; want true", got, err)
		}
		// A leaf without its event row (the tree's insert landed, the events' did
		// not yet) is not a stored record.
		if err := store.Exec(ctx, "ALTER TABLE "+store.Database()+".audit_events DELETE WHERE chain_partition = 2 AND seq = 19"); err != nil {
			t.Fatal(err)
		}
		waitMutations(t, store)
		if got, err := store.HasRecord(ctx, 2, 19); err != nil || got {
			t.Errorf("HasRecord with only the leaf stored = %v, %v", got, err)
		}
	})
}

// TestCheckpointOfAnotherWritersPartitionWaitsWithoutScanning: a checkpoint of a
// partition this Sink does not hold (another writer stores its rows) waits until
// ClickHouse holds them, asking once a second whether the last record is stored,
// never for the partition's highest seq (a scan of everything it ever stored).
func TestCheckpointOfAnotherWritersPartitionWaitsWithoutScanning(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		faults := clickhouse.Faults(store)
		log := chaintest.New(t, "test", 0)
		base := time.Now().UTC().Add(-time.Hour)
		for i := range 40 {
			log.Add(2, "acme", base.Add(time.Duration(i)*time.Second), chaintest.Doc("skill.updated", "u", "skill", "s"))
		}
		cp := log.Sign(2)
		if err := store.InsertRecords(ctx, log.Records[:20]); err != nil {
			t.Fatal(err)
		}
		s := clickhouse.NewSink(store, clickhouse.SinkConfig{})
		faults.Count(maxSeqSQL, "SELECT count(), min(toUnixTimestamp(chained_at))")
		done := make(chan error, 1)
		go func() {
			done <- s.DeliverCheckpoints(ctx, 2, []sink.Checkpoint{{Signed: cp, Size: 40}})
		}()
		select {
		case err := <-done:
			t.Fatalf("the checkpoint of 40 was delivered with 20 rows stored (%v)", err)
		case <-time.After(2500 * time.Millisecond):
		}
		if err := store.InsertRecords(ctx, log.Records[20:]); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the checkpoint still waits 10 s after its rows were stored")
		}
		if cps, err := store.Checkpoints(ctx, 2); err != nil || len(cps) != 1 {
			t.Fatalf("%d checkpoints stored (%v), want 1", len(cps), err)
		}
		if n := faults.Counted(0); n != 0 {
			t.Errorf("asked for the partition's highest seq %d times", n)
		}
		if n := faults.Counted(1); n < 2 {
			t.Errorf("asked whether the record is stored %d times; the wait is meant to ask ClickHouse", n)
		}
	})
}
