package clickhouse_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// TestSeqDaysMatchAFullScan is a differential oracle for audit_seq_days: over rows
// of three partitions spread across 20 chain days, whose chain time is not monotonic
// in seq (a record may be chained up to two days before the one ahead of it), each
// partition's MaxSeq, RecordsBetween (whole and in random ranges, read in windows
// far smaller than a day's span), Head, Follow from random positions (for all
// tenants and scoped to tenants: one that lives in one partition, as ingest keys
// them, and two spread over all) and Export must equal one scan of every row of
// audit_events. It holds while the summaries are exact, and after each way they can
// stop matching the rows: rows arrive while the tenant summary's view is gone, then
// while both views are, a mutation deletes rows (and more arrive past the view, so
// counts can match again), a day partition is dropped.
func TestSeqDaysMatchAFullScan(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		clickhouse.SetSeqWindow(store, 7)
		faults := clickhouse.Faults(store)
		db := store.Database()
		rnd := rand.New(rand.NewPCG(6, 6))
		log := chaintest.New(t, "seqdays", 0)
		base := time.Now().UTC().Add(-25 * 24 * time.Hour).Truncate(time.Second)
		insert := func(n int, from time.Time, span time.Duration) {
			first := len(log.Records)
			for i := range n {
				p := int32(rnd.IntN(3))
				at := from.Add(time.Duration(i) * span / time.Duration(n))
				if rnd.IntN(5) == 0 {
					at = at.Add(-time.Duration(rnd.Int64N(int64(48 * time.Hour))))
				}
				tenant := fmt.Sprint("m", rnd.IntN(2)) // in every partition
				if p == 0 && rnd.IntN(2) == 0 {
					tenant = "k0" // only in partition 0
				}
				log.Add(p, tenant, at, chaintest.Doc("skill.updated", fmt.Sprint("u", i), "skill", "s"))
			}
			// In several inserts, so the summary has several rows per day to merge.
			recs := log.Records[first:]
			for len(recs) > 0 {
				k := min(len(recs), 1+rnd.IntN(60))
				if err := store.InsertRecords(ctx, recs[:k]); err != nil {
					t.Fatal(err)
				}
				recs = recs[k:]
			}
		}
		check := func(stage string) {
			t.Helper()
			var all []string
			byPart := map[int32][]uint64{}
			for p := range int32(4) { // partition 3 never has a row
				want, err := clickhouse.ScanSeqs(ctx, store, p)
				if err != nil {
					t.Fatal(err)
				}
				byPart[p] = want
				for _, s := range want {
					all = append(all, fmt.Sprint(p, ":", s))
				}
				seq, ok, err := store.MaxSeq(ctx, p)
				if err != nil {
					t.Fatalf("%s: MaxSeq(%d): %v", stage, p, err)
				}
				if ok != (len(want) > 0) || ok && seq != want[len(want)-1] {
					t.Errorf("%s: MaxSeq(%d) = %d, %v; a full scan holds %d rows up to %v", stage, p, seq, ok, len(want), want[max(len(want)-1, 0):])
				}
				checkRange(t, stage, store, p, 0, 1<<62, want)
				for range 3 {
					lo := uint64(rnd.IntN(130))
					checkRange(t, stage, store, p, lo, lo+uint64(rnd.IntN(40)), want)
				}
			}
			checkFollow(t, stage, store, rnd, byPart)
			var got []string
			err := store.Export(ctx, clickhouse.ExportRequest{}, func(r chain.Record) error {
				got = append(got, fmt.Sprint(r.Partition, ":", r.Seq))
				return nil
			})
			if err != nil {
				t.Fatalf("%s: export: %v", stage, err)
			}
			if !slices.Equal(got, all) {
				t.Errorf("%s: export has %d records, a full scan %d (first difference at %d)", stage, len(got), len(all), firstDiff(got, all))
			}
		}

		insert(300, base, 20*24*time.Hour)
		faults.Count("SELECT count(), max(seq) FROM "+db+".audit_events", "SELECT chain_partition, max(seq) FROM "+db+".audit_events", clickhouse.RecordsRead(store))
		check("summarised")
		if n := faults.Counted(0); n != 0 {
			t.Errorf("with every day summarised, %d reads of audit_events asked for a highest seq", n)
		}
		for _, tenants := range [][]string{{"k0"}, {"m0", "k0"}, nil} {
			faults.Count("SELECT chain_partition, max(seq) FROM "+db+".audit_events", clickhouse.RecordsRead(store))
			head, err := store.Head(ctx, tenants)
			if err != nil {
				t.Fatal(err)
			}
			if recs, _, err := store.Follow(ctx, clickhouse.ExportRequest{Tenants: tenants}, head, clickhouse.MaxSearchLimit); err != nil || len(recs) != 0 {
				t.Fatalf("follow of %v from its head = %d records, %v", tenants, len(recs), err)
			}
			if heads, follows := faults.Counted(0), faults.Counted(1); heads+follows != 0 {
				t.Errorf("with every day summarised, the head and a poll of %v read audit_events %d and %d times", tenants, heads, follows)
			}
		}

		// Rows stored while only the tenant summary's view is gone.
		if err := store.Exec(ctx, "DROP TABLE "+db+".audit_tenant_seq_days_mv"); err != nil {
			t.Fatal(err)
		}
		insert(40, base.Add(3*24*time.Hour), 15*24*time.Hour)
		check("rows stored past the tenant view")

		if err := store.Exec(ctx, "DROP TABLE "+db+".audit_seq_days_mv"); err != nil {
			t.Fatal(err)
		}
		// Rows on days the summary holds: each partition's highest seq is now on a
		// day whose summary lacks it.
		insert(60, base.Add(5*24*time.Hour), 10*24*time.Hour)
		check("rows stored past the view")
		// And on days it has never seen.
		insert(30, base.Add(20*24*time.Hour), 5*24*time.Hour)
		check("rows stored past the view on new days")

		// A mutation deletes rows, and rows stored past the view on the same days
		// may bring a day's count back to the summary's.
		if err := store.Exec(ctx, "ALTER TABLE "+db+".audit_events DELETE WHERE chain_partition = 1 AND seq % 5 = 4"); err != nil {
			t.Fatal(err)
		}
		waitMutations(t, store)
		check("rows deleted by a mutation")
		insert(120, base.Add(2*24*time.Hour), 20*24*time.Hour)
		check("rows stored past the view after a mutation")

		var oldest uint32
		if err := clickhouse.ScanOne(ctx, store, "SELECT toUInt32(min(toYYYYMMDD(chained_at))) FROM "+db+".audit_events", &oldest); err != nil {
			t.Fatal(err)
		}
		if err := store.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.audit_events DROP PARTITION %d", db, oldest)); err != nil {
			t.Fatal(err)
		}
		check("oldest day dropped")
	})
}

// checkFollow holds Head to the highest seqs of the stored rows, and Follow from
// random positions (some partitions seen up to a random seq, others not at all) to
// the stored seqs after them: for all tenants and scoped to tenants, each against a
// full scan of their rows.
func checkFollow(t *testing.T, stage string, store *clickhouse.Store, rnd *rand.Rand, byPart map[int32][]uint64) {
	t.Helper()
	checkFollowOf(t, stage, store, rnd, nil, byPart)
	for _, tenants := range [][]string{{"k0"}, {"m1"}, {"m0", "k0"}, {"nobody"}} {
		mine := map[int32][]uint64{}
		for p := range int32(4) {
			for _, tenant := range tenants {
				seqs, err := clickhouse.ScanTenantSeqs(context.Background(), store, tenant, p)
				if err != nil {
					t.Fatal(err)
				}
				mine[p] = append(mine[p], seqs...)
			}
			slices.Sort(mine[p])
		}
		checkFollowOf(t, stage, store, rnd, tenants, mine)
	}
}

// checkFollowOf is checkFollow for tenants (nil: all), whose stored seqs byPart
// holds.
func checkFollowOf(t *testing.T, stage string, store *clickhouse.Store, rnd *rand.Rand, tenants []string, byPart map[int32][]uint64) {
	t.Helper()
	head, err := store.Head(context.Background(), tenants)
	if err != nil {
		t.Fatalf("%s: head of %v: %v", stage, tenants, err)
	}
	wantHead := clickhouse.Position{}
	for p, seqs := range byPart {
		if len(seqs) > 0 {
			wantHead[p] = seqs[len(seqs)-1]
		}
	}
	if head.String() != wantHead.String() {
		t.Errorf("%s: head of %v = %s, a full scan's %s", stage, tenants, head, wantHead)
	}
	for i := range 5 {
		pos := clickhouse.Position{}
		for p := range int32(3) {
			switch {
			case i == 0: // the head, as a follower starts
				if seq, ok := wantHead[p]; ok {
					pos[p] = seq
				}
			case rnd.IntN(4) > 0:
				pos[p] = uint64(rnd.IntN(140))
			}
		}
		var want []string
		for p := range int32(4) {
			for _, s := range byPart[p] {
				if seen, ok := pos[p]; !ok || s > seen {
					want = append(want, fmt.Sprint(p, ":", s))
				}
			}
		}
		recs, next, err := store.Follow(context.Background(), clickhouse.ExportRequest{Tenants: tenants}, pos, clickhouse.MaxSearchLimit)
		if err != nil {
			t.Fatalf("%s: follow of %v from %s: %v", stage, tenants, pos, err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprint(r.Partition, ":", r.Seq))
			if next[r.Partition] < r.Seq {
				t.Fatalf("%s: follow of %v from %s returned %d:%d but moved the position to %s", stage, tenants, pos, r.Partition, r.Seq, next)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: follow of %v from %s returned %d records, a full scan %d (first difference at %d)", stage, tenants, pos, len(got), len(want), firstDiff(got, want))
		}
	}
}

// checkRange holds RecordsBetween(p, lo, hi) to the seqs of want in [lo, hi).
func checkRange(t *testing.T, stage string, store *clickhouse.Store, p int32, lo, hi uint64, want []uint64) {
	t.Helper()
	var got, in []uint64
	err := store.RecordsBetween(context.Background(), p, lo, hi, func(r chain.Record) error {
		got = append(got, r.Seq)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: RecordsBetween(%d, %d, %d): %v", stage, p, lo, hi, err)
	}
	for _, s := range want {
		if s >= lo && s < hi {
			in = append(in, s)
		}
	}
	if !slices.Equal(got, in) {
		t.Errorf("%s: RecordsBetween(%d, %d, %d) = %d records, a full scan %d (first difference at %d)", stage, p, lo, hi, len(got), len(in), firstDiff(got, in))
	}
}

// TestSummariesDistrustMutatedDays: a mutation deletes a row of a day, and a row
// stored past the views brings the day's count back to what the summaries counted.
// Counts alone would then vouch for summaries that miss the new row: the day's
// highest seq (audit_seq_days) and its occurred_at span (audit_days, for search
// and the histogram) must be read from the rows instead.
func TestSummariesDistrustMutatedDays(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		db := store.Database()
		log := chaintest.New(t, "mutated-days", 0)
		day := time.Now().UTC().Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour).Add(time.Hour)
		add := func(occurred time.Time) {
			doc := chaintest.Doc("skill.updated", "u", "skill", "s")
			doc["occurred_at"] = occurred.Format(time.RFC3339)
			log.Add(0, "acme", day, doc)
		}
		for range 10 {
			add(day)
		}
		if err := store.InsertRecords(ctx, log.Records); err != nil {
			t.Fatal(err)
		}
		if err := store.Exec(ctx, "ALTER TABLE "+db+".audit_events DELETE WHERE seq = 9"); err != nil {
			t.Fatal(err)
		}
		waitMutations(t, store)
		for _, mv := range []string{"audit_seq_days_mv", "audit_days_mv"} {
			if err := store.Exec(ctx, "DROP TABLE "+db+"."+mv); err != nil {
				t.Fatal(err)
			}
		}
		add(day.Add(-7 * 24 * time.Hour)) // seq 10, occurred a week before the day's span
		if err := store.InsertRecords(ctx, log.Records[10:]); err != nil {
			t.Fatal(err)
		}
		if seq, ok, err := store.MaxSeq(ctx, 0); err != nil || !ok || seq != 10 {
			t.Errorf("MaxSeq = %d, %v, %v; the row stored past the view has seq 10", seq, ok, err)
		}
		f, err := query.Compile("before:"+day.Add(-24*time.Hour).Format(time.RFC3339), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		hits, _, err := store.Search(ctx, clickhouse.SearchRequest{Filter: f})
		if err != nil || len(hits) != 1 {
			t.Errorf("search found %d of the 1 event the summary never saw (%v)", len(hits), err)
		}
		week := day.Add(-8 * 24 * time.Hour).Truncate(24 * time.Hour)
		buckets, err := store.Histogram(ctx, clickhouse.HistogramRequest{From: week, To: week.Add(3 * 24 * time.Hour), Step: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, b := range buckets {
			n += b.Count
		}
		if n != 1 {
			t.Errorf("the histogram counted %d of the 1 event the summary never saw", n)
		}
	})
}

// TestMaxSeqAfterALightweightDelete: a lightweight delete (ClickHouse 22.8 and
// later; the 18.16 server has none) only masks rows, so the part list keeps
// counting them and the day's count still equals the summary's. The masked
// partition's highest seq must come from the rows.
func TestMaxSeqAfterALightweightDelete(t *testing.T) {
	store := chtest.Embedded(t)
	ctx := context.Background()
	db := store.Database()
	log := chaintest.New(t, "lightweight-delete", 0)
	day := time.Now().UTC().Add(-2 * 24 * time.Hour)
	for range 10 {
		log.Add(0, "acme", day, chaintest.Doc("skill.updated", "u", "skill", "s"))
	}
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	// The table's projection refuses the delete unless an operator allows it.
	for _, stmt := range []string{
		"ALTER TABLE " + db + ".audit_events MODIFY SETTING lightweight_mutation_projection_mode = 'rebuild'",
		"DELETE FROM " + db + ".audit_events WHERE seq = 9",
	} {
		if err := store.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	waitMutations(t, store)
	if seq, ok, err := store.MaxSeq(ctx, 0); err != nil || !ok || seq != 8 {
		t.Errorf("after a lightweight delete of seq 9, MaxSeq = %d, %v, %v; want 8", seq, ok, err)
	}
}

// TestSeqDaysMigrationSummarisesStoredRows: upgrading a store that already holds
// events fills audit_seq_days from them, so the first partition open after the
// upgrade already reads the summary, not the rows.
func TestSeqDaysMigrationSummarisesStoredRows(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		db := store.Database()
		log := chaintest.New(t, "seqdays-upgrade", 0)
		base := time.Now().UTC().Add(-6 * 24 * time.Hour)
		for i := range 90 {
			log.Add(int32(i%3), "acme", base.Add(time.Duration(i)*time.Hour), chaintest.Doc("skill.updated", "u", "skill", "s"))
		}
		if err := store.InsertRecords(ctx, log.Records); err != nil {
			t.Fatal(err)
		}
		remigrate(t, store, 5, "audit_seq_days")
		faults := clickhouse.Faults(store)
		faults.Count("SELECT count(), max(seq) FROM " + db + ".audit_events")
		for p := range int32(3) {
			if seq, ok, err := store.MaxSeq(ctx, p); err != nil || !ok || seq != 29 {
				t.Errorf("MaxSeq(%d) after the upgrade = %d, %v, %v; want 29", p, seq, ok, err)
			}
		}
		if n := faults.Counted(0); n != 0 {
			t.Errorf("after the upgrade MaxSeq read audit_events %d times; the migration should have summarised every day", n)
		}
	})
}

// TestTenantSeqDaysMigrationSummarisesStoredRows: migration 0006 summarises the
// rows stored before it by tenant, so a tenant's head and a poll of its follower read
// no rows of audit_events right after the upgrade.
func TestTenantSeqDaysMigrationSummarisesStoredRows(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		db := store.Database()
		log := chaintest.New(t, "tenant-seqdays-upgrade", 0)
		base := time.Now().UTC().Add(-6 * 24 * time.Hour)
		for i := range 90 {
			log.Add(int32(i%3), []string{"acme", "globex", "acme"}[i%3], base.Add(time.Duration(i)*time.Hour), chaintest.Doc("skill.updated", "u", "skill", "s"))
		}
		if err := store.InsertRecords(ctx, log.Records); err != nil {
			t.Fatal(err)
		}
		remigrate(t, store, 6, "audit_tenant_seq_days")
		faults := clickhouse.Faults(store)
		faults.Count("SELECT chain_partition, max(seq) FROM "+db+".audit_events", clickhouse.RecordsRead(store))
		for tenant, want := range map[string]string{"acme": "0:29,2:29", "globex": "1:29"} {
			head, err := store.Head(ctx, []string{tenant})
			if err != nil || head.String() != want {
				t.Errorf("head of %s after the upgrade = %s, %v; want %s", tenant, head, err, want)
			}
			if recs, _, err := store.Follow(ctx, clickhouse.ExportRequest{Tenants: []string{tenant}}, head, clickhouse.MaxSearchLimit); err != nil || len(recs) != 0 {
				t.Errorf("follow of %s from its head = %d records, %v", tenant, len(recs), err)
			}
		}
		if heads, follows := faults.Counted(0), faults.Counted(1); heads+follows != 0 {
			t.Errorf("after the upgrade the tenants' heads and polls read audit_events %d and %d times; the migration should have summarised every day", heads, follows)
		}
	})
}

// remigrate puts store back as it was before migration version, which created
// table and its view table_mv, and migrates it again over the rows it holds.
func remigrate(t *testing.T, store *clickhouse.Store, version int, table string) {
	t.Helper()
	ctx, db := context.Background(), store.Database()
	for _, stmt := range []string{"DROP TABLE " + db + "." + table + "_mv", "DROP TABLE " + db + "." + table, fmt.Sprintf("ALTER TABLE %s.schema_migrations DELETE WHERE version = %d", db, version)} {
		if err := store.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	waitMutations(t, store)
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLeafHashesFromEventsReadTheRightDays: where audit_leaves lacks seqs, a proof
// reads their hashes from audit_events, in the days the summary says can hold them.
// Over records spread across days, with some stored past a dropped view (unknown
// days), every leaf hash must still come back, in order, in windows smaller than a
// day.
func TestLeafHashesFromEventsReadTheRightDays(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		db := store.Database()
		clickhouse.SetSeqWindow(store, 7)
		log := chaintest.New(t, "leaf-fallback", 0)
		base := time.Now().UTC().Add(-10 * 24 * time.Hour)
		for i := range 60 {
			at := base.Add(time.Duration(i) * 4 * time.Hour)
			if i%9 == 4 {
				at = at.Add(-30 * time.Hour) // chained before the record ahead of it
			}
			log.Add(0, "acme", at, chaintest.Doc("skill.updated", "u", "skill", fmt.Sprint(i)))
		}
		if err := store.InsertRecords(ctx, log.Records[:40]); err != nil {
			t.Fatal(err)
		}
		if err := store.Exec(ctx, "DROP TABLE "+db+".audit_seq_days_mv"); err != nil {
			t.Fatal(err)
		}
		if err := store.InsertRecords(ctx, log.Records[40:]); err != nil {
			t.Fatal(err)
		}
		if err := store.Exec(ctx, "ALTER TABLE "+db+".audit_leaves DELETE WHERE seq % 3 = 1"); err != nil {
			t.Fatal(err)
		}
		waitMutations(t, store)
		got, err := store.Leaves(ctx, 0).(chain.TreeSource).LeafHashes(0, 60)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range log.Records {
			if i >= len(got) || got[i] != r.LeafHash {
				t.Fatalf("leaf %d of %d differs from the record's", i, len(got))
			}
		}
	})
}
