// Package sqlscope turns a power user's SQL into a statement that can only read the
// audit tables, and only the rows of the caller's tenants.
//
// It is the first of two locks. The second is ClickHouse itself: the query API runs
// every statement with readonly=1, so even a statement that slipped through here
// could not write, change settings or call a table function. What only this package
// can enforce is the scope: which tables a statement reads (the audit tables of one
// database, never system.* or another database) and which rows (every reference to
// audit_events becomes a subquery restricted to the caller's tenants, wherever it
// appears: FROM, JOIN, subqueries, CTEs).
//
// The statement is tokenised, not parsed: the rules are stated on tokens (a table
// reference is whatever follows FROM or JOIN), so constructs the tokenizer does not
// understand are rejected rather than guessed at.
package sqlscope

import (
	"fmt"
	"regexp"
	"strings"
)

// Tables a statement may read.
const (
	EventsTable      = "audit_events"
	CheckpointsTable = "audit_checkpoints"
)

// Error is a statement the scope rejects. Pos is the byte offset of Token in the
// statement.
type Error struct {
	Pos   int
	Token string
	Msg   string
}

func (e *Error) Error() string {
	if e.Token == "" {
		return "sql: " + e.Msg
	}
	return fmt.Sprintf("sql: at offset %d (%q): %s", e.Pos, e.Token, e.Msg)
}

// Scope is what a caller may read.
type Scope struct {
	// Database holds the audit tables.
	Database string
	// Tenants restricts audit_events to these tenants; empty means every tenant
	// (admin tokens only).
	Tenants []string
}

var (
	identRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
)

// Rewrite checks sql and returns the statement to run: the same query with every
// audit table reference qualified by the database and audit_events restricted to
// the tenants. It rejects anything but one SELECT (or WITH ... SELECT) statement
// over the audit tables.
func (s Scope) Rewrite(sql string) (string, error) {
	if !identRE.MatchString(s.Database) {
		return "", fmt.Errorf("sqlscope: database name %q is not an identifier", s.Database)
	}
	for _, t := range s.Tenants {
		if !tenantRE.MatchString(t) {
			return "", fmt.Errorf("sqlscope: tenant %q is not a slug", t)
		}
	}
	toks, err := lex(sql)
	if err != nil {
		return "", err
	}
	// Drop one trailing semicolon; any other ends a statement and starts another.
	if n := len(toks); n > 0 && toks[n-1].text == ";" {
		toks = toks[:n-1]
	}
	if len(toks) == 0 {
		return "", &Error{Msg: "the statement is empty"}
	}
	if k := toks[0].keyword(); k != "SELECT" && k != "WITH" {
		return "", &Error{Pos: toks[0].pos, Token: toks[0].text, Msg: "only SELECT statements are allowed"}
	}
	ctes := cteNames(toks)
	var out strings.Builder
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.text == ";" {
			return "", &Error{Pos: t.pos, Token: t.text, Msg: "send one statement per request"}
		}
		switch k := t.keyword(); k {
		case "INTO", "SETTINGS":
			return "", &Error{Pos: t.pos, Token: t.text, Msg: k + " is not allowed: the server sets the limits and returns the result"}
		case "FORMAT":
			if i+1 >= len(toks) || toks[i+1].text != "(" {
				return "", &Error{Pos: t.pos, Token: t.text, Msg: "FORMAT is not allowed: results are returned as JSON"}
			}
		case "IN":
			if i+1 < len(toks) && toks[i+1].kind != kindPunct {
				return "", &Error{Pos: toks[i+1].pos, Token: toks[i+1].text, Msg: "IN needs a list or a subquery: write IN (SELECT ... FROM ...)"}
			}
		case "FROM", "JOIN":
			if k == "JOIN" && i > 0 && toks[i-1].keyword() == "ARRAY" {
				break // ARRAY JOIN takes an array expression, not a table
			}
			out.WriteString(t.text)
			out.WriteByte(' ')
			next, err := s.tableList(toks, i+1, ctes, k == "FROM", &out)
			if err != nil {
				return "", err
			}
			i = next - 1
			continue
		}
		if t.kind == kindIdent && i+1 < len(toks) && toks[i+1].text == "(" && forbiddenFunc(t.text) {
			return "", &Error{Pos: t.pos, Token: t.text, Msg: "functions that read other tables or dictionaries are not allowed"}
		}
		out.WriteString(t.text)
		out.WriteByte(' ')
	}
	return strings.TrimSpace(out.String()), nil
}

// tableList rewrites the table references starting at toks[i] (after FROM or JOIN)
// and returns the index of the first token after them. After FROM a comma continues
// the list (an implicit cross join).
func (s Scope) tableList(toks []token, i int, ctes map[string]bool, commas bool, out *strings.Builder) (int, error) {
	for {
		if i >= len(toks) {
			return 0, &Error{Pos: toks[len(toks)-1].pos, Token: toks[len(toks)-1].text, Msg: "a table or subquery must follow"}
		}
		t := toks[i]
		if t.text == "(" { // a subquery: its own FROMs are checked as the scan reaches them
			return i, nil
		}
		if t.kind != kindIdent && t.kind != kindQuoted {
			return 0, &Error{Pos: t.pos, Token: t.text, Msg: "a table name or subquery must follow"}
		}
		db, name, next := "", t.name(), i+1
		if next+1 < len(toks) && toks[next].text == "." && (toks[next+1].kind == kindIdent || toks[next+1].kind == kindQuoted) {
			db, name, next = name, toks[next+1].name(), next+2
		}
		if next < len(toks) && toks[next].text == "(" {
			return 0, &Error{Pos: t.pos, Token: t.text, Msg: "table functions are not allowed; read " + EventsTable + " or " + CheckpointsTable}
		}
		switch {
		case (db == "" || db == s.Database) && name == EventsTable:
			if next < len(toks) && (toks[next].keyword() == "FINAL" || toks[next].keyword() == "SAMPLE") {
				return 0, &Error{Pos: toks[next].pos, Token: toks[next].text, Msg: "FINAL and SAMPLE are not allowed on " + EventsTable}
			}
			out.WriteString("(SELECT * FROM " + s.Database + "." + EventsTable)
			if len(s.Tenants) > 0 {
				quoted := make([]string, len(s.Tenants))
				for j, tn := range s.Tenants {
					quoted[j] = "'" + tn + "'" // slugs: nothing to escape
				}
				out.WriteString(" WHERE tenant IN (" + strings.Join(quoted, ", ") + ")")
			}
			out.WriteString(")")
			if !hasAlias(toks, next) {
				out.WriteString(" AS " + EventsTable)
			}
		case (db == "" || db == s.Database) && name == CheckpointsTable:
			out.WriteString(s.Database + "." + CheckpointsTable)
			if !hasAlias(toks, next) {
				out.WriteString(" AS " + CheckpointsTable)
			}
		case db == "" && ctes[name]:
			// Checked after the audit tables: a CTE cannot shadow them.
			out.WriteString(quoteIdent(name))
		default:
			full := name
			if db != "" {
				full = db + "." + name
			}
			return 0, &Error{Pos: t.pos, Token: full, Msg: fmt.Sprintf("only %s and %s (of database %s) can be read", EventsTable, CheckpointsTable, s.Database)}
		}
		out.WriteByte(' ')
		i = next
		// Copy an alias, then continue a comma-separated FROM list.
		if i < len(toks) && toks[i].keyword() == "AS" {
			if i+1 >= len(toks) || !(toks[i+1].kind == kindQuoted || toks[i+1].kind == kindIdent && !clauseKeywords[toks[i+1].keyword()]) {
				return 0, &Error{Pos: toks[i].pos, Token: toks[i].text, Msg: "an alias name must follow AS"}
			}
			out.WriteString(toks[i].text + " " + toks[i+1].text + " ")
			i += 2
		} else if hasAlias(toks, i) {
			out.WriteString(toks[i].text + " ")
			i++
		}
		if !commas || i >= len(toks) || toks[i].text != "," {
			return i, nil
		}
		out.WriteString(", ")
		i++
	}
}

// hasAlias reports whether toks[i] starts a table alias.
func hasAlias(toks []token, i int) bool {
	if i >= len(toks) {
		return false
	}
	t := toks[i]
	if t.keyword() == "AS" {
		return true
	}
	return (t.kind == kindIdent && !clauseKeywords[t.keyword()]) || t.kind == kindQuoted
}

// clauseKeywords may follow a table reference; anything else bare is an alias.
var clauseKeywords = map[string]bool{
	"WHERE": true, "PREWHERE": true, "GROUP": true, "ORDER": true, "LIMIT": true, "HAVING": true, "OFFSET": true,
	"JOIN": true, "INNER": true, "LEFT": true, "RIGHT": true, "FULL": true, "CROSS": true, "OUTER": true,
	"ANY": true, "ALL": true, "ASOF": true, "SEMI": true, "ANTI": true, "ARRAY": true, "GLOBAL": true, "LOCAL": true,
	"ON": true, "USING": true, "UNION": true, "EXCEPT": true, "INTERSECT": true, "FINAL": true, "SAMPLE": true,
	"WITH": true, "FROM": true, "SELECT": true, "BY": true, "AND": true, "OR": true, "NOT": true, "IN": true, "INTO": true, "FORMAT": true, "SETTINGS": true, "WINDOW": true, "QUALIFY": true, "PASTE": true,
}

// cteNames returns the names a WITH clause defines as subqueries ("name AS (SELECT").
func cteNames(toks []token) map[string]bool {
	names := map[string]bool{}
	for i := 0; i+3 < len(toks); i++ {
		if (toks[i].kind == kindIdent || toks[i].kind == kindQuoted) && toks[i+1].keyword() == "AS" && toks[i+2].text == "(" &&
			(toks[i+3].keyword() == "SELECT" || toks[i+3].keyword() == "WITH") {
			names[toks[i].name()] = true
		}
	}
	return names
}

// forbiddenFunc names functions that read tables or dictionaries by name, which
// would bypass the table rules.
func forbiddenFunc(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "dict") || n == "joinget" || n == "joingetornull" || n == "hascolumnintable" ||
		n == "file" || n == "url" || n == "remote" || n == "remotesecure" || n == "cluster" || n == "input" || n == "s3"
}

func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "`", "\\`") + "`"
}
