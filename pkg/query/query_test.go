package query

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 2, 19, 12, 0, 0, 0, time.UTC)

func unix(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.Unix()
}

func TestCompile(t *testing.T) {
	for _, c := range []struct {
		q     string
		where string
		args  []any
	}{
		{"", "1", nil},
		{"actor:any event:*", "1", nil},
		{"actor:any event:skill.* after:2026-01-19 before:2026-02-19",
			"(action LIKE ? AND toUnixTimestamp(occurred_at) >= ? AND toUnixTimestamp(occurred_at) < ?)",
			[]any{"skill.%", unix("2026-01-19T00:00:00Z"), unix("2026-02-19T00:00:00Z")}},
		{"actor:user:sarah@acme.example after:2026-01-01 before:2026-02-01",
			"((actor_type = ? AND (actor_id = ? OR actor_email = ?)) AND toUnixTimestamp(occurred_at) >= ? AND toUnixTimestamp(occurred_at) < ?)",
			[]any{"user", "sarah@acme.example", "sarah@acme.example", unix("2026-01-01T00:00:00Z"), unix("2026-02-01T00:00:00Z")}},
		{"event:team.* resource:team:acme-platform",
			"(action LIKE ? AND (resource_type = ? AND (resource_id = ? OR resource_name = ?)))", []any{"team.%", "team", "acme-platform", "acme-platform"}},
		{"resource:skill:*", "resource_type = ?", []any{"skill"}},
		{"resource:*:api-conventions", "(resource_id = ? OR resource_name = ?)", []any{"api-conventions", "api-conventions"}},
		{"actor:any OR event:x", "1", nil},
		{"tenant:acme (actor:any OR event:x)", "tenant = ?", []any{"acme"}},
		{"resource:api-conventions", "(resource_id = ? OR resource_name = ?)", []any{"api-conventions", "api-conventions"}},
		{"actor:type:service", "actor_type = ?", []any{"service"}},
		{"actor:agent:*", "actor_type = ?", []any{"agent"}},
		{"(result:failure OR result:denied) after:-24h",
			"((result_status = ? OR result_status = ?) AND toUnixTimestamp(occurred_at) >= ?)",
			[]any{"failure", "denied", now.Add(-24 * time.Hour).Unix()}},
		{"-actor:bot NOT source:registry", "(NOT (actor_id = ? OR actor_email = ?) AND NOT source_tool = ?)", []any{"bot", "bot", "registry"}},
		{"session:s1 AND tool_use:toolu_*", "(session_id = ? AND tool_use_id LIKE ?)", []any{"s1", "toolu\\_%"}},
		{`"rate limiting" tenant:acme`, "(positionCaseInsensitive(event, ?) > 0 AND tenant = ?)", []any{"rate limiting", "acme"}},
		{`actor:"Sarah Connor"`, "(actor_id = ? OR actor_email = ?)", []any{"Sarah Connor", "Sarah Connor"}},
		{"event:100%_done?", "action LIKE ?", []any{`100\%\_done_`}},
		{"id:0193a", "event_id = ?", []any{"0193a"}},
		{"a OR b c", "(positionCaseInsensitive(event, ?) > 0 OR (positionCaseInsensitive(event, ?) > 0 AND positionCaseInsensitive(event, ?) > 0))", []any{"a", "b", "c"}},
		{"after:-30d", "toUnixTimestamp(occurred_at) >= ?", []any{now.Add(-30 * 24 * time.Hour).Unix()}},
		{"before:now", "toUnixTimestamp(occurred_at) < ?", []any{now.Unix()}},
		{"after:2026-01-19T10:00:00.5+01:00", "toUnixTimestamp(occurred_at) >= ?", []any{unix("2026-01-19T09:00:00Z")}},
		{"-actor:any", "0", nil},
	} {
		f, err := Compile(c.q, now)
		if err != nil {
			t.Errorf("%q: %v", c.q, err)
			continue
		}
		if f.Where != c.where || !reflect.DeepEqual(f.Args, c.args) {
			t.Errorf("%q:\n got %s %v\nwant %s %v", c.q, f.Where, f.Args, c.where, c.args)
		}
		if strings.Count(f.Where, "?") != len(f.Args) {
			t.Errorf("%q: %d placeholders for %d args", c.q, strings.Count(f.Where, "?"), len(f.Args))
		}
	}
}

func TestErrorsPointAtTheToken(t *testing.T) {
	for _, c := range []struct {
		q, token, msg string
		col           int
	}{
		{"actor:any after:yesterday", "after:yesterday", "after: must be an RFC 3339 time", 11},
		{"colour:red", "colour:red", `unknown key "colour"`, 1},
		{"event:skill.* result:ok", "result:ok", "result: must be one of success, failure, denied, pending", 15},
		{"(event:a OR event:b", "(", "never closed", 1},
		{"event:a)", ")", "without its '('", 8},
		{"event:a OR", "OR", "OR needs a term on both sides", 9},
		{"OR event:a", "OR", "OR needs a term on both sides", 1},
		{"event:a AND", "AND", "AND needs a term on both sides", 9},
		{"NOT", "NOT", "NOT needs a term", 1},
		{"actor:", "actor:", "actor: needs a value", 1},
		{":x", ":x", "needs a key", 1},
		{`actor:"sarah`, `"sarah`, "unterminated", 7},
		{"actor:type:robot", "actor:type:robot", "actor:type: must be one of", 1},
		{"after:-5y", "after:-5y", "relative", 1},
		{"after:-99999999999d", "after:-99999999999d", "relative", 1},
		{"()", "()", "empty group", 1},
	} {
		_, err := Compile(c.q, now)
		var qe *Error
		if !errors.As(err, &qe) {
			t.Errorf("%q: got %v, want a query error", c.q, err)
			continue
		}
		if qe.Token != c.token || qe.Pos+1 != c.col || !strings.Contains(qe.Msg, c.msg) {
			t.Errorf("%q: got column %d token %q %q; want column %d token %q containing %q", c.q, qe.Pos+1, qe.Token, qe.Msg, c.col, c.token, c.msg)
		}
	}
}

// TestValuesNeverBecomeSQL: whatever a value holds, the SQL text is built only from
// this package's own fragments; the value shows up only among the arguments.
func TestValuesNeverBecomeSQL(t *testing.T) {
	attacks := []string{
		`x' OR 1=1 --`, `x\' OR 1=1`, `'); DROP TABLE audit_events; --`, `x" OR "1"="1`,
		"x\x00y", `\'`, `?`, `1) OR (1=1`, "`tenant`", `$(id)`, "x;SELECT * FROM system.users",
	}
	for _, a := range attacks {
		for _, key := range []string{"actor", "event", "resource", "tenant", "session", "tool_use", "id", "source", ""} {
			q := fmt.Sprintf(`%s:"%s"`, key, strings.ReplaceAll(strings.ReplaceAll(a, `\`, `\\`), `"`, `\"`))
			if key == "" {
				q = q[1:]
			}
			f, err := Compile(q, now)
			if err != nil {
				continue // refused: equally safe
			}
			sqlText := f.Where
			for _, bad := range []string{"DROP", "1=1", "system.users", "--", ";", "'", "`", "$("} {
				if strings.Contains(sqlText, bad) {
					t.Errorf("%s: value reached the SQL text: %s", q, sqlText)
				}
			}
			if strings.Count(sqlText, "?") != len(f.Args) {
				t.Errorf("%s: %d placeholders for %d args", q, strings.Count(sqlText, "?"), len(f.Args))
			}
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"actor:user:sarah@acme.example event:skill.* after:-30d", `(a OR -b) "c d" resource:team:x`, `actor:"x\"y"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		fl, err := Compile(q, now)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) || qe.Pos < 0 || qe.Pos > len(q) {
				t.Fatalf("%q: error without a position in the query: %v", q, err)
			}
			return
		}
		if strings.Count(fl.Where, "?") != len(fl.Args) {
			t.Fatalf("%q: %d placeholders for %d args", q, strings.Count(fl.Where, "?"), len(fl.Args))
		}
		if strings.ContainsAny(fl.Where, "'\"`;") {
			t.Fatalf("%q: quote or semicolon in SQL text %s", q, fl.Where)
		}
	})
}

// TestOccurredSpan: the occurred_at range a filter implies, through AND (intersect),
// OR (hull) and NOT (unbounded). A store skips data outside it, so a span narrower
// than the filter's matches would hide events: every case errs wide, never narrow.
func TestOccurredSpan(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	sec := func(d string) int64 {
		at, err := time.Parse(time.DateOnly, d)
		if err != nil {
			t.Fatal(err)
		}
		return at.Unix()
	}
	for _, tc := range []struct {
		q    string
		want Span
	}{
		{"", Span{}},
		{"event:skill.*", Span{}},
		{"after:2026-01-01", Span{HasFrom: true, From: sec("2026-01-01")}},
		{"before:2026-02-01", Span{HasTo: true, To: sec("2026-02-01")}},
		{"after:2026-01-01 before:2026-02-01", Span{HasFrom: true, From: sec("2026-01-01"), HasTo: true, To: sec("2026-02-01")}},
		{"after:2026-01-01 after:2026-01-05", Span{HasFrom: true, From: sec("2026-01-05")}},
		{"after:2026-01-01 OR after:2026-01-05", Span{HasFrom: true, From: sec("2026-01-01")}},
		{"after:2026-01-01 OR event:skill.*", Span{}},
		{"(after:2026-01-01 before:2026-01-10) OR (after:2026-03-01 before:2026-03-05)", Span{HasFrom: true, From: sec("2026-01-01"), HasTo: true, To: sec("2026-03-05")}},
		{"-after:2026-01-01", Span{}},
		{"NOT (after:2026-01-01 before:2026-02-01)", Span{}},
		{"actor:u1 (after:2026-01-01 OR before:2025-01-01)", Span{}},
		{"after:-1d", Span{HasFrom: true, From: now.Add(-24 * time.Hour).Unix()}},
	} {
		t.Run(tc.q, func(t *testing.T) {
			f, err := Compile(tc.q, now)
			if err != nil {
				t.Fatal(err)
			}
			if f.Occurred != tc.want {
				t.Fatalf("span %+v, want %+v", f.Occurred, tc.want)
			}
		})
	}
}
