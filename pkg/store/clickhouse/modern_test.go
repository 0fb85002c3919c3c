package clickhouse_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chdb"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// buildChains makes parts partitions of n records each, with a checkpoint every 4.
func buildChains(t *testing.T, parts int32, n int) ([]chain.Record, []clickhouse.StoredCheckpoint) {
	t.Helper()
	skey, _, _ := chain.GenerateKey("cross-engine")
	signer, _ := chain.NewSigner(skey)
	// Inside the hot window: the modern table drops rows older than its TTL at once.
	base := time.Now().UTC().Truncate(time.Second).Add(-24 * time.Hour)
	var recs []chain.Record
	var cps []clickhouse.StoredCheckpoint
	for p := int32(0); p < parts; p++ {
		ch := chain.New(p)
		for i := 0; i < n; i++ {
			doc := map[string]any{
				"action": "tool.executed", "actor": map[string]any{"type": "user", "id": fmt.Sprintf("usr_%d", i%3), "email": "sarah@acme.example"},
				"resource": map[string]any{"type": "tool", "id": "Bash"},
				"session":  map[string]any{"id": "s1", "tool_use_id": fmt.Sprintf("toolu_%d_%d", p, i)},
				"result":   map[string]any{"status": "success"},
				"metadata": map[string]any{"tool_input": "{\"command\":\"echo 'quoted' \\\\ tab\\there\"}"},
			}
			st := event.Stamp{Tenant: "acme", Tool: "claude_code", ReceivedAt: base.Add(time.Duration(i) * time.Minute), Mapped: true}
			if err := st.Apply(doc); err != nil {
				t.Fatal(err)
			}
			_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := ch.Append(canon, base.Add(time.Duration(i)*time.Minute+987654321))
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
			if ch.Size()%4 == 0 {
				cp, err := ch.Sign(chain.Origin("test", "audit.chained", p), signer)
				if err != nil {
					t.Fatal(err)
				}
				cps = append(cps, clickhouse.StoredCheckpoint{Partition: p, SignedCheckpoint: cp})
			}
		}
	}
	return recs, cps
}

// literal renders a value as ClickHouse SQL, for the in-process engine only.
func literal(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(x) + "'"
	case uint8:
		return strconv.FormatUint(uint64(x), 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case int64:
		return strconv.FormatInt(x, 10)
	case time.Time:
		return "'" + x.UTC().Format("2006-01-02 15:04:05.000000000") + "'"
	}
	panic(fmt.Sprintf("literal: %T", v))
}

func bindLiterals(sql string, args []any) string {
	var b strings.Builder
	i := 0
	for _, part := range strings.Split(sql, "?") {
		b.WriteString(part)
		if i < len(args) && strings.Count(sql, "?") > i {
			b.WriteString(literal(args[i]))
			i++
		}
	}
	return b.String()
}

// TestModernDDLAndQueriesMatchLegacy runs the modern DDL on a ClickHouse 26.x engine in
// process and the legacy DDL on the 18.16 server, stores the same chains in both, and
// requires every query the store issues to return identical results on the two.
func TestModernDDLAndQueriesMatchLegacy(t *testing.T) {
	legacy := chtest.Store(t)
	if _, modern := legacy.Version(); modern {
		t.Fatal("the local server was expected to be the legacy generation")
	}
	db := legacy.Database()
	ctx := context.Background()
	engine := modernEngine(t, db)
	show, err := engine.Query("SHOW CREATE TABLE "+db+".audit_events", "TSVRaw")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DateTime64(9, 'UTC')", "LowCardinality(String)", "PROJECTION by_actor", "bloom_filter", "tokenbf_v1", "TTL", "ttl_only_drop_parts = 1"} {
		if !strings.Contains(show, want) {
			t.Errorf("modern audit_events lacks %s:\n%s", want, show)
		}
	}

	recs, cps := buildChains(t, 2, 300) // past one subtree of 256 leaves
	if err := legacy.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	signedAt := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if err := legacy.InsertCheckpointsAt(ctx, cps, signedAt); err != nil {
		t.Fatal(err)
	}
	engineInsertRecords(t, engine, db, recs)
	engineInsert(t, engine, db, "audit_checkpoints", clickhouse.CheckpointColumns, len(cps), func(i int) ([]any, error) { return clickhouse.CheckpointValues(cps[i], signedAt) })

	compared := 0
	for p := int32(0); p < 3; p++ { // partition 2 is empty in both
		for _, q := range clickhouse.Queries(db, p, 3) {
			sql := bindLiterals(q.SQL, q.Args)
			modern, err := engine.Query(sql, "TSV")
			if err != nil {
				t.Fatalf("%s on ClickHouse 26: %v\n%s", q.Name, err, sql)
			}
			out := legacyTSV(t, q.Name, sql)
			if modern != out {
				t.Errorf("partition %d %s differs:\n26.x: %.300q\n18.16: %.300q", p, q.Name, modern, out)
			}
			compared++
		}
	}
	t.Logf("%d queries returned identical results on ClickHouse %s and 18.16", compared, strings.TrimSpace(must(engine.Query("SELECT version()", "TSV"))))
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// modernEngine creates database db on the in-process ClickHouse 26 engine and runs the
// modern migrations there; the database is dropped when the test ends.
func modernEngine(t *testing.T, db string) *chdb.Engine {
	t.Helper()
	engine := chdb.Shared(t)
	if _, err := engine.Query("CREATE DATABASE IF NOT EXISTS "+db, "TSV"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Query("DROP DATABASE IF EXISTS "+db, "TSV") })
	migs, err := clickhouse.Migrations(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migs {
		for _, stmt := range m.Statements(db, 90*24*time.Hour) {
			if _, err := engine.Query(stmt, "TSV"); err != nil {
				t.Fatalf("modern migration %04d on ClickHouse 26: %v\n%s", m.Version, err, stmt)
			}
		}
	}
	return engine
}

// engineInsert inserts n rows into table on the engine: the values the store's batch
// inserts send, as SQL literals.
func engineInsert(t *testing.T, engine *chdb.Engine, db, table, columns string, n int, values func(i int) ([]any, error)) {
	t.Helper()
	rows := make([]string, n)
	for i := range rows {
		vals, err := values(i)
		if err != nil {
			t.Fatal(err)
		}
		lits := make([]string, len(vals))
		for j, v := range vals {
			lits[j] = literal(v)
		}
		rows[i] = "(" + strings.Join(lits, ", ") + ")"
	}
	if _, err := engine.Query("INSERT INTO "+db+"."+table+" ("+columns+") VALUES "+strings.Join(rows, ", "), "TSV"); err != nil {
		t.Fatal(err)
	}
}

func engineInsertRecords(t *testing.T, engine *chdb.Engine, db string, recs []chain.Record) {
	t.Helper()
	// Through the store's own insert path on the engine, so the tree tables are
	// filled exactly as a server's.
	st, err := clickhouse.OpenEmbedded(engine, clickhouse.EmbeddedOptions{Database: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.InsertRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// legacyTSV runs sql on the local 18.16 server and returns its TSV output.
func legacyTSV(t *testing.T, name, sql string) string {
	t.Helper()
	out, err := exec.Command("clickhouse-client", "--host", "127.0.0.1", "--port", strings.TrimPrefix(chtest.Addr, "127.0.0.1:"), "--format", "TSV", "--query", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("%s on ClickHouse 18.16: %v\n%s", name, err, out)
	}
	return string(out)
}
