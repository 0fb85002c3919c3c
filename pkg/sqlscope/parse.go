package sqlscope

import (
	"fmt"
	"regexp"
	"strings"
)

// maxDepth bounds nesting (subqueries, parentheses, function calls), so that a
// hostile statement cannot exhaust the stack.
const maxDepth = 64

// parser is a recursive-descent parser of the subset in the package doc. It sees
// the tokens of one statement and the table CTEs visible at each point.
type parser struct {
	toks []token
	i    int
	db   string
	ctes []map[string]*withItem // innermost last
	// legacy refuses the joins Scope.Legacy names.
	legacy bool
	depth  int
}

var plainName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{kind: kindEOF, pos: p.end()}
}

func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return token{kind: kindEOF, pos: p.end()}
}

func (p *parser) end() int {
	if len(p.toks) == 0 {
		return 0
	}
	last := p.toks[len(p.toks)-1]
	return last.pos + len(last.text)
}

func (p *parser) next() token { t := p.peek(); p.i++; return t }

func (p *parser) isKW(kw string) bool   { return p.peek().keyword() == kw }
func (p *parser) isPunct(s string) bool { t := p.peek(); return t.kind == kindPunct && t.text == s }
func (p *parser) acceptKW(kw string) bool {
	if p.isKW(kw) {
		p.i++
		return true
	}
	return false
}
func (p *parser) acceptPunct(s string) bool {
	if p.isPunct(s) {
		p.i++
		return true
	}
	return false
}

func errAt(t token, format string, args ...any) *Error {
	text := t.text
	if t.kind == kindEOF {
		text = ""
	}
	return &Error{Pos: t.pos, Token: text, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) expectPunct(s, what string) error {
	if !p.acceptPunct(s) {
		return errAt(p.peek(), "expected %q %s", s, what)
	}
	return nil
}

func (p *parser) expectKW(kw, what string) error {
	if !p.acceptKW(kw) {
		return errAt(p.peek(), "expected %s %s", kw, what)
	}
	return nil
}

func (p *parser) enter() error {
	if p.depth++; p.depth > maxDepth {
		return errAt(p.peek(), "the statement nests deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// name reads a plain identifier (bare or quoted) and returns its name.
func (p *parser) name(what string) (string, token, error) {
	t := p.peek()
	if t.kind != kindIdent && t.kind != kindQuoted {
		return "", t, errAt(t, "expected %s", what)
	}
	if t.kind == kindIdent && reserved[t.keyword()] {
		return "", t, errAt(t, "%s is a keyword, not %s (quote it with backquotes if it is a name)", t.text, what)
	}
	n := t.name()
	if !plainName.MatchString(n) {
		return "", t, errAt(t, "names are letters, digits and _ (at most 64), not starting with a digit")
	}
	p.i++
	return n, t, nil
}

// statement parses the whole input: one query and nothing after it.
func (p *parser) statement() (*union, error) {
	if len(p.toks) == 0 {
		return nil, &Error{Msg: "the statement is empty"}
	}
	if k := p.peek().keyword(); k != "SELECT" && k != "WITH" {
		return nil, errAt(p.peek(), "only SELECT statements are allowed")
	}
	u, err := p.union()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != kindEOF {
		return nil, unexpected(t)
	}
	return u, nil
}

// unexpected explains a token that cannot continue the statement, naming the
// features that are refused on purpose.
func unexpected(t token) *Error {
	switch k := t.keyword(); k {
	case "SETTINGS":
		return errAt(t, "SETTINGS is not allowed: the server sets the limits")
	case "INTO":
		return errAt(t, "INTO is not allowed: the result is returned as JSON")
	case "FORMAT":
		return errAt(t, "FORMAT is not allowed: the result is returned as JSON")
	case "PREWHERE", "FINAL", "SAMPLE", "WINDOW", "QUALIFY", "INTERSECT", "EXCEPT", "GLOBAL", "OVER", "TOTALS", "FETCH":
		return errAt(t, "%s is outside the accepted SQL subset (see the grammar in the documentation)", k)
	}
	if t.kind == kindPunct && t.text == ";" {
		return errAt(t, "send one statement per request")
	}
	if t.kind == kindEOF {
		return errAt(t, "the statement ends too early")
	}
	return errAt(t, "unexpected %q", t.text)
}

// union := select { UNION (ALL|DISTINCT) select }
func (p *parser) union() (*union, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	u := &union{}
	for {
		s, err := p.selectStmt()
		if err != nil {
			return nil, err
		}
		u.selects = append(u.selects, s)
		if !p.isKW("UNION") {
			return u, nil
		}
		t := p.next()
		switch {
		case p.acceptKW("ALL"):
			u.ops = append(u.ops, "UNION ALL")
		case p.acceptKW("DISTINCT"):
			u.ops = append(u.ops, "UNION DISTINCT")
		default:
			return nil, errAt(t, "write UNION ALL or UNION DISTINCT")
		}
	}
}

// selectStmt := [WITH items] SELECT [DISTINCT] items [FROM table {join}] [WHERE e]
// [GROUP BY es] [HAVING e] [ORDER BY order] [LIMIT n [OFFSET m] | LIMIT m, n]
func (p *parser) selectStmt() (*selectStmt, error) {
	s := &selectStmt{pos: p.peek().pos}
	p.ctes = append(p.ctes, map[string]*withItem{})
	defer func() { p.ctes = p.ctes[:len(p.ctes)-1] }()
	if p.acceptKW("WITH") {
		if err := p.withList(s); err != nil {
			return nil, err
		}
	}
	if err := p.expectKW("SELECT", "to start the query"); err != nil {
		return nil, err
	}
	if p.isKW("DISTINCT") && p.peekAt(1).keyword() == "ON" {
		return nil, errAt(p.peek(), "DISTINCT ON is outside the accepted SQL subset")
	}
	s.distinct = p.acceptKW("DISTINCT")
	items, err := p.selectItems()
	if err != nil {
		return nil, err
	}
	s.items = items
	if p.acceptKW("FROM") {
		if s.from, err = p.tableRef(); err != nil {
			return nil, err
		}
		if s.joins, err = p.joins(); err != nil {
			return nil, err
		}
	}
	return s, p.clauses(s)
}

// clauses parses what follows FROM.
func (p *parser) clauses(s *selectStmt) error {
	var err error
	if p.acceptKW("WHERE") {
		if s.where, err = p.expr(); err != nil {
			return err
		}
	}
	if p.isKW("GROUP") {
		p.next()
		if err := p.expectKW("BY", "after GROUP"); err != nil {
			return err
		}
		if s.groupBy, err = p.exprList(); err != nil {
			return err
		}
		if p.isKW("WITH") {
			return errAt(p.peek(), "GROUP BY ... WITH ROLLUP/CUBE/TOTALS is outside the accepted SQL subset")
		}
	}
	if p.acceptKW("HAVING") {
		if s.having, err = p.expr(); err != nil {
			return err
		}
	}
	if p.isKW("ORDER") {
		p.next()
		if err := p.expectKW("BY", "after ORDER"); err != nil {
			return err
		}
		if s.orderBy, err = p.orderList(); err != nil {
			return err
		}
	}
	if p.acceptKW("LIMIT") {
		if s.limit, err = p.limitClause(); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) withList(s *selectStmt) error {
	for {
		t := p.peek()
		// name AS (SELECT ...) is a table; anything else is expr AS name.
		if (t.kind == kindIdent || t.kind == kindQuoted) && p.peekAt(1).keyword() == "AS" && p.peekAt(2).text == "(" &&
			(p.peekAt(3).keyword() == "SELECT" || p.peekAt(3).keyword() == "WITH") {
			name, nt, err := p.name("a CTE name")
			if err != nil {
				return err
			}
			if name == EventsTable || name == CheckpointsTable {
				return errAt(nt, "a CTE may not be named like an audit table")
			}
			p.next() // AS
			p.next() // (
			sub, err := p.union()
			if err != nil {
				return err
			}
			if err := p.expectPunct(")", "to close the CTE"); err != nil {
				return err
			}
			w := &withItem{name: name, pos: nt.pos, sub: sub}
			p.ctes[len(p.ctes)-1][name] = w
			s.with = append(s.with, *w)
		} else {
			e, err := p.expr()
			if err != nil {
				return err
			}
			if err := p.expectKW("AS", "after a WITH expression (WITH expr AS name)"); err != nil {
				return err
			}
			name, nt, err := p.name("a name for the WITH expression")
			if err != nil {
				return err
			}
			if err := p.checkExprAlias(name, nt); err != nil {
				return err
			}
			s.with = append(s.with, withItem{name: name, pos: nt.pos, expr: e})
		}
		if !p.acceptPunct(",") {
			return nil
		}
	}
}

func (p *parser) selectItems() ([]selectItem, error) {
	var items []selectItem
	for {
		t := p.peek()
		it := selectItem{pos: t.pos}
		switch {
		case t.kind == kindPunct && t.text == "*":
			p.next()
			it.star = true
		case (t.kind == kindIdent || t.kind == kindQuoted) && p.peekAt(1).text == "." && p.peekAt(2).text == "*":
			name, _, err := p.name("a table name")
			if err != nil {
				return nil, err
			}
			p.next()
			p.next()
			it.star, it.starTable = true, name
		default:
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			it.expr = e
			if it.alias, err = p.exprAlias(); err != nil {
				return nil, err
			}
		}
		if it.star && (p.isKW("EXCEPT") || p.isKW("REPLACE") || p.isKW("APPLY")) {
			return nil, errAt(p.peek(), "* %s is outside the accepted SQL subset", p.peek().keyword())
		}
		items = append(items, it)
		if !p.acceptPunct(",") {
			return items, nil
		}
	}
}

// alias reads [AS] name after an expression or table; "" when there is none.
func (p *parser) alias() (string, error) {
	if p.acceptKW("AS") {
		n, _, err := p.name("an alias after AS")
		return n, err
	}
	t := p.peek()
	if t.kind == kindQuoted || (t.kind == kindIdent && !reserved[t.keyword()]) {
		n, _, err := p.name("an alias")
		return n, err
	}
	return "", nil
}

// exprAlias is alias after an expression, refusing a name the printed
// statement gives a table: it aliases every audit table and inlined CTE by its
// name, and ClickHouse refuses an expression and a table of one alias (or, on
// older servers, lets one shadow the other), so the statement would fail or
// change meaning only once scoped.
func (p *parser) exprAlias() (string, error) {
	n, err := p.alias()
	if err != nil || n == "" {
		return n, err
	}
	return n, p.checkExprAlias(n, p.toks[p.i-1]) // the name just read
}

func (p *parser) checkExprAlias(name string, at token) error {
	taken := name == EventsTable || name == CheckpointsTable
	for i := 0; i < len(p.ctes) && !taken; i++ {
		_, taken = p.ctes[i][name]
	}
	if taken {
		return errAt(at, "%s names a table here; give the expression another alias", name)
	}
	return nil
}

// tableRef := audit_events | audit_checkpoints | db.either | cte | ( union ) , then [AS] alias
func (p *parser) tableRef() (*tableRef, error) {
	t := p.peek()
	ref := &tableRef{pos: t.pos}
	switch {
	case t.kind == kindPunct && t.text == "(":
		if k := p.peekAt(1).keyword(); k != "SELECT" && k != "WITH" {
			return nil, errAt(p.peekAt(1), "a subquery in FROM must start with SELECT or WITH")
		}
		p.next()
		sub, err := p.union()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")", "to close the subquery"); err != nil {
			return nil, err
		}
		ref.sub = sub
	case t.kind == kindIdent || t.kind == kindQuoted:
		if err := p.namedTable(ref); err != nil {
			return nil, err
		}
	default:
		return nil, errAt(t, "a table name or subquery must follow")
	}
	if k := p.peek().keyword(); k == "FINAL" || k == "SAMPLE" {
		return nil, errAt(p.peek(), "FINAL and SAMPLE are not allowed")
	}
	alias, err := p.alias()
	if err != nil {
		return nil, err
	}
	if alias != "" {
		ref.alias = alias
	}
	return ref, nil
}

// namedTable resolves a table name: an audit table (optionally qualified by the
// scope's database) or a table CTE visible here, which is inlined.
func (p *parser) namedTable(ref *tableRef) error {
	first := p.peek()
	db, _, err := p.name("a table name")
	if err != nil {
		return err
	}
	name, full := db, db
	if p.isPunct(".") {
		p.next()
		if name, _, err = p.name("a table name after the database"); err != nil {
			return err
		}
		full = db + "." + name
	} else {
		db = ""
	}
	if p.isPunct("(") {
		return errAt(first, "table functions are not allowed; read %s or %s", EventsTable, CheckpointsTable)
	}
	switch {
	case (db == "" || db == p.db) && (name == EventsTable || name == CheckpointsTable):
		ref.table, ref.alias = name, name
		return nil
	case db == "":
		for i := len(p.ctes) - 1; i >= 0; i-- {
			if w, ok := p.ctes[i][name]; ok {
				ref.sub, ref.alias = w.sub, name
				return nil
			}
		}
	}
	return &Error{Pos: first.pos, Token: full, Msg: fmt.Sprintf("only %s and %s (of database %s) can be read", EventsTable, CheckpointsTable, p.db)}
}

var joinWords = map[string]bool{"ANY": true, "ALL": true, "ASOF": true, "SEMI": true, "ANTI": true,
	"INNER": true, "LEFT": true, "RIGHT": true, "FULL": true, "CROSS": true, "OUTER": true}

// joins := { , table | [LEFT] ARRAY JOIN items | [kind] JOIN table [ON e | USING cols] }
func (p *parser) joins() ([]joinClause, error) {
	var out []joinClause
	for {
		t := p.peek()
		j := joinClause{pos: t.pos}
		switch {
		case t.kind == kindPunct && t.text == ",":
			p.next()
			ref, err := p.tableRef()
			if err != nil {
				return nil, err
			}
			j.table, j.commaJoin = ref, true
		case t.keyword() == "ARRAY" || t.keyword() == "LEFT" && p.peekAt(1).keyword() == "ARRAY":
			j.array, j.left = true, p.acceptKW("LEFT")
			p.next() // ARRAY
			if err := p.expectKW("JOIN", "after ARRAY"); err != nil {
				return nil, err
			}
			for {
				e, err := p.expr()
				if err != nil {
					return nil, err
				}
				alias, err := p.exprAlias()
				if err != nil {
					return nil, err
				}
				j.items = append(j.items, selectItem{expr: e, alias: alias, pos: e.position()})
				if !p.acceptPunct(",") {
					break
				}
			}
		case t.keyword() == "GLOBAL":
			return nil, errAt(t, "GLOBAL JOIN is outside the accepted SQL subset")
		case t.keyword() == "JOIN" || joinWords[t.keyword()]:
			var words []string
			for joinWords[p.peek().keyword()] {
				words = append(words, p.next().keyword())
			}
			if err := p.expectKW("JOIN", "after "+strings.Join(words, " ")); err != nil {
				return nil, err
			}
			j.kind = strings.Join(words, " ")
			ref, err := p.tableRef()
			if err != nil {
				return nil, err
			}
			j.table = ref
			if err := p.joinCondition(&j); err != nil {
				return nil, err
			}
			if p.legacy && (j.on != nil || len(j.using) > 0) && !legacySafeJoin(words) {
				return nil, errAt(t, "on ClickHouse 18.16 a JOIN with ON or USING must be ANY INNER or ANY LEFT: "+
					"its ALL joins return uninitialised server memory in the right table's key columns when a key repeats; "+
					"write CROSS JOIN with the condition in WHERE, IN (subquery) or ANY JOIN")
			}
		default:
			return out, nil
		}
		out = append(out, j)
	}
}

// legacySafeJoin reports whether a keyed join of these words is one 18.16 runs
// without reading uninitialised memory: ANY strictness, INNER or LEFT (see
// Scope.Legacy). join_default_strictness is ALL there, so ANY must be written.
func legacySafeJoin(words []string) bool {
	anyStrict := false
	for _, w := range words {
		switch w {
		case "ANY":
			anyStrict = true
		case "INNER", "LEFT", "OUTER":
		default:
			return false
		}
	}
	return anyStrict
}

func (p *parser) joinCondition(j *joinClause) error {
	switch {
	case p.acceptKW("ON"):
		e, err := p.expr()
		j.on = e
		return err
	case p.isKW("USING"):
		j.usingPos = p.next().pos
		paren := p.acceptPunct("(")
		for {
			n, _, err := p.name("a column name in USING")
			if err != nil {
				return err
			}
			j.using = append(j.using, n)
			if !p.acceptPunct(",") {
				break
			}
		}
		if paren {
			return p.expectPunct(")", "to close USING")
		}
	}
	return nil
}

func (p *parser) exprList() ([]expr, error) {
	var out []expr
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if !p.acceptPunct(",") {
			return out, nil
		}
	}
}

func (p *parser) orderList() ([]orderItem, error) {
	var out []orderItem
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		it := orderItem{expr: e}
		if p.acceptKW("DESC") || p.acceptKW("DESCENDING") {
			it.desc = true
		} else if !p.acceptKW("ASC") {
			p.acceptKW("ASCENDING")
		}
		if p.acceptKW("NULLS") {
			switch {
			case p.acceptKW("FIRST"):
				it.nulls = "FIRST"
			case p.acceptKW("LAST"):
				it.nulls = "LAST"
			default:
				return nil, errAt(p.peek(), "expected FIRST or LAST after NULLS")
			}
		}
		if p.isKW("COLLATE") || p.isKW("WITH") {
			return nil, errAt(p.peek(), "ORDER BY ... %s is outside the accepted SQL subset", p.peek().keyword())
		}
		out = append(out, it)
		if !p.acceptPunct(",") {
			return out, nil
		}
	}
}

var uintRE = regexp.MustCompile(`^[0-9]{1,18}$`)

func (p *parser) limitNumber() (string, error) {
	t := p.peek()
	if t.kind != kindNumber || !uintRE.MatchString(t.text) {
		return "", errAt(t, "LIMIT and OFFSET take whole numbers")
	}
	p.next()
	return t.text, nil
}

func (p *parser) limitClause() (*limitClause, error) {
	n, err := p.limitNumber()
	if err != nil {
		return nil, err
	}
	l := &limitClause{count: n}
	switch {
	case p.acceptPunct(","): // LIMIT offset, count
		if l.count, err = p.limitNumber(); err != nil {
			return nil, err
		}
		l.offset = n
	case p.acceptKW("OFFSET"):
		if l.offset, err = p.limitNumber(); err != nil {
			return nil, err
		}
	}
	if p.isKW("BY") || p.isKW("WITH") {
		return nil, errAt(p.peek(), "LIMIT ... %s is outside the accepted SQL subset", p.peek().keyword())
	}
	return l, nil
}
