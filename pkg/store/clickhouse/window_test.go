package clickhouse_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// TestSearchWindowsMatchAFullRead is a differential oracle for the day windows and
// the occurred_at summary: over a log spread across 40 chain days whose occurred_at
// strays from the chain time (late by up to 30 days, early by up to 10), every page
// of every search, followed cursor by cursor, must list exactly the events one
// unwindowed statement over the whole table returns, in the same order.
func TestSearchWindowsMatchAFullRead(t *testing.T) {
	t.Run("18.16", func(t *testing.T) {
		store := chtest.Store(t)
		searchWindowsOracle(t, store, func(sql string) string { return legacyTSV(t, "oracle", sql) })
	})
	t.Run("26.x", func(t *testing.T) {
		db := chtest.Store(t).Database() // a fresh name; the engine holds its own copy
		engine := modernEngine(t, db)
		store, err := clickhouse.OpenEmbedded(engine, clickhouse.EmbeddedOptions{Database: db})
		if err != nil {
			t.Fatal(err)
		}
		searchWindowsOracle(t, store, func(sql string) string {
			out, err := engine.Query(sql, "TSV")
			if err != nil {
				t.Fatalf("oracle on ClickHouse 26: %v", err)
			}
			return out
		})
	})
}

func searchWindowsOracle(t *testing.T, store *clickhouse.Store, oracle func(sql string) string) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(20, 20))
	log := chaintest.New(t, "windows", 0)
	end := time.Now().UTC().Add(-5 * 24 * time.Hour).Truncate(time.Second)
	start := end.Add(-40 * 24 * time.Hour)
	var occurred []time.Time
	dayMax := map[int64]time.Time{} // chain day -> latest occurred_at: where a day's summary is decided
	for i := range 900 {
		at := start.Add(time.Duration(i) * 40 * 24 * time.Hour / 900)
		occ := at.Add(-time.Duration(rnd.Int64N(int64(2 * time.Hour))))
		switch rnd.IntN(10) {
		case 0:
			occ = at.Add(-time.Duration(rnd.Int64N(int64(30 * 24 * time.Hour))))
		case 1:
			occ = at.Add(time.Duration(rnd.Int64N(int64(10 * 24 * time.Hour))))
		}
		occ = occ.Truncate(time.Second)
		occurred = append(occurred, occ)
		if d := at.Unix() / 86400; occ.After(dayMax[d]) {
			dayMax[d] = occ
		}
		doc := chaintest.Doc([]string{"skill.updated", "rule.updated", "tool_call.approved"}[i%3], fmt.Sprintf("u%d", i%4), "skill", "s")
		doc["occurred_at"] = occ.Format(time.RFC3339)
		log.Add(int32(i%3), fmt.Sprintf("t%d", i%3), at, doc)
	}
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	// Bounds at stored occurred_at values (equality is where >= and > differ), at
	// random instants, and past both ends.
	var maxima []time.Time
	for _, m := range dayMax {
		maxima = append(maxima, m)
	}
	instant := func() string {
		var at time.Time
		switch rnd.IntN(4) {
		case 0:
			at = occurred[rnd.IntN(len(occurred))]
		case 3:
			at = maxima[rnd.IntN(len(maxima))]
		case 1:
			at = start.Add(time.Duration(rnd.Int64N(int64(60 * 24 * time.Hour)))).Add(-15 * 24 * time.Hour)
		default:
			at = []time.Time{start.Add(-60 * 24 * time.Hour), end.Add(30 * 24 * time.Hour)}[rnd.IntN(2)]
		}
		return at.UTC().Format(time.RFC3339)
	}
	shapes := []string{"after:%[1]s", "before:%[1]s", "after:%[1]s before:%[2]s", "event:skill.* after:%[1]s",
		"(after:%[1]s OR event:rule.*)", "-after:%[1]s", "actor:u1 before:%[1]s", "(after:%[1]s before:%[2]s) OR (after:%[2]s actor:u2)", ""}
	now := time.Now()
	for i := range 90 {
		q := ""
		if shape := shapes[i%len(shapes)]; shape != "" {
			q = fmt.Sprintf(shape, instant(), instant())
		}
		var tenants []string
		if i%4 == 3 {
			tenants = []string{"t1"}
		}
		t.Run(fmt.Sprintf("%02d %s %v", i, q, tenants), func(t *testing.T) {
			f, err := query.Compile(q, now)
			if err != nil {
				t.Fatal(err)
			}
			where := f.Where
			if len(tenants) > 0 {
				where = "(" + where + ") AND tenant = 't1'"
			}
			want := oracle("SELECT chain_partition, seq FROM " + store.Database() + ".audit_events WHERE " +
				bindLiterals(where, f.Args) + " ORDER BY chained_at_ns DESC, chain_partition DESC, seq DESC")
			var got strings.Builder
			req := clickhouse.SearchRequest{Filter: f, Tenants: tenants, Limit: []int{7, 19, 50, 100}[i%4]}
			for page := 0; ; page++ {
				hits, next, err := store.Search(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range hits {
					fmt.Fprintf(&got, "%d\t%d\n", h.Partition, h.Seq)
				}
				if next == nil {
					break
				}
				if page > 1000 {
					t.Fatal("search does not end")
				}
				req.After = next
			}
			if got.String() != want {
				g, w := strings.Split(got.String(), "\n"), strings.Split(want, "\n")
				t.Fatalf("windowed search (pages of %d) returned %d events, a full read %d; first difference at %d", req.Limit, len(g)-1, len(w)-1, firstDiff(g, w))
			}
		})
	}
}

func firstDiff[T comparable](a, b []T) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSearchReadsDaysTheSummaryMissed: rows that reach audit_events without passing
// the day summary's view (ATTACH PARTITION from a backup, a dropped view) leave the
// summary's count short; their day must be read, not ruled out by a stale span.
func TestSearchReadsDaysTheSummaryMissed(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		log := chaintest.New(t, "stale-days", 0)
		day := time.Now().UTC().Add(-3 * 24 * time.Hour).Truncate(24 * time.Hour).Add(time.Hour)
		add := func(n int, occurred time.Time) {
			for range n {
				doc := chaintest.Doc("skill.updated", "u", "skill", "s")
				doc["occurred_at"] = occurred.Format(time.RFC3339)
				log.Add(0, "acme", day, doc)
			}
		}
		add(5, day)
		if err := store.InsertRecords(ctx, log.Records); err != nil {
			t.Fatal(err)
		}
		if err := store.Exec(ctx, "DROP TABLE "+store.Database()+".audit_days_mv"); err != nil {
			t.Fatal(err)
		}
		// The same day, occurred_at a week earlier: outside the day's summarised span.
		before := len(log.Records)
		add(3, day.Add(-7*24*time.Hour))
		if err := store.InsertRecords(ctx, log.Records[before:]); err != nil {
			t.Fatal(err)
		}
		f, err := query.Compile("before:"+day.Add(-24*time.Hour).Format(time.RFC3339), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		hits, _, err := store.Search(ctx, clickhouse.SearchRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 3 {
			t.Fatalf("found %d of the 3 events the summary never saw", len(hits))
		}
	})
}
