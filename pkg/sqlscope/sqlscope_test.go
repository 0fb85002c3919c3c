package sqlscope

import (
	"errors"
	"strings"
	"testing"
)

var acme = Scope{Database: "trailkeep", Tenants: []string{"acme", "acme-eu"}}

func TestRewriteScopesEveryReference(t *testing.T) {
	const scoped = "(SELECT * FROM trailkeep.audit_events WHERE tenant IN ('acme', 'acme-eu'))"
	for _, c := range []struct{ in, want string }{
		{"SELECT count() FROM audit_events", "SELECT count ( ) FROM " + scoped + " AS audit_events"},
		{"select actor_id from trailkeep.audit_events e where e.action like 'skill.%';",
			"select actor_id from " + scoped + " e where e . action like 'skill.%'"},
		{"SELECT a.seq FROM `audit_events` AS a JOIN audit_checkpoints c ON a.chain_partition = c.chain_partition",
			"SELECT a . seq FROM " + scoped + " AS a JOIN trailkeep.audit_checkpoints c ON a . chain_partition = c . chain_partition"},
		{"SELECT * FROM (SELECT action FROM audit_events) -- comment FROM system.tables\n",
			"SELECT * FROM ( SELECT action FROM " + scoped + " AS audit_events )"},
		{"SELECT x FROM audit_events, audit_checkpoints",
			"SELECT x FROM " + scoped + " AS audit_events , trailkeep.audit_checkpoints AS audit_checkpoints"},
		{"WITH recent AS (SELECT * FROM audit_events) SELECT count() FROM recent",
			"WITH recent AS ( SELECT * FROM " + scoped + " AS audit_events ) SELECT count ( ) FROM `recent`"},
		{"SELECT arr FROM audit_events ARRAY JOIN [1,2] AS arr WHERE seq IN (SELECT seq FROM audit_events)",
			"SELECT arr FROM " + scoped + " AS audit_events ARRAY JOIN [ 1 , 2 ] AS arr WHERE seq IN ( SELECT seq FROM " + scoped + " AS audit_events )"},
		{"SELECT 'FROM system.tables', \"audit_events\".seq FROM audit_events",
			"SELECT 'FROM system.tables' , \"audit_events\" . seq FROM " + scoped + " AS audit_events"},
	} {
		got, err := acme.Rewrite(c.in)
		if err != nil || got != c.want {
			t.Errorf("Rewrite(%q)\n got %q, %v\nwant %q", c.in, got, err, c.want)
		}
	}
	all, err := Scope{Database: "trailkeep"}.Rewrite("SELECT 1 FROM audit_events")
	if err != nil || all != "SELECT 1 FROM (SELECT * FROM trailkeep.audit_events) AS audit_events" {
		t.Errorf("unscoped: %q, %v", all, err)
	}
}

func TestRewriteRejects(t *testing.T) {
	for _, c := range []struct{ in, token, msg string }{
		{"", "", "empty"},
		{"INSERT INTO audit_events VALUES (1)", "INSERT", "only SELECT"},
		{"DROP TABLE audit_events", "DROP", "only SELECT"},
		{"SELECT 1; DROP TABLE audit_events", ";", "one statement"},
		{"SELECT * FROM system.tables", "system.tables", "only audit_events"},
		{"SELECT * FROM other.audit_events", "other.audit_events", "only audit_events"},
		{"SELECT * FROM default.audit_events", "default.audit_events", "only audit_events"},
		{"SELECT * FROM users", "users", "only audit_events"},
		{"SELECT * FROM audit_events JOIN secrets ON 1", "secrets", "only audit_events"},
		{"SELECT * FROM audit_events, system.one", "system.one", "only audit_events"},
		{"SELECT * FROM file('/etc/passwd', 'TSV', 'a String')", "file", "table functions"},
		{"SELECT * FROM remote('h', system.one)", "remote", "table functions"},
		{"SELECT * FROM numbers(10)", "numbers", "table functions"},
		{"SELECT * FROM audit_events FINAL", "FINAL", "FINAL"},
		{"SELECT * FROM audit_events SETTINGS readonly = 0", "SETTINGS", "SETTINGS is not allowed"},
		{"SELECT * FROM audit_events INTO OUTFILE '/tmp/x'", "INTO", "INTO is not allowed"},
		{"SELECT * FROM audit_events FORMAT TSV", "FORMAT", "FORMAT is not allowed"},
		{"SELECT dictGetString('d', 'a', toUInt64(1))", "dictGetString", "dictionaries"},
		{"SELECT joinGet('j', 'v', 1)", "joinGet", "dictionaries"},
		{"SELECT 1 WHERE 1 IN audit_events", "audit_events", "IN needs"},
		{"SELECT 'unterminated", "'unterminated", "unterminated"},
		{"SELECT 1 /* open", "/*", "unterminated"},
		{"SELECT * FROM", "FROM", "must follow"},
		{"WITH x AS (SELECT * FROM system.tables) SELECT * FROM x", "system.tables", "only audit_events"},
	} {
		got, err := acme.Rewrite(c.in)
		var se *Error
		if !errors.As(err, &se) || !strings.Contains(se.Msg, c.msg) || se.Token != c.token {
			t.Errorf("Rewrite(%q) = %q, %v; want an error at %q containing %q", c.in, got, err, c.token, c.msg)
		}
	}
}

func TestRewriteRefusesBadScope(t *testing.T) {
	if _, err := (Scope{Database: "x; DROP"}).Rewrite("SELECT 1"); err == nil {
		t.Error("a database name that is not an identifier was accepted")
	}
	if _, err := (Scope{Database: "trailkeep", Tenants: []string{"a') OR 1=1 --"}}).Rewrite("SELECT 1"); err == nil {
		t.Error("a tenant that is not a slug was accepted")
	}
}

// FuzzRewrite: whatever the input, an accepted statement reads audit_events only
// through the tenant-restricted subquery.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{"SELECT * FROM audit_events", "SELECT 1 FROM audit_events a JOIN audit_checkpoints USING chain_partition",
		"WITH x AS (SELECT 1 FROM audit_events) SELECT * FROM x", "SELECT `a``b` FROM \"audit_events\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		out, err := acme.Rewrite(sql)
		if err != nil {
			return
		}
		toks, err := lex(out)
		if err != nil {
			t.Fatalf("rewrite of %q does not lex: %v", sql, err)
		}
		for i, tk := range toks {
			if k := tk.keyword(); (k != "FROM" && k != "JOIN") || (k == "JOIN" && toks[i-1].keyword() == "ARRAY") {
				continue
			}
			if i+1 == len(toks) {
				t.Fatalf("rewrite of %q ends in %s: %s", sql, tk.text, out)
			}
			next := toks[i+1]
			switch {
			case next.text == "(", next.kind == kindQuoted && next.text[0] == '`': // subquery or CTE
			case i+3 < len(toks) && next.text == "trailkeep" && toks[i+2].text == "." && toks[i+3].text == CheckpointsTable:
			case i+5 < len(toks) && next.text == "trailkeep" && toks[i+2].text == "." && toks[i+3].text == EventsTable &&
				toks[i-1].text == "*" && toks[i-2].keyword() == "SELECT" && toks[i-3].text == "(" &&
				toks[i+4].keyword() == "WHERE" && toks[i+5].text == "tenant":
			default:
				t.Fatalf("rewrite of %q reads a table outside the scope at %q: %s", sql, next.text, out)
			}
		}
	})
}
