package sqlscope

import (
	"errors"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/sqlcorpus"
)

var acme = Scope{Database: "trailkeep", Tenants: []string{"acme", "acme-eu"}}

const (
	scopedEvents      = "(SELECT * FROM `trailkeep`.`audit_events` WHERE `tenant` IN ('acme', 'acme-eu'))"
	scopedCheckpoints = "(SELECT * FROM `trailkeep`.`audit_checkpoints` WHERE `chain_partition` IN (SELECT DISTINCT `chain_partition` FROM `trailkeep`.`audit_events` WHERE `tenant` IN ('acme', 'acme-eu')))"
)

func TestRewritePrintsTheScopedTree(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"count", "SELECT count() FROM audit_events", "SELECT count() FROM " + scopedEvents + " AS `audit_events`"},
		{"alias and like", "select actor_id from trailkeep.audit_events e where e.action like 'skill.%';",
			"SELECT `actor_id` FROM " + scopedEvents + " AS `e` WHERE (`e`.`action` LIKE 'skill.%')"},
		{"join checkpoints", "SELECT a.seq FROM `audit_events` AS a JOIN audit_checkpoints c ON a.chain_partition = c.chain_partition",
			"SELECT `a`.`seq` FROM " + scopedEvents + " AS `a` JOIN " + scopedCheckpoints + " AS `c` ON (`a`.`chain_partition` = `c`.`chain_partition`)"},
		{"comment dropped", "SELECT * FROM (SELECT action FROM audit_events) -- comment FROM system.tables\n",
			"SELECT * FROM (SELECT `action` FROM " + scopedEvents + " AS `audit_events`)"},
		{"comma join", "SELECT seq FROM audit_events, audit_checkpoints",
			"SELECT `seq` FROM " + scopedEvents + " AS `audit_events` CROSS JOIN " + scopedCheckpoints + " AS `audit_checkpoints`"},
		{"cte inlined", "WITH recent AS (SELECT * FROM audit_events) SELECT count() FROM recent",
			"SELECT count() FROM (SELECT * FROM " + scopedEvents + " AS `audit_events`) AS `recent`"},
		{"array join and IN subquery", "SELECT arr FROM audit_events ARRAY JOIN [1,2] AS arr WHERE seq IN (SELECT seq FROM audit_events)",
			"SELECT `arr` FROM " + scopedEvents + " AS `audit_events` ARRAY JOIN [1, 2] AS `arr` WHERE (`seq` IN (SELECT `seq` FROM " + scopedEvents + " AS `audit_events`))"},
		{"strings stay strings", "SELECT 'FROM system.tables', \"audit_events\".seq FROM audit_events",
			"SELECT 'FROM system.tables', `audit_events`.`seq` FROM " + scopedEvents + " AS `audit_events`"},
		{"literals re-encoded", "SELECT 'it''s \\x01 é', -1, 1.5e3, 0x1F, NULL, true",
			"SELECT 'it\\'s \\x01 é', (- 1), 1.5e3, 0x1F, NULL, true"},
		{"scalar with kept", "WITH 3 AS k SELECT count() FROM audit_events WHERE seq > k",
			"WITH 3 AS `k` SELECT count() FROM " + scopedEvents + " AS `audit_events` WHERE (`seq` > `k`)"},
		{"in list", "SELECT count() FROM audit_events WHERE seq IN (1) AND seq NOT IN [2, 3]",
			"SELECT count() FROM " + scopedEvents + " AS `audit_events` WHERE ((`seq` IN (1)) AND (`seq` NOT IN (2, 3)))"},
		{"interval and lambda", "SELECT arrayMap(x -> x * 2, [seq]) FROM audit_events WHERE occurred_at > now() - INTERVAL 2 DAYS",
			"SELECT arrayMap(x -> (`x` * 2), [`seq`]) FROM " + scopedEvents + " AS `audit_events` WHERE (`occurred_at` > (now() - toIntervalDay(2)))"},
		{"canonical function names", "SELECT COUNT(), countif(seq > 1), SUMIFORNULL(seq, 1) FROM audit_events",
			"SELECT count(), countIf((`seq` > 1)), sumIfOrNull(`seq`, 1) FROM " + scopedEvents + " AS `audit_events`"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := acme.Rewrite(c.in)
			if err != nil || got != c.want {
				t.Errorf("Rewrite(%q)\n got %q, %v\nwant %q", c.in, got, err, c.want)
			}
		})
	}
	all, err := Scope{Database: "trailkeep"}.Rewrite("SELECT 1 FROM audit_events")
	if want := "SELECT 1 FROM (SELECT * FROM `trailkeep`.`audit_events`) AS `audit_events`"; err != nil || all != want {
		t.Errorf("unscoped: %q, %v", all, err)
	}
}

func TestRewriteRejectsWithOffsetAndReason(t *testing.T) {
	for _, c := range []struct{ in, token, msg string }{
		{"", "", "empty"},
		{"INSERT INTO audit_events VALUES (1)", "INSERT", "only SELECT"},
		{"SELECT 1; DROP TABLE audit_events", ";", "one statement"},
		{"SELECT * FROM system.tables", "system.tables", "only audit_events"},
		{"SELECT 0 IN (system.one)", "system.one", "reads a table"},
		{"SELECT 0 IN (trailkeep.audit_events)", "trailkeep.audit_events", "reads a table"},
		{"SELECT 0 IN system.one", "system", "IN needs a list"},
		{"SELECT in(0, system.one)", "in", "allowlist"},
		{"SELECT * FROM numbers(10)", "numbers", "table functions"},
		{"SELECT * FROM audit_events FINAL", "FINAL", "FINAL"},
		{"SELECT * FROM audit_events SETTINGS readonly = 0", "SETTINGS", "SETTINGS is not allowed"},
		{"SELECT * FROM audit_events FORMAT TSV", "FORMAT", "FORMAT is not allowed"},
		{"SELECT dictGetString('d', 'a', toUInt64(1))", "dictGetString", "allowlist"},
		{"SELECT x FROM audit_events", "x", "unknown column"},
		{"SELECT e.seq FROM audit_events", "e.seq", "no table"},
		{"SELECT 'unterminated", "'unterminated", "unterminated"},
		{"SELECT * FROM", "", "table name or subquery"},
		{"WITH x AS (SELECT * FROM system.tables) SELECT * FROM x", "system.tables", "only audit_events"},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := acme.Rewrite(c.in)
			var se *Error
			if !errors.As(err, &se) || !strings.Contains(se.Msg, c.msg) || se.Token != c.token {
				t.Fatalf("Rewrite(%q) = %q, %v; want an error at %q containing %q", c.in, got, err, c.token, c.msg)
			}
			if se.Pos < 0 || se.Pos > len(c.in) || (se.Token != "" && !strings.HasPrefix(c.in[se.Pos:], strings.SplitN(se.Token, ".", 2)[0])) {
				t.Errorf("offset %d does not point at %q in %q", se.Pos, se.Token, c.in)
			}
		})
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

// readCorpus returns the corpus with {db} as the database the tests scope to.
func readCorpus(t testing.TB) []sqlcorpus.Entry {
	c := sqlcorpus.Read(t)
	for i := range c {
		c[i].SQL = strings.ReplaceAll(c[i].SQL, "{db}", "trailkeep")
	}
	return c
}

// TestCorpus holds the corpus the differential oracle runs (pkg/store/clickhouse)
// to its verdicts, and every accepted statement to the invariants of the output.
func TestCorpus(t *testing.T) {
	corpus := readCorpus(t)
	if len(corpus) < 200 {
		t.Fatalf("the corpus has %d statements; keep at least 200", len(corpus))
	}
	for _, c := range corpus {
		out, err := acme.Rewrite(c.SQL)
		switch {
		case c.OK && err != nil:
			t.Errorf("refused %q: %v", c.SQL, err)
		case !c.OK && err == nil:
			t.Errorf("accepted %q as\n%s", c.SQL, out)
		case !c.OK:
			var se *Error
			if !errors.As(err, &se) || se.Pos < 0 || se.Pos > len(c.SQL) {
				t.Errorf("%q: %v is not a located *Error", c.SQL, err)
			}
		default:
			checkOutput(t, c.SQL, out)
		}
	}
}

// checkOutput asserts what must hold of every rewritten statement: each table
// reference (after FROM or JOIN) is a subquery or the scoped audit table, each IN
// is followed by a parenthesis that does not hold a bare name, and the output is
// itself accepted.
func checkOutput(t *testing.T, in, out string) {
	t.Helper()
	toks, err := lex(out)
	if err != nil {
		t.Fatalf("rewrite of %q does not lex: %v\n%s", in, err, out)
	}
	for i, tk := range toks {
		k := tk.keyword()
		if k == "IN" {
			if i+1 == len(toks) || toks[i+1].text != "(" {
				t.Fatalf("rewrite of %q has IN without a parenthesis: %s", in, out)
			}
			if i+3 < len(toks) && toks[i+3].text == ")" && (toks[i+2].kind == kindIdent || toks[i+2].kind == kindQuoted) {
				t.Fatalf("rewrite of %q has IN (name): %s", in, out)
			}
		}
		if (k != "FROM" && k != "JOIN") || (k == "JOIN" && toks[i-1].keyword() == "ARRAY") {
			continue
		}
		if i+1 == len(toks) {
			t.Fatalf("rewrite of %q ends in %s: %s", in, tk.text, out)
		}
		rest := out[toks[i+1].pos:]
		switch {
		case toks[i+1].text == "(":
		case strings.HasPrefix(rest, "`trailkeep`.`audit_events` WHERE `tenant` IN ('acme', 'acme-eu'))"):
		case strings.HasPrefix(rest, "`trailkeep`.`audit_checkpoints` WHERE `chain_partition` IN (SELECT DISTINCT"):
		default:
			t.Fatalf("rewrite of %q reads a table outside the scope at %.40q: %s", in, rest, out)
		}
	}
	if _, err := (Scope{Database: "trailkeep"}).Rewrite(out); err != nil {
		t.Fatalf("the rewrite of %q is not itself accepted: %v\n%s", in, err, out)
	}
}

// FuzzRewrite: whatever the input, an accepted statement reads the audit tables
// only through their scoped subqueries and never names a table after IN.
func FuzzRewrite(f *testing.F) {
	for _, c := range readCorpus(f) {
		f.Add(c.SQL)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		out, err := acme.Rewrite(sql)
		if err != nil {
			var se *Error
			if errors.As(err, &se) && (se.Pos < 0 || se.Pos > len(sql)) {
				t.Fatalf("error offset %d outside the statement of %d bytes", se.Pos, len(sql))
			}
			return
		}
		checkOutput(t, sql, out)
	})
}

// On a legacy server only the keyed joins 18.16 runs without reading
// uninitialised memory are accepted (Scope.Legacy); a modern scope accepts
// them all, and joins without a key are never affected.
func TestLegacyRefusesUnsafeJoins(t *testing.T) {
	for _, c := range []struct {
		join string
		safe bool
	}{
		{"JOIN audit_checkpoints c ON a.chain_partition = c.chain_partition", false},
		{"INNER JOIN audit_checkpoints c USING chain_partition", false},
		{"ALL INNER JOIN audit_checkpoints c USING (chain_partition)", false},
		{"ALL LEFT JOIN audit_checkpoints c ON a.chain_partition = c.chain_partition", false},
		{"LEFT OUTER JOIN audit_checkpoints c ON a.chain_partition = c.chain_partition", false},
		{"ANY RIGHT JOIN audit_checkpoints c USING chain_partition", false},
		{"ANY FULL OUTER JOIN audit_checkpoints c USING chain_partition", false},
		{"RIGHT JOIN audit_checkpoints c USING chain_partition", false},
		{"ANY JOIN audit_checkpoints c USING chain_partition", true},
		{"ANY INNER JOIN audit_checkpoints c ON a.chain_partition = c.chain_partition", true},
		{"any left join audit_checkpoints c USING chain_partition", true},
		{"ANY LEFT OUTER JOIN audit_checkpoints c USING chain_partition", true},
		{"CROSS JOIN audit_checkpoints c WHERE a.chain_partition = c.chain_partition", true},
		{", audit_checkpoints c WHERE a.chain_partition = c.chain_partition", true},
		{"ARRAY JOIN [1, 2] AS x", true},
	} {
		t.Run(c.join, func(t *testing.T) {
			sql := "SELECT a.seq FROM audit_events a " + c.join
			if _, err := (Scope{Database: "db", Tenants: []string{"acme"}}).Rewrite(sql); err != nil {
				t.Fatalf("modern scope refused %q: %v", sql, err)
			}
			_, err := Scope{Database: "db", Tenants: []string{"acme"}, Legacy: true}.Rewrite(sql)
			if c.safe {
				if err != nil {
					t.Fatalf("legacy scope refused %q: %v", sql, err)
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) || se.Pos != len("SELECT a.seq FROM audit_events a ") || !strings.Contains(se.Msg, "ANY INNER or ANY LEFT") {
				t.Fatalf("legacy scope on %q: %v, want the join refused at its first word", sql, err)
			}
		})
	}
	// Inside a subquery and a CTE too: the rule is the parser's, wherever a join is.
	for _, sql := range []string{
		"SELECT count() FROM (SELECT a.seq FROM audit_events a JOIN audit_events b USING seq)",
		"WITH t AS (SELECT a.seq FROM audit_events a JOIN audit_events b USING seq) SELECT count() FROM t",
		"SELECT seq FROM audit_events WHERE seq IN (SELECT a.seq FROM audit_events a JOIN audit_events b USING seq)",
	} {
		if _, err := (Scope{Database: "db", Legacy: true}).Rewrite(sql); err == nil {
			t.Errorf("legacy scope accepted %q", sql)
		}
	}
}

// The printed statement aliases every audit table and inlined CTE by its name,
// so an expression may not take one of those names (ClickHouse would refuse
// the scoped statement, or let the alias shadow the table, though the original
// ran). The error points at the alias.
func TestRewriteRefusesAnExpressionNamedLikeATable(t *testing.T) {
	for _, c := range []struct{ sql, alias, at string }{ // at: the text that starts at the alias
		{"SELECT chain_partition audit_checkpoints, count() FROM audit_checkpoints GROUP BY chain_partition", "audit_checkpoints", "audit_checkpoints,"},
		{"SELECT count() FROM (SELECT seq AS audit_events FROM audit_events UNION ALL SELECT seq FROM audit_events)", "audit_events", "audit_events FROM audit_events UNION"},
		{"WITH 1 AS audit_events SELECT count() FROM audit_events", "audit_events", "audit_events SELECT"},
		{"WITH t AS (SELECT seq FROM audit_events) SELECT seq AS t FROM t", "t", "t FROM t"},
		{"SELECT x FROM audit_events ARRAY JOIN [1, 2] AS audit_checkpoints", "audit_checkpoints", "audit_checkpoints"},
	} {
		t.Run(c.sql, func(t *testing.T) {
			_, err := Scope{Database: "db", Tenants: []string{"acme"}}.Rewrite(c.sql)
			var se *Error
			if !errors.As(err, &se) || se.Token != c.alias || se.Pos != strings.Index(c.sql, c.at) {
				t.Fatalf("Rewrite(%q) = %v, want the alias %s refused where it is defined", c.sql, err, c.alias)
			}
		})
	}
	for _, sql := range []string{
		"SELECT seq AS events FROM audit_events",
		"SELECT a.seq AS b FROM audit_events a JOIN audit_events b USING seq",
	} {
		if _, err := (Scope{Database: "db"}).Rewrite(sql); err != nil {
			t.Errorf("Rewrite(%q) = %v", sql, err)
		}
	}
}
