package clickhouse

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chdb"
)

func TestBindPositionalSkipsQuotes(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		args        []any
		want        string
		wantErr     bool
	}{
		{"plain", "a = ? AND b = ?", []any{"x'y", uint64(7)}, `a = 'x\'y' AND b = 7`, false},
		{"? in a string stays", "a = '?' AND b = ?", []any{int32(-1)}, "a = '?' AND b = -1", false},
		{"escaped quote inside", `a = 'it\'s ?' AND b = ?`, []any{"z"}, `a = 'it\'s ?' AND b = 'z'`, false},
		{"? in identifiers stays", "`c?` = ? AND \"d?\" = 1", []any{true}, "`c?` = 1 AND \"d?\" = 1", false},
		{"NUL and backslash escaped", "a = ?", []any{"a\\b\x00"}, `a = 'a\\b\0'`, false},
		{"time binds as whole seconds, as clickhouse-go does", "t >= ?", []any{time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}, "t >= toDateTime('2026-01-02 03:04:05', 'UTC')", false},
		{"too few args", "a = ? AND b = ?", []any{1}, "", true},
		{"too many args", "a = ?", []any{1, 2}, "", true},
		{"unsupported type", "a = ?", []any{struct{}{}}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bindPositional(tc.query, tc.args)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("bindPositional(%q) = %q, %v; want %q (error %v)", tc.query, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestOverridesSettings(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT 1": false,
		"SELECT * FROM (SELECT 1 SETTINGS readonly=0)":    true,
		"SELECT 1 settings max_threads = 1":               true,
		"SELECT 'SETTINGS readonly=0' AS s":               false,
		"SELECT `settings` FROM t":                        false,
		"SELECT 1 AS my_settings_col":                     false,
		"SELECT 'a\\' SETTINGS' AS x SETTINGS readonly=0": true,
	} {
		if got := overridesSettings(q); got != want {
			t.Errorf("overridesSettings(%q) = %v, want %v", q, got, want)
		}
	}
}

// TestSettingsAreNeverDropped: a setting the embedded engine cannot render fails
// the statement instead of running it without that limit.
func TestSettingsAreNeverDropped(t *testing.T) {
	if _, err := settingsClause(map[string]any{"readonly": 1, "max_result_rows": struct{}{}}); err == nil {
		t.Fatal("an unrenderable setting was dropped")
	}
	if _, err := settingsClause(map[string]any{"bad name; DROP": 1}); err == nil {
		t.Fatal("a setting name that is not an identifier was accepted")
	}
	got, err := settingsClause(map[string]any{"readonly": 1, "max_execution_time": 5})
	if err != nil || got != " SETTINGS session_timezone = 'UTC', max_execution_time = 5, readonly = 1" {
		t.Fatalf("settingsClause = %q, %v", got, err)
	}
}

func TestAssign(t *testing.T) {
	var u64 uint64
	var i32 int32
	var b bool
	var s *string
	var ss []string
	str := "x"
	for _, tc := range []struct {
		name      string
		dest, val any
		ok        bool
	}{
		{"same type", &u64, uint64(3), true},
		{"numeric widening", &u64, uint32(3), true},
		{"numeric narrowing", &i32, int64(-2), true},
		{"bool", &b, true, true},
		{"number into bool refused, not a panic", &b, uint8(1), false},
		{"bool into number refused", &u64, true, false},
		{"nullable into pointer", &s, &str, true},
		{"array", &ss, []string{"a"}, true},
		{"string into number refused", &u64, "3", false},
		{"non-pointer destination", u64, uint64(1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := assign(tc.dest, tc.val); (err == nil) != tc.ok {
				t.Fatalf("assign(%T, %T) = %v; want ok %v", tc.dest, tc.val, err, tc.ok)
			}
		})
	}
}

// captureEngine records the statements it is given and answers nothing.
type captureEngine struct{ stmts []string }

func (c *captureEngine) QueryBytes(sql, _ string) ([]byte, error) {
	c.stmts = append(c.stmts, strings.Clone(sql))
	return nil, nil
}

// TestEmbeddedBatchColumnsMatchLiterals: a batch of whole columns renders exactly
// the VALUES that literal gives row by row (the one definition of how a value is
// written), for random values of every column type, escapes included, however the
// columns were cut into appended slices.
func TestEmbeddedBatchColumnsMatchLiterals(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	alphabet := []string{"a", "Z", "0", "\\", "'", "\x00", "\"", "\n", "é", "日", "\\'", "?", " "}
	str := func() string {
		var sb strings.Builder
		for range rng.IntN(12) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return sb.String()
	}
	zone := time.FixedZone("x", -5*3600)
	gens := []func(n int) any{
		func(n int) any { return fill(n, func() string { return str() }) },
		func(n int) any { return fill(n, func() uint32 { return rng.Uint32() }) },
		func(n int) any {
			return fill(n, func() uint64 { return []uint64{0, math.MaxUint64, rng.Uint64()}[rng.IntN(3)] })
		},
		func(n int) any {
			return fill(n, func() int64 { return []int64{math.MinInt64, -1, rng.Int64()}[rng.IntN(3)] })
		},
		func(n int) any { return fill(n, func() uint8 { return uint8(rng.UintN(256)) }) },
		func(n int) any {
			return fill(n, func() time.Time { return time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(zone) })
		},
		func(n int) any { return fill(n, func() bool { return rng.IntN(2) == 0 }) },
		func(n int) any { return fill(n, func() float64 { return rng.NormFloat64() }) },
	}
	for trial := range 200 {
		rows := rng.IntN(40)
		ncols := 1 + rng.IntN(len(gens))
		var want [][]any
		var cols []any
		for range ncols {
			col := gens[rng.IntN(len(gens))](rows)
			cols = append(cols, col)
		}
		for i := range rows {
			row := make([]any, ncols)
			for j, c := range cols {
				row[j] = reflect.ValueOf(c).Index(i).Interface()
			}
			want = append(want, row)
		}
		eng := &captureEngine{}
		b, err := embeddedConn{eng}.PrepareBatch(context.Background(), "INSERT INTO t (c)")
		if err != nil {
			t.Fatal(err)
		}
		for j, c := range cols {
			rv := reflect.ValueOf(c)
			for at := 0; at < rows || at == 0; {
				cut := at + rng.IntN(rows-at+1)
				if err := b.Column(j).Append(rv.Slice(at, cut).Interface()); err != nil {
					t.Fatal(err)
				}
				if at = cut; rows == 0 {
					break
				}
			}
		}
		if err := b.Send(); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		ref := &captureEngine{}
		rb, _ := embeddedConn{ref}.PrepareBatch(context.Background(), "INSERT INTO t (c)")
		for _, r := range want {
			if err := rb.Append(r...); err != nil {
				t.Fatal(err)
			}
		}
		if err := rb.Send(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(eng.stmts, ref.stmts) {
			t.Fatalf("trial %d: columns rendered\n%q\nrows rendered\n%q", trial, eng.stmts, ref.stmts)
		}
		if rows > 0 && !strings.HasPrefix(eng.stmts[0], "INSERT INTO t (c) SETTINGS session_timezone = 'UTC' FORMAT Values (") {
			t.Fatalf("trial %d: statement %.80q", trial, eng.stmts[0])
		}
	}
}

func fill[T any](n int, f func() T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = f()
	}
	return out
}

// TestEmbeddedBatchRejectsRaggedColumns: columns of different lengths fail the
// insert instead of shifting one column's values into other rows.
func TestEmbeddedBatchRejectsRaggedColumns(t *testing.T) {
	for _, tc := range []struct {
		name string
		cols []any
	}{
		{"second column short", []any{[]string{"a", "b"}, []uint32{1}}},
		{"first column short", []any{[]string{"a"}, []uint32{1, 2}}},
		{"a column left out", []any{[]string{"a"}, nil, []uint32{1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &captureEngine{}
			b, _ := embeddedConn{eng}.PrepareBatch(context.Background(), "INSERT INTO t")
			for j, c := range tc.cols {
				if c == nil {
					continue
				}
				if err := b.Column(j).Append(c); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Send(); err == nil || len(eng.stmts) != 0 {
				t.Fatalf("Send: %v, statements %q; want an error and nothing sent", err, eng.stmts)
			}
		})
	}
}

// TestEmbeddedBatchLiteralEscapes pins the escaping of the values both paths share.
func TestEmbeddedBatchLiteralEscapes(t *testing.T) {
	eng := &captureEngine{}
	b, _ := embeddedConn{eng}.PrepareBatch(context.Background(), "INSERT INTO t")
	at := time.Date(2026, 12, 6, 23, 4, 5, 6, time.FixedZone("x", 3600))
	if err := b.Column(0).Append([]string{"it's a\\b\x00c"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Column(1).Append([]time.Time{at}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	want := `INSERT INTO t SETTINGS session_timezone = 'UTC' FORMAT Values ('it\'s a\\b\0c','2026-12-06 22:04:05.000000006')`
	if len(eng.stmts) != 1 || eng.stmts[0] != want {
		t.Fatalf("statement %q, want %q", eng.stmts, want)
	}
}

// TestEmbeddedBatchRoundTrip: whatever bytes a value holds (quotes, backslashes,
// NUL, control bytes, invalid UTF-8), the in-process engine stores exactly the value
// the column path was given, the event text above all: a stored event that differs
// by one byte no longer verifies. Random rows, cut into random slices, inserted
// and read back.
func TestEmbeddedBatchRoundTrip(t *testing.T) {
	e := chdb.Shared(t)
	c := embeddedConn{e}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 5))
	db := fmt.Sprintf("rt_%d", rng.Uint32())
	for _, q := range []string{"CREATE DATABASE " + db,
		"CREATE TABLE " + db + ".t (k UInt32, s String, u UInt64, i Int64, at DateTime64(9, 'UTC'), b UInt8) ENGINE = MergeTree ORDER BY k"} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	special := []byte{0, '\\', '\'', '"', '\n', '\r', '\t', 0xff, 0xc3, 0x01, ')', ',', '?'}
	const n = 500
	k, s, u, i, at, bs := make([]uint32, n), make([]string, n), make([]uint64, n), make([]int64, n), make([]time.Time, n), make([]uint8, n)
	for r := range n {
		buf := make([]byte, rng.IntN(40))
		for j := range buf {
			if rng.IntN(3) == 0 {
				buf[j] = special[rng.IntN(len(special))]
			} else {
				buf[j] = byte(rng.UintN(256))
			}
		}
		k[r], s[r], u[r], i[r], bs[r] = uint32(r), string(buf), rng.Uint64(), rng.Int64()-math.MaxInt64/2, uint8(rng.UintN(256))
		at[r] = time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(time.FixedZone("y", 7*3600))
	}
	b, err := c.PrepareBatch(ctx, "INSERT INTO "+db+".t (k, s, u, i, at, b)")
	if err != nil {
		t.Fatal(err)
	}
	for j, col := range []any{k, s, u, i, at, bs} {
		rv := reflect.ValueOf(col)
		for from := 0; from < n; {
			to := min(n, from+1+rng.IntN(120))
			if err := b.Column(j).Append(rv.Slice(from, to).Interface()); err != nil {
				t.Fatal(err)
			}
			from = to
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	rows, err := c.Query(ctx, "SELECT k, s, u, i, at, b FROM "+db+".t ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for rows.Next() {
		var (
			gk  uint32
			gs  string
			gu  uint64
			gi  int64
			gat time.Time
			gb  uint8
		)
		if err := rows.Scan(&gk, &gs, &gu, &gi, &gat, &gb); err != nil {
			t.Fatal(err)
		}
		r := int(gk)
		if r != got || gs != s[r] || gu != u[r] || gi != i[r] || !gat.Equal(at[r]) || gb != bs[r] {
			t.Fatalf("row %d read back as (%d, %q, %d, %d, %v, %d), inserted (%q, %d, %d, %v, %d)", got, gk, gs, gu, gi, gat, gb, s[r], u[r], i[r], at[r], bs[r])
		}
		got++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("read back %d rows, inserted %d", got, n)
	}
}
