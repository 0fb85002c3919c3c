package clickhouse_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/sqlscope"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// storedLog stores two partitions: acme on 0 (25 events), globex on 1 (10), signed
// every 8 records.
func storedLog(t *testing.T, store *clickhouse.Store) (*clickhouse.Store, *chaintest.Log) {
	log := chaintest.New(t, "test", 8)
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	for i := 0; i < 25; i++ {
		log.Add(0, "acme", base.Add(time.Duration(i)*time.Minute), chaintest.Doc([]string{"skill.updated", "team.member_added"}[i%2], fmt.Sprintf("user%d@acme.example", i%3), "skill", "api-conventions"))
	}
	for i := 0; i < 10; i++ {
		log.Add(1, "globex", base.Add(time.Duration(i)*time.Minute), chaintest.Doc("skill.updated", "ops@globex.example", "skill", "deploy"))
	}
	ctx := context.Background()
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	if err := store.InsertCheckpoints(ctx, log.Checkpoints); err != nil {
		t.Fatal(err)
	}
	return store, log
}

func eventID(t *testing.T, r chain.Record) string {
	ev, err := event.Unmarshal(r.Event)
	if err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

func TestRecordByIDAndInclusionProofFromTheStore(t *testing.T) {
	chtest.Each(t, func(t *testing.T, engine *clickhouse.Store) {
		store, log := storedLog(t, engine)
		ctx := context.Background()
		want := log.Records[13] // partition 0 seq 13
		id := eventID(t, want)
		got, err := store.RecordByID(ctx, id, []string{"acme"})
		if err != nil || got.Seq != 13 || got.Partition != 0 || got.LeafHash != want.LeafHash || string(got.Event) != string(want.Event) || !got.ChainedAt.Equal(want.ChainedAt) {
			t.Fatalf("RecordByID = %+v, %v", got, err)
		}
		if _, err := store.RecordByID(ctx, id, []string{"globex"}); !errors.Is(err, clickhouse.ErrNotFound) {
			t.Fatalf("another tenant's event: %v, want ErrNotFound", err)
		}
		if _, err := store.RecordByID(ctx, "' OR 1=1 --", nil); !errors.Is(err, clickhouse.ErrNotFound) {
			t.Fatalf("a non-UUID id: %v, want ErrNotFound", err)
		}

		cp, ok, err := store.CoveringCheckpoint(ctx, 0, 13)
		if err != nil || !ok {
			t.Fatalf("CoveringCheckpoint: %v %v", ok, err)
		}
		verifiers, _ := chain.NewVerifiers(log.VerifierKey)
		opened, err := cp.Open(log.Origin(0), verifiers)
		if err != nil || opened.Size != 16 {
			t.Fatalf("covering checkpoint %+v, %v; want the one at size 16", opened, err)
		}
		path, err := chain.InclusionProof(store.Leaves(ctx, 0), 13, opened.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := chain.VerifyInclusion(got.ComputeLeafHash(), 13, opened, path); err != nil {
			t.Fatalf("proof built from stored leaves does not verify: %v", err)
		}
		if _, ok, _ := store.CoveringCheckpoint(ctx, 0, 24); ok {
			t.Fatal("seq 24 is after the last checkpoint (size 24) but a covering checkpoint was returned")
		}
		if _, err := store.Leaves(ctx, 0).LeafHashes(20, 30); err == nil || !strings.Contains(err.Error(), "no record at seq 25") {
			t.Fatalf("reading past the stored leaves: %v", err)
		}
		latest, err := store.LatestCheckpoints(ctx)
		if err != nil || len(latest) != 2 {
			t.Fatalf("LatestCheckpoints = %v, %v", latest, err)
		}
		if c, _ := latest[0].Unverified(); c.Size != 24 {
			t.Fatalf("latest checkpoint of partition 0 has size %d, want 24", c.Size)
		}
	})
}

func TestExportAndFollow(t *testing.T) {
	chtest.Each(t, func(t *testing.T, engine *clickhouse.Store) {
		store, _ := storedLog(t, engine)
		ctx := context.Background()
		f, err := query.Compile("event:skill.*", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := store.Export(ctx, clickhouse.ExportRequest{Filter: f}, func(r chain.Record) error {
			got = append(got, fmt.Sprintf("%d/%d", r.Partition, r.Seq))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 13+10 || got[0] != "0/0" || got[12] != "0/24" || got[13] != "1/0" || got[22] != "1/9" {
			t.Fatalf("export of event:skill.* = %v", got)
		}
		n := 0
		store.Export(ctx, clickhouse.ExportRequest{Tenants: []string{"globex"}}, func(r chain.Record) error { n++; return nil })
		if n != 10 {
			t.Fatalf("export of tenant globex returned %d records, want 10", n)
		}

		head, err := store.Head(ctx, nil)
		if err != nil || len(head) != 2 || head[0] != 24 || head[1] != 9 {
			t.Fatalf("Head = %v, %v", head, err)
		}
		// Scoped to a tenant, the head shows only that tenant's partitions: globex
		// has no event in partition 0, so its reader learns nothing of acme's 25.
		if gh, err := store.Head(ctx, []string{"globex"}); err != nil || len(gh) != 1 || gh[1] != 9 {
			t.Fatalf("Head(globex) = %v, %v", gh, err)
		}
		recs, pos, err := store.Follow(ctx, clickhouse.ExportRequest{}, head, 100)
		if err != nil || len(recs) != 0 {
			t.Fatalf("Follow at the head = %d records, %v", len(recs), err)
		}
		more := chaintest.New(t, "test", 0)
		at := time.Now().UTC()
		var fresh []chain.Record
		for i := 0; i < 3; i++ { // partition 2 is new; Follow must see it
			fresh = append(fresh, more.Add(2, "acme", at, chaintest.Doc("skill.deleted", "x", "skill", "s")))
		}
		if err := store.InsertRecords(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		recs, pos, err = store.Follow(ctx, clickhouse.ExportRequest{Tenants: []string{"acme"}}, pos, 2)
		if err != nil || len(recs) != 2 || recs[0].Partition != 2 || recs[1].Seq != 1 {
			t.Fatalf("Follow after new records = %v, %v", recs, err)
		}
		recs, _, err = store.Follow(ctx, clickhouse.ExportRequest{Tenants: []string{"acme"}}, pos, 2)
		if err != nil || len(recs) != 1 || recs[0].Seq != 2 {
			t.Fatalf("Follow resuming a cut page = %v, %v", recs, err)
		}
	})
}

func TestReadOnlySQL(t *testing.T) {
	chtest.Each(t, func(t *testing.T, engine *clickhouse.Store) {
		store, _ := storedLog(t, engine)
		ctx := context.Background()
		scope := sqlscope.Scope{Database: store.Database(), Tenants: []string{"globex"}}
		run := func(sql string, lim clickhouse.SQLLimits) ([]clickhouse.Column, [][]any, bool, error) {
			var cols []clickhouse.Column
			var rows [][]any
			trunc, err := store.ReadOnly(ctx, sql, lim, func(c []clickhouse.Column) error { cols = c; return nil }, func(r []any) error { rows = append(rows, r); return nil })
			return cols, rows, trunc, err
		}
		lim := clickhouse.SQLLimits{MaxRows: 100, MaxTime: 10 * time.Second, MaxMemory: 1 << 30}
		stmt, err := scope.Rewrite("SELECT tenant, count() AS n FROM audit_events GROUP BY tenant")
		if err != nil {
			t.Fatal(err)
		}
		cols, rows, trunc, err := run(stmt, lim)
		if err != nil || trunc || len(rows) != 1 || rows[0][0] != "globex" || rows[0][1] != uint64(10) || cols[1].Name != "n" || cols[1].Type != "UInt64" {
			t.Fatalf("scoped count = %v %v %v %v", cols, rows, trunc, err)
		}
		stmt, _ = scope.Rewrite("SELECT seq FROM audit_events ORDER BY seq")
		_, rows, trunc, err = run(stmt, clickhouse.SQLLimits{MaxRows: 4, MaxTime: 10 * time.Second})
		if err != nil || !trunc || len(rows) != 4 || rows[3][0] != uint64(3) {
			t.Fatalf("row limit: %v %v %v", rows, trunc, err)
		}
		// The server is the second lock: even unscoped statements cannot write or read
		// through table functions.
		// (numbers() is allowed read-only from some version on; file() never is.)
		if _, _, _, err := run("SELECT * FROM file('/etc/hostname', 'TSV', 'line String')", lim); err == nil || !strings.Contains(err.Error(), "readonly mode") {
			t.Errorf("a table function in read-only mode: %v", err)
		}
		// ... nor switch read-only off from inside (the embedded engine receives
		// readonly as text, which a subquery's own SETTINGS would override).
		if _, _, _, err := run("SELECT * FROM (SELECT * FROM file('/etc/hostname', 'TSV', 'line String') SETTINGS readonly = 0)", lim); err == nil || !strings.Contains(err.Error(), "readonly mode") {
			t.Errorf("a subquery setting readonly = 0: %v", err)
		}
	})
}

// TestReadOnlySQLTimeLimitHolds: a statement of many slow blocks (a sleep in each
// UNION ALL branch), which the server's max_execution_time alone let run for 14 ×
// 3 s under a 30 s limit, is stopped at the limit plus the kill grace, answered as
// a LimitError naming the limit, and killed on the server.
func TestReadOnlySQLTimeLimitHolds(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		branches := make([]string, 8)
		for i := range branches {
			branches[i] = "SELECT sleep(3) AS s"
		}
		stmt, err := sqlscope.Scope{Database: store.Database(), Tenants: []string{"acme"}}.Rewrite(strings.Join(branches, " UNION ALL "))
		if err != nil {
			t.Fatal(err)
		}
		const limit = 4 * time.Second
		start := time.Now()
		_, err = store.ReadOnly(context.Background(), stmt, clickhouse.SQLLimits{MaxRows: 100, MaxTime: limit}, func([]clickhouse.Column) error { return nil }, func([]any) error { return nil })
		took := time.Since(start)
		var le *clickhouse.LimitError
		if !errors.As(err, &le) || le.Limit != "max_execution_time=4s" {
			t.Fatalf("after %v: %v, want a LimitError naming max_execution_time", took, err)
		}
		if took > limit+2*time.Second {
			t.Errorf("stopped after %v; the limit is %v (+2 s allowed)", took, limit)
		}
		// The server no longer runs it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			var n uint64
			if _, err := store.ReadOnly(context.Background(), "SELECT count() FROM system.processes WHERE query LIKE '%sleep(3)%' AND query NOT LIKE '%system.processes%'",
				clickhouse.SQLLimits{MaxRows: 1, MaxTime: 5 * time.Second}, func([]clickhouse.Column) error { return nil },
				func(r []any) error { n = r[0].(uint64); return nil }); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d statements still running on the server after the kill", n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

func TestSavedQueries(t *testing.T) {
	chtest.Each(t, func(t *testing.T, store *clickhouse.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		for _, q := range []clickhouse.SavedQuery{
			{Tenant: "acme", Name: "skill-changes", Query: "event:skill.*", SavedBy: "a", SavedAt: now},
			{Tenant: "acme", Name: "denied", Query: "result:denied", SavedBy: "a", SavedAt: now},
			{Tenant: "globex", Name: "denied", Query: "result:failure", SavedBy: "b", SavedAt: now},
			{Tenant: "acme", Name: "skill-changes", Query: "event:skill.* after:-30d", Description: "last month", SavedBy: "c", SavedAt: now},
		} {
			if err := store.SaveQuery(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		list, err := store.SavedQueries(ctx, "acme")
		if err != nil || len(list) != 2 || list[0].Name != "denied" || list[1].Query != "event:skill.* after:-30d" || list[1].SavedBy != "c" || !list[1].SavedAt.Equal(now) {
			t.Fatalf("SavedQueries(acme) = %+v, %v", list, err)
		}
		if err := store.DeleteQuery(ctx, "acme", "denied", "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := store.SavedQuery(ctx, "acme", "denied"); !errors.Is(err, clickhouse.ErrNotFound) {
			t.Fatalf("deleted query: %v", err)
		}
		if q, err := store.SavedQuery(ctx, "globex", "denied"); err != nil || q.Query != "result:failure" {
			t.Fatalf("another tenant's query of the same name: %+v, %v", q, err)
		}
		if err := store.DeleteQuery(ctx, "acme", "nope", "a"); !errors.Is(err, clickhouse.ErrNotFound) {
			t.Fatalf("deleting a missing query: %v", err)
		}
	})
}
