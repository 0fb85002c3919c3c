package clickhouse_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/proof"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// wantTree checks partition p's stored tree against recs (its whole log): every
// subtree a writer keeps is stored with the hash of its leaves, and proofs read
// through the store equal proofs from the leaves in memory.
func wantTree(t *testing.T, store *clickhouse.Store, p int32, recs []chain.Record) {
	t.Helper()
	leaves := make(chain.MemoryLeaves, len(recs))
	for i, r := range recs {
		leaves[i] = r.LeafHash
	}
	b, _, err := chain.NewTreeBuilder(chain.MemoryLeaves(nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []chain.Subtree
	for _, l := range leaves {
		if want, err = b.Append(l, want); err != nil {
			t.Fatal(err)
		}
	}
	src, ok := store.Leaves(context.Background(), p).(chain.TreeSource)
	if !ok {
		t.Fatal("the store's leaves are not a chain.TreeSource: proofs would read every leaf")
	}
	if _, ok := src.(proof.MismatchReporter); !ok {
		t.Fatal("the store's tree does not report damaged subtrees: proofs would fall back to the leaves in silence")
	}
	got := 0
	for level := uint(chain.TileHeight); level <= 24; level += chain.TileHeight {
		stored, err := src.Subtrees(level, []chain.IndexRange{{Begin: 0, End: 1 << 40}})
		if err != nil {
			t.Fatal(err)
		}
		got += len(stored)
		for _, st := range want {
			if uint(st.Level) == level && stored[st.Index] != st.Hash {
				t.Fatalf("partition %d subtree %d/%d stored as %s, want %s", p, level, st.Index, stored[st.Index], st.Hash)
			}
		}
	}
	if got != len(want) {
		t.Fatalf("partition %d: %d subtrees stored, want %d", p, got, len(want))
	}
	n := uint64(len(recs))
	for _, i := range []uint64{0, n / 3, n / 2, n - 1} {
		fromStore, err := chain.InclusionProof(src, i, n)
		if err != nil {
			t.Fatalf("partition %d: inclusion of %d in %d from the store: %v", p, i, n, err)
		}
		fromMemory, _ := chain.InclusionProof(leaves, i, n)
		if !slices.Equal(fromStore, fromMemory) {
			t.Fatalf("partition %d: inclusion of %d in %d differs between store and memory", p, i, n)
		}
		fromStore, err = chain.ConsistencyProof(src, i+1, n)
		if err != nil {
			t.Fatalf("partition %d: consistency %d→%d from the store: %v", p, i+1, n, err)
		}
		fromMemory, _ = chain.ConsistencyProof(leaves, i+1, n)
		if !slices.Equal(fromStore, fromMemory) {
			t.Fatalf("partition %d: consistency %d→%d differs between store and memory", p, i+1, n)
		}
	}
}

// treeLog is a log of n records of partition 0, chained an hour ago.
func treeLog(t *testing.T, name string, n int) *chaintest.Log {
	log := chaintest.New(t, name, 0)
	at := time.Now().UTC().Add(-time.Hour)
	for i := range n {
		log.Add(0, "acme", at, chaintest.Doc("skill.updated", "u@acme.example", "skill", fmt.Sprint(i)))
	}
	return log
}

// TestInsertRecordsKeepsTheTree: inserts that continue a partition's log, in pieces
// that end anywhere in a subtree, leave every subtree stored once, on both server
// generations.
func TestInsertRecordsKeepsTheTree(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		log := chaintest.New(t, "tree", 0)
		at := time.Now().UTC().Add(-time.Hour)
		for i := range 1300 {
			log.Add(int32(min(i/1000, 1)), "acme", at, chaintest.Doc("skill.updated", "u@acme.example", "skill", fmt.Sprint(i)))
		}
		for _, cut := range [][2]int{{0, 300}, {300, 513}, {513, 1300}} {
			if err := store.InsertRecords(context.Background(), log.Records[cut[0]:cut[1]]); err != nil {
				t.Fatal(err)
			}
		}
		wantTree(t, store, 0, log.Records[:1000])
		wantTree(t, store, 1, log.Records[1000:])
	})
}

// TestProofsOutliveTheHotWindow: once the oldest days of events and leaves expire,
// a record still in the hot window is proven from the subtrees kept for the expired
// range (without them the proof needs leaves that are gone).
func TestProofsOutliveTheHotWindow(t *testing.T) {
	store := chtest.Store(t)
	ctx := context.Background()
	log := chaintest.New(t, "expiry", 0)
	now := time.Now().UTC()
	for i := range 700 {
		at := now.Add(-100 * 24 * time.Hour)
		if i >= 512 {
			at = now.Add(-time.Hour)
		}
		log.Add(0, "acme", at, chaintest.Doc("skill.updated", "u@acme.example", "skill", fmt.Sprint(i)))
	}
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	if _, err := store.DropExpired(ctx, now); err != nil {
		t.Fatal(err)
	}
	if got := legacyTSV(t, "leaves", "SELECT count(), min(seq) FROM "+store.Database()+".audit_leaves"); got != "188\t512\n" {
		t.Fatalf("audit_leaves after expiry holds (count, min seq) %q, want 188 leaves from seq 512", got)
	}
	leaves := make(chain.MemoryLeaves, len(log.Records))
	for i, r := range log.Records {
		leaves[i] = r.LeafHash
	}
	for _, i := range []uint64{512, 600, 699} {
		got, err := chain.InclusionProof(store.Leaves(ctx, 0), i, 700)
		if err != nil {
			t.Fatalf("inclusion of %d after the first 512 expired: %v", i, err)
		}
		if want, _ := chain.InclusionProof(leaves, i, 700); !slices.Equal(got, want) {
			t.Fatalf("inclusion of %d differs from the proof over all leaves", i)
		}
	}
}

// TestMigrationFillsTheLeavesOfAnOlderStore: upgrading a store written before the
// tree tables existed copies its events' leaves server-side; FillTree then stores
// the subtrees, and proofs read the tree.
func TestMigrationFillsTheLeavesOfAnOlderStore(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		log := treeLog(t, "upgrade", 700)
		if err := store.InsertRecords(ctx, log.Records); err != nil {
			t.Fatal(err)
		}
		db := store.Database()
		for _, stmt := range []string{"DROP TABLE " + db + ".audit_leaves", "DROP TABLE " + db + ".audit_subtrees", "TRUNCATE TABLE " + db + ".schema_migrations"} {
			if err := store.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		src := store.Leaves(ctx, 0).(chain.TreeSource)
		if got, err := src.Subtrees(chain.TileHeight, []chain.IndexRange{{Begin: 0, End: 10}}); err != nil || len(got) != 0 {
			t.Fatalf("subtrees right after the migration: %d, %v; want none", len(got), err)
		}
		filled, err := store.FillTree(ctx, 0, 700)
		if err != nil || filled != 2 {
			t.Fatalf("FillTree = %d, %v; want the 2 subtrees of 700 leaves", filled, err)
		}
		wantTree(t, store, 0, log.Records)
		// The leaves came from the migration: a proof reads them, not audit_events.
		if err := store.Exec(ctx, "RENAME TABLE "+db+".audit_events TO "+db+".audit_events_away"); err != nil {
			t.Fatal(err)
		}
		if _, err := chain.InclusionProof(src, 650, 700); err != nil {
			t.Fatalf("proof without audit_events: %v", err)
		}
	})
}

// TestCheckAndRebuildTree: damaged subtrees make CheckTree's root differ from the
// checkpoint's, and RebuildTree restores the tree from the stored events.
func TestCheckAndRebuildTree(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		log := treeLog(t, "rebuild", 700)
		log.Sign(0)
		if err := store.InsertRecords(ctx, log.Records); err != nil {
			t.Fatal(err)
		}
		if err := store.InsertCheckpoints(ctx, log.Checkpoints); err != nil {
			t.Fatal(err)
		}
		check := func(want clickhouse.TreeCheck) {
			t.Helper()
			got, ok, err := store.CheckTree(ctx, 0)
			if err != nil || !ok || got != want {
				t.Fatalf("CheckTree = %+v, %v, %v; want %+v", got, ok, err, want)
			}
		}
		check(clickhouse.TreeCheck{Partition: 0, Size: 700, Match: true})
		db := store.Database()
		if err := store.Exec(ctx, "ALTER TABLE "+db+".audit_subtrees DELETE WHERE chain_partition = 0"); err != nil {
			t.Fatal(err)
		}
		waitMutations(t, store)
		if err := store.Exec(ctx, "INSERT INTO "+db+".audit_subtrees (chain_partition, level, idx, hash) SELECT toUInt32(0), toUInt8(8), toUInt64(0), '"+strings.Repeat("ab", 32)+"'"); err != nil {
			t.Fatal(err)
		}
		check(clickhouse.TreeCheck{Partition: 0, Size: 700, Missing: 1, Match: false})
		n, err := store.RebuildTree(ctx, 0)
		if err != nil || n != 2 {
			t.Fatalf("RebuildTree = %d, %v; want 2 subtrees", n, err)
		}
		check(clickhouse.TreeCheck{Partition: 0, Size: 700, Match: true})
		wantTree(t, store, 0, log.Records)
	})
}
