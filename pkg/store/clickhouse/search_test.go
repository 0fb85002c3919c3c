package clickhouse_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chdb"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// genEvent is one generated audit event, kept in Go so each scenario's expected
// result is computed independently of the SQL.
type genEvent struct {
	id, tenant, actorType, actorID, action, resType, resID, result, session, toolUse, source, note string
	occurred                                                                                       time.Time
}

// scenarioEvents makes n events over January and February 2026 for two tenants:
// skill and rule changes, team access changes, SSO failures and tool executions.
func scenarioEvents(t *testing.T, n int) ([]genEvent, []chain.Record) {
	t.Helper()
	actors := [][2]string{{"user", "sarah@acme.example"}, {"user", "tom@acme.example"}, {"service", "ci-bot"}, {"agent", "claude"}}
	kinds := []struct{ action, resType, resID string }{
		{"skill.updated", "skill", "api-conventions"}, {"skill.created", "skill", "security-scan"}, {"skill.rolled_back", "skill", "api-conventions"},
		{"team.member_added", "team", "acme-platform"}, {"team.role_changed", "team", "acme-platform"}, {"team.role_changed", "team", "payments"},
		{"auth.sso_failed", "user", "tom@acme.example"}, {"tool.executed", "tool", "Bash"}, {"rule.updated", "rule", "no_secrets_100%"},
		{"rule.updated", "rule", "no_secretsX100%"}, // matched only if '_' were not escaped in LIKE
	}
	results := []string{"success", "success", "success", "failure", "denied"}
	chains := map[int32]*chain.Chain{0: chain.New(0), 1: chain.New(1)}
	chainedBase := time.Now().UTC().Add(-time.Hour) // inside the modern table's TTL
	var evs []genEvent
	var recs []chain.Record
	for i := 0; i < n; i++ {
		a, k := actors[i%len(actors)], kinds[(i*7)%len(kinds)]
		g := genEvent{tenant: "acme", actorType: a[0], actorID: a[1], action: k.action, resType: k.resType, resID: k.resID,
			result: results[(i*3)%len(results)], source: "registry", note: fmt.Sprintf("Adjusted Rate Limiting #%d", i), occurred: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 5 * time.Hour)}
		if i%10 == 9 {
			g.tenant = "globex"
		}
		doc := map[string]any{"action": g.action, "occurred_at": g.occurred.Format(time.RFC3339Nano),
			"actor":    map[string]any{"type": g.actorType, "id": g.actorID},
			"resource": map[string]any{"type": g.resType, "id": g.resID}, "result": map[string]any{"status": g.result},
			"metadata": map[string]any{"note": g.note}}
		if g.action == "tool.executed" {
			g.session, g.toolUse, g.source = fmt.Sprintf("sess-%d", i%3), fmt.Sprintf("toolu_%03d", i), "claude_code"
			doc["session"] = map[string]any{"id": g.session, "tool_use_id": g.toolUse}
		}
		st := event.Stamp{Tenant: g.tenant, Tool: g.source, ReceivedAt: g.occurred.Add(time.Second)}
		if err := st.Apply(doc); err != nil {
			t.Fatal(err)
		}
		ev, canon, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		g.id = ev.ID
		p := int32(i % 2)
		rec, err := chains[p].Append(canon, chainedBase.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		evs, recs = append(evs, g), append(recs, rec)
	}
	return evs, recs
}

// scenarioStores stores 300 scenario events on the 18.16 server and in a ClickHouse
// 26 engine under the same database name.
func scenarioStores(t *testing.T) (*clickhouse.Store, *chdb.Engine, []genEvent, []chain.Record) {
	legacy := chtest.Store(t)
	engine := modernEngine(t, legacy.Database())
	evs, recs := scenarioEvents(t, 300)
	if err := legacy.InsertRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	engineInsertRecords(t, engine, legacy.Database(), recs)
	return legacy, engine, evs, recs
}

// TestSearchScenariosOnBothGenerations runs the seed scenarios through the filter
// language on the 18.16 server and on ClickHouse 26 in process: both must return
// exactly the events a Go predicate selects, newest chain position first.
func TestSearchScenariosOnBothGenerations(t *testing.T) {
	legacy, engine, evs, recs := scenarioStores(t)
	db, ctx := legacy.Database(), context.Background()
	now := time.Date(2026, 2, 19, 0, 0, 0, 0, time.UTC)
	in := func(g genEvent, from, to string) bool {
		f, _ := time.Parse(time.DateOnly, from)
		u, _ := time.Parse(time.DateOnly, to)
		return !g.occurred.Before(f) && g.occurred.Before(u)
	}
	scenarios := []struct {
		name, q string
		tenants []string
		want    func(genEvent) bool
	}{
		{"all skill changes in the last 30 days", "actor:any event:skill.* after:-30d", []string{"acme"},
			func(g genEvent) bool {
				return g.tenant == "acme" && strings.HasPrefix(g.action, "skill.") && in(g, "2026-01-20", "2100-01-01")
			}},
		{"everything sarah did in January", "actor:user:sarah@acme.example after:2026-01-01 before:2026-02-01", []string{"acme"},
			func(g genEvent) bool {
				return g.tenant == "acme" && g.actorID == "sarah@acme.example" && in(g, "2026-01-01", "2026-02-01")
			}},
		{"all team access changes", "event:team.* resource:team:acme-platform", nil,
			func(g genEvent) bool {
				return strings.HasPrefix(g.action, "team.") && g.resType == "team" && g.resID == "acme-platform"
			}},
		{"failed or denied attempts of non-service actors", "(result:failure OR result:denied) -actor:type:service", nil,
			func(g genEvent) bool {
				return (g.result == "failure" || g.result == "denied") && g.actorType != "service"
			}},
		{"every access to one resource", "resource:skill:api-conventions", []string{"acme", "globex"},
			func(g genEvent) bool { return g.resType == "skill" && g.resID == "api-conventions" }},
		{"what happened in one session", "session:sess-1 source:claude_code", nil,
			func(g genEvent) bool { return g.session == "sess-1" }},
		{"tool uses by glob", "tool_use:toolu_0?1", nil,
			func(g genEvent) bool {
				return len(g.toolUse) == 9 && strings.HasPrefix(g.toolUse, "toolu_0") && g.toolUse[8] == '1'
			}},
		{"free text, any case", `"rate limiting #12"`, nil,
			func(g genEvent) bool { return strings.Contains(strings.ToLower(g.note), "rate limiting #12") }},
		{"a LIKE metacharacter is literal", "resource:rule:no_secrets_100%", nil,
			func(g genEvent) bool { return g.resID == "no_secrets_100%" }},
		{"a LIKE metacharacter in a glob is literal", "resource:rule:no?secrets_100*", nil,
			func(g genEvent) bool { return g.resID == "no_secrets_100%" }},
		{"tenant scoping wins over the query", "tenant:globex", []string{"acme"},
			func(g genEvent) bool { return false }},
	}
	ids := map[string]int{} // event id -> index in recs
	for i, g := range evs {
		ids[g.id] = i
	}
	for _, sc := range scenarios {
		f, err := query.Compile(sc.q, now)
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		var want []string
		for i := len(evs) - 1; i >= 0; i-- { // chained_at grows with i: newest first
			if sc.want(evs[i]) && (len(sc.tenants) == 0 || slices.Contains(sc.tenants, evs[i].tenant)) {
				want = append(want, evs[i].id)
			}
		}
		req := clickhouse.SearchRequest{Filter: f, Tenants: sc.tenants, Limit: 1000}
		hits, next, err := legacy.Search(ctx, req)
		if err != nil {
			t.Fatalf("%s on 18.16: %v", sc.name, err)
		}
		var got []string
		for _, h := range hits {
			var ev event.Event
			if err := json.Unmarshal(h.Event, &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.ID)
			if r := recs[ids[ev.ID]]; r.Partition != h.Partition || r.Seq != h.Seq || r.LeafHash.String() != h.LeafHash {
				t.Errorf("%s: hit %s has position %d/%d, stored as %d/%d", sc.name, ev.ID, h.Partition, h.Seq, r.Partition, r.Seq)
			}
		}
		if !slices.Equal(got, want) || next != nil {
			t.Errorf("%s (%s): 18.16 returned %d events, want %d (next %v)", sc.name, sc.q, len(got), len(want), next)
		}
		if len(want) == 0 && sc.name != "tenant scoping wins over the query" {
			t.Errorf("%s: the generated data has no match; the scenario tests nothing", sc.name)
		}
		q := clickhouse.SearchQuery(db, req)
		sql := bindLiterals(q.SQL, q.Args)
		modern, err := engine.Query(sql, "TSV")
		if err != nil {
			t.Fatalf("%s on ClickHouse 26: %v\n%s", sc.name, err, sql)
		}
		if old := legacyTSV(t, sc.name, sql); modern != old {
			t.Errorf("%s: ClickHouse 26 and 18.16 differ:\n26.x: %.300q\n18.16: %.300q", sc.name, modern, old)
		}
		if len(hits) > 0 { // the page's second read, too
			var ps []uint32
			var seqs []uint64
			var tenants []string
			var occ []uint32
			for _, h := range hits {
				ev, _ := event.Unmarshal(h.Event)
				ps, seqs, tenants, occ = append(ps, uint32(h.Partition)), append(seqs, h.Seq), append(tenants, ev.Tenant), append(occ, uint32(ev.OccurredAt.Unix()))
			}
			fq := clickhouse.FetchQuery(db, ps, seqs, tenants, occ)
			fsql := bindLiterals(fq.SQL, fq.Args)
			modern, err := engine.Query(fsql+" ORDER BY chain_partition, seq", "TSV")
			if err != nil {
				t.Fatalf("%s fetch on ClickHouse 26: %v", sc.name, err)
			}
			if old := legacyTSV(t, sc.name, fsql+" ORDER BY chain_partition, seq"); modern != old || strings.Count(old, "\n") != len(hits) {
				t.Errorf("%s: the fetch differs between generations or misses rows (%d lines for %d hits)", sc.name, strings.Count(old, "\n"), len(hits))
			}
		}
		t.Logf("%-48s %3d events on both generations", sc.name, len(want))
	}
}

// TestSearchPagesAndInjection: keyset pages cover every match once, in order; and
// values built to break out of SQL are only ever data.
func TestSearchPagesAndInjection(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		evs, recs := scenarioEvents(t, 120)
		if err := store.InsertRecords(ctx, recs); err != nil {
			t.Fatal(err)
		}
		f, err := query.Compile("event:skill.* OR event:team.*", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for i := len(evs) - 1; i >= 0; i-- {
			if strings.HasPrefix(evs[i].action, "skill.") || strings.HasPrefix(evs[i].action, "team.") {
				want = append(want, evs[i].id)
			}
		}
		var cursor *clickhouse.Cursor
		pages := 0
		for {
			hits, next, err := store.Search(ctx, clickhouse.SearchRequest{Filter: f, After: cursor, Limit: 7})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				var ev event.Event
				if err := json.Unmarshal(h.Event, &ev); err != nil {
					t.Fatal(err)
				}
				got = append(got, ev.ID)
			}
			pages++
			if next == nil {
				break
			}
			back, err := clickhouse.ParseCursor(next.String())
			if err != nil || back != *next {
				t.Fatalf("cursor does not survive its text form: %v %+v %+v", err, back, next)
			}
			cursor = &back
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paging returned %d events in %d pages, want the %d matches once each, newest first", len(got), pages, len(want))
		}
		if _, err := clickhouse.ParseCursor("not-a-cursor"); err == nil {
			t.Error("a forged cursor was accepted")
		}

		for _, attack := range []string{
			`actor:"x' OR 1=1 --"`, `tenant:"acme') OR ('1'='1"`, `"'); DROP TABLE ` + store.Database() + `.audit_events; --"`,
			`resource:"skill:x\\' OR 1=1"`, `event:"*' UNION SELECT name FROM system.tables --"`, `id:"?"`,
		} {
			f, err := query.Compile(attack, time.Now())
			if err != nil {
				t.Fatalf("%s: %v", attack, err)
			}
			hits, _, err := store.Search(ctx, clickhouse.SearchRequest{Filter: f, Tenants: []string{"acme"}})
			if err != nil {
				t.Fatalf("%s: the value broke the statement: %v", attack, err)
			}
			if len(hits) != 0 {
				t.Fatalf("%s: returned %d rows; the value was interpreted as SQL", attack, len(hits))
			}
		}
		if m, ok, err := store.MaxSeq(ctx, 0); err != nil || !ok || m != 59 {
			t.Fatalf("the table changed under injection attempts: max seq %d %v %v", m, ok, err)
		}
	})
}

// TestSameSecondBounds: events whose occurred_at fall inside one second, with
// nanoseconds, are found by a search page (whose fetch bounds occurred_at to that
// second) and by after:/before: bounds around it. ClickHouse 26.5 compares a
// DateTime64(9) column with a DateTime below it as false for every row, which made
// such pages fail ("vanished") and before: filters empty on the modern DDL.
func TestSameSecondBounds(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		sec := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		c := chain.New(0)
		var recs []chain.Record
		for i := 0; i < 5; i++ {
			at := sec.Add(time.Duration(100_000_000*i + 123_456_789))
			doc := map[string]any{"action": "tool.executed", "occurred_at": at.Format(time.RFC3339Nano),
				"actor": map[string]any{"type": "user", "id": "sarah"}, "resource": map[string]any{"type": "tool", "id": "Bash"}}
			if err := (event.Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: at}).Apply(doc); err != nil {
				t.Fatal(err)
			}
			_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := c.Append(canon, at.Add(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
		if err := store.InsertRecords(ctx, recs); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, q string
			want    int
		}{
			{"page", "event:tool.*", 5},
			{"before the next second", "before:" + sec.Add(time.Second).Format(time.RFC3339), 5},
			{"after the second", "after:" + sec.Format(time.RFC3339), 5},
			{"before the second", "before:" + sec.Format(time.RFC3339), 0},
			{"after the next second", "after:" + sec.Add(time.Second).Format(time.RFC3339), 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f, err := query.Compile(tc.q, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				hits, _, err := store.Search(ctx, clickhouse.SearchRequest{Filter: f, Tenants: []string{"acme"}, Limit: 10})
				if err != nil || len(hits) != tc.want {
					t.Fatalf("%s: %d hits, %v; want %d", tc.q, len(hits), err, tc.want)
				}
			})
		}
	})
}

// TestHistogramOnBothGenerations counts the scenario events per bucket on the
// 18.16 server and checks them against a Go count of the same events, and the
// statement on ClickHouse 26 against 18.16.
func TestHistogramOnBothGenerations(t *testing.T) {
	legacy, engine, evs, _ := scenarioStores(t)
	db, ctx := legacy.Database(), context.Background()
	now := time.Date(2026, 2, 19, 0, 0, 0, 0, time.UTC)
	from := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name, q string
		tenants []string
		step    time.Duration
		to      time.Time
		want    func(genEvent) bool
	}{
		{"every event, daily", "", nil, 24 * time.Hour, from.Add(30 * 24 * time.Hour), func(genEvent) bool { return true }},
		{"acme's skill events, 7-hour buckets", "event:skill.*", []string{"acme"}, 7 * time.Hour, from.Add(20 * 24 * time.Hour),
			func(g genEvent) bool { return g.tenant == "acme" && strings.HasPrefix(g.action, "skill.") }},
		{"a last partial bucket", "result:denied", nil, 24 * time.Hour, from.Add(10*24*time.Hour + 5*time.Hour),
			func(g genEvent) bool { return g.result == "denied" }},
		{"the query's own bounds narrow it", "after:2026-01-15 before:2026-01-20", []string{"acme", "globex"}, 24 * time.Hour, from.Add(15 * 24 * time.Hour),
			func(g genEvent) bool {
				return !g.occurred.Before(time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)) && g.occurred.Before(time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC))
			}},
		{"tenant scoping wins over the query", "tenant:globex", []string{"acme"}, 24 * time.Hour, from.Add(10 * 24 * time.Hour), func(genEvent) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := query.Compile(c.q, now)
			if err != nil {
				t.Fatal(err)
			}
			req := clickhouse.HistogramRequest{Filter: f, Tenants: c.tenants, From: from, To: c.to, Step: c.step}
			got, err := legacy.Histogram(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			n := int((c.to.Sub(from) + c.step - 1) / c.step)
			want := make([]uint64, n)
			total := uint64(0)
			for _, g := range evs {
				if g.occurred.Before(from) || !g.occurred.Before(c.to) || !c.want(g) || (len(c.tenants) > 0 && !slices.Contains(c.tenants, g.tenant)) {
					continue
				}
				want[int(g.occurred.Sub(from)/c.step)]++
				total++
			}
			if len(got) != n {
				t.Fatalf("%d buckets, want %d", len(got), n)
			}
			for i, b := range got {
				if !b.From.Equal(from.Add(time.Duration(i)*c.step)) || b.Count != want[i] {
					t.Errorf("bucket %d: %s %d, want %s %d", i, b.From, b.Count, from.Add(time.Duration(i)*c.step), want[i])
				}
			}
			if total == 0 && c.name != "tenant scoping wins over the query" {
				t.Errorf("no event falls in the range; the case tests nothing")
			}
			q := clickhouse.HistogramQuery(db, req)
			sql := bindLiterals(q.SQL, q.Args)
			modern, err := engine.Query(sql, "TSV")
			if err != nil {
				t.Fatalf("ClickHouse 26: %v\n%s", err, sql)
			}
			if old := legacyTSV(t, c.name, sql); modern != old {
				t.Errorf("ClickHouse 26 and 18.16 differ:\n26.x: %.300q\n18.16: %.300q", modern, old)
			}
		})
	}
	for _, bad := range []clickhouse.HistogramRequest{{From: from, To: from}, {From: from, To: from.Add(time.Hour), Step: time.Second}} {
		if _, err := legacy.Histogram(ctx, bad); err == nil {
			t.Errorf("%v..%v step %v: no error", bad.From, bad.To, bad.Step)
		}
	}
}
