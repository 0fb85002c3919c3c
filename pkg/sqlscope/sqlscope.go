package sqlscope

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/trailkeep/trailkeep/pkg/event"
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
		return fmt.Sprintf("sql: at offset %d: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("sql: at offset %d (%q): %s", e.Pos, e.Token, e.Msg)
}

// Scope is what a caller may read.
type Scope struct {
	// Database holds the audit tables.
	Database string
	// Tenants restricts audit_events to these tenants, and audit_checkpoints to the
	// partitions that hold their events; empty means every tenant (admin tokens
	// only).
	Tenants []string
	// Legacy is set for a ClickHouse server of the 18.16 generation, whose joins
	// with ON or USING are memory-unsafe unless they are ANY INNER or ANY LEFT:
	// an ALL join (the default strictness) fills the right table's key columns
	// with uninitialised server memory when a key repeats, so a result could
	// carry bytes of other queries, other tenants' included, or crash the server
	// (ClickHouse #4108); its RIGHT and FULL joins fail. Such joins are refused
	// (*Error); CROSS JOIN with the condition in WHERE, IN (subquery) and ANY
	// joins are not.
	Legacy bool
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Rewrite parses sql as one statement of the accepted subset (see the package
// doc), checks every name in it, and returns the statement to run: printed from
// the syntax tree, with every audit table replaced by its tenant-scoped subquery.
// A statement outside the subset is an *Error naming the offset and the reason.
func (s Scope) Rewrite(sql string) (string, error) {
	if !identRE.MatchString(s.Database) {
		return "", fmt.Errorf("sqlscope: database name %q is not an identifier", s.Database)
	}
	for _, t := range s.Tenants {
		if !event.IsSlug(t) {
			return "", fmt.Errorf("sqlscope: tenant %q is not a slug", t)
		}
	}
	toks, err := lex(sql)
	if err != nil {
		return "", err
	}
	// Drop one trailing semicolon; any other ends a statement and starts another.
	if n := len(toks); n > 0 && toks[n-1].text == ";" && toks[n-1].kind == kindPunct {
		toks = toks[:n-1]
	}
	p := &parser{toks: toks, db: s.Database, legacy: s.Legacy}
	tree, err := p.statement()
	if err != nil {
		return "", err
	}
	r := &resolver{outputs: map[*union][]string{}}
	if _, err := r.union(tree, nil); err != nil {
		return "", err
	}
	pr := &printer{db: s.Database}
	if len(s.Tenants) > 0 {
		pr.tenants = s.Tenants
	}
	pr.union(tree)
	if pr.err != nil {
		return "", pr.err
	}
	return pr.b.String(), nil
}

// reserved words end an expression or a table reference: they are never read as
// an alias, and a name spelled like one must be back-quoted.
var reserved = map[string]bool{
	"WHERE": true, "PREWHERE": true, "GROUP": true, "ORDER": true, "LIMIT": true, "HAVING": true, "OFFSET": true,
	"JOIN": true, "INNER": true, "LEFT": true, "RIGHT": true, "FULL": true, "CROSS": true, "OUTER": true,
	"ANY": true, "ALL": true, "ASOF": true, "SEMI": true, "ANTI": true, "ARRAY": true, "GLOBAL": true, "LOCAL": true,
	"ON": true, "USING": true, "UNION": true, "EXCEPT": true, "INTERSECT": true, "FINAL": true, "SAMPLE": true,
	"WITH": true, "FROM": true, "SELECT": true, "BY": true, "AND": true, "OR": true, "NOT": true, "IN": true,
	"INTO": true, "FORMAT": true, "SETTINGS": true, "WINDOW": true, "QUALIFY": true, "PASTE": true, "AS": true,
	"ASC": true, "DESC": true, "ASCENDING": true, "DESCENDING": true, "NULLS": true, "LIKE": true, "ILIKE": true,
	"BETWEEN": true, "IS": true, "NULL": true, "CASE": true, "WHEN": true, "THEN": true, "ELSE": true, "END": true,
	"DISTINCT": true, "INTERVAL": true, "OVER": true, "COLLATE": true, "TOTALS": true, "FETCH": true, "TRUE": true, "FALSE": true,
}

// stringValue decodes a single-quoted literal as ClickHouse does: backslash
// escapes (\n, \t, \xHH, \\, \', any other \c is c) and a doubled quote.
func stringValue(t token) (string, error) {
	in := t.text[1 : len(t.text)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '\'' && i+1 < len(in) && in[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\\' && i+1 < len(in):
			i++
			switch e := in[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'a':
				b.WriteByte('\a')
			case 'v':
				b.WriteByte('\v')
			case '0':
				b.WriteByte(0)
			case 'x', 'X':
				if i+2 >= len(in) {
					return "", errAt(t, "\\x needs two hex digits")
				}
				v, err := strconv.ParseUint(in[i+1:i+3], 16, 8)
				if err != nil {
					return "", errAt(t, "\\x needs two hex digits")
				}
				b.WriteByte(byte(v))
				i += 2
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
