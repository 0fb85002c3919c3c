package clickhouse

import (
	"testing"
	"time"
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
