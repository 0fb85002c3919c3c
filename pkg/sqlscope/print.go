package sqlscope

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxOutput bounds the printed statement: table CTEs are inlined where they are
// read, and a statement that reads a CTE many times could otherwise grow without
// bound.
const maxOutput = 1 << 20

// printer writes the tree as ClickHouse SQL that means exactly the tree: every
// operation parenthesised, every name back-quoted, every literal re-encoded, and
// every audit table replaced by its scoped subquery. It is the only source of the
// statement ClickHouse runs.
type printer struct {
	b       strings.Builder
	db      string
	tenants []string // nil: every tenant
	err     error
}

func (p *printer) w(s ...string) {
	for _, x := range s {
		p.b.WriteString(x)
	}
	if p.b.Len() > maxOutput && p.err == nil {
		p.err = &Error{Msg: fmt.Sprintf("the statement is longer than %d bytes once its CTEs are expanded", maxOutput)}
	}
}

func quoteIdent(s string) string { return "`" + s + "`" } // names are plain: see plainName

// quoteString encodes s as a ClickHouse string literal that both server
// generations read back as exactly s.
func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
			i++
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\x%02X", c)
			i++
		case c < 0x80:
			b.WriteByte(c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				fmt.Fprintf(&b, "\\x%02X", c)
				i++
				continue
			}
			b.WriteString(s[i : i+n])
			i += n
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// scopedTable is the subquery that stands for an audit table.
func (p *printer) scopedTable(table string) string {
	events := quoteIdent(p.db) + "." + quoteIdent(EventsTable)
	if p.tenants == nil {
		return "(SELECT * FROM " + quoteIdent(p.db) + "." + quoteIdent(table) + ")"
	}
	quoted := make([]string, len(p.tenants))
	for i, t := range p.tenants {
		quoted[i] = quoteString(t)
	}
	in := "`tenant` IN (" + strings.Join(quoted, ", ") + ")"
	if table == EventsTable {
		return "(SELECT * FROM " + events + " WHERE " + in + ")"
	}
	// Checkpoints of the partitions that hold the caller's events: see the package doc.
	return "(SELECT * FROM " + quoteIdent(p.db) + "." + quoteIdent(CheckpointsTable) +
		" WHERE `chain_partition` IN (SELECT DISTINCT `chain_partition` FROM " + events + " WHERE " + in + "))"
}

func (p *printer) union(u *union) {
	for i, s := range u.selects {
		if i > 0 {
			p.w(" ", u.ops[i-1], " ")
		}
		p.selectStmt(s)
	}
}

func (p *printer) selectStmt(s *selectStmt) {
	first := true
	for _, w := range s.with {
		if w.expr == nil {
			continue // table CTEs are inlined where they are read
		}
		if first {
			p.w("WITH ")
			first = false
		} else {
			p.w(", ")
		}
		p.expr(w.expr)
		p.w(" AS ", quoteIdent(w.name))
	}
	if !first {
		p.w(" ")
	}
	p.w("SELECT ")
	if s.distinct {
		p.w("DISTINCT ")
	}
	p.items(s.items)
	if s.from != nil {
		p.w(" FROM ")
		p.tableRef(s.from)
	}
	for _, j := range s.joins {
		p.join(j)
	}
	p.clauses(s)
}

func (p *printer) items(items []selectItem) {
	for i, it := range items {
		if i > 0 {
			p.w(", ")
		}
		switch {
		case it.star && it.starTable != "":
			p.w(quoteIdent(it.starTable), ".*")
		case it.star:
			p.w("*")
		default:
			p.expr(it.expr)
		}
		if it.alias != "" {
			p.w(" AS ", quoteIdent(it.alias))
		}
	}
}

func (p *printer) clauses(s *selectStmt) {
	if s.where != nil {
		p.w(" WHERE ")
		p.expr(s.where)
	}
	if len(s.groupBy) > 0 {
		p.w(" GROUP BY ")
		p.exprs(s.groupBy)
	}
	if s.having != nil {
		p.w(" HAVING ")
		p.expr(s.having)
	}
	for i, o := range s.orderBy {
		if i == 0 {
			p.w(" ORDER BY ")
		} else {
			p.w(", ")
		}
		p.expr(o.expr)
		if o.desc {
			p.w(" DESC")
		}
		if o.nulls != "" {
			p.w(" NULLS ", o.nulls)
		}
	}
	if s.limit != nil {
		p.w(" LIMIT ")
		if s.limit.offset != "" {
			p.w(s.limit.offset, ", ")
		}
		p.w(s.limit.count)
	}
}

func (p *printer) tableRef(t *tableRef) {
	if t.table != "" {
		p.w(p.scopedTable(t.table))
	} else {
		p.w("(")
		p.union(t.sub)
		p.w(")")
	}
	if t.alias != "" {
		p.w(" AS ", quoteIdent(t.alias))
	}
}

func (p *printer) join(j joinClause) {
	switch {
	case j.commaJoin:
		p.w(" CROSS JOIN ")
		p.tableRef(j.table)
	case j.array:
		if j.left {
			p.w(" LEFT")
		}
		p.w(" ARRAY JOIN ")
		p.items(j.items)
	default:
		p.w(" ")
		if j.kind != "" {
			p.w(j.kind, " ")
		}
		p.w("JOIN ")
		p.tableRef(j.table)
		if j.on != nil {
			p.w(" ON ")
			p.expr(j.on)
		}
		if len(j.using) > 0 {
			names := make([]string, len(j.using))
			for i, u := range j.using {
				names[i] = quoteIdent(u)
			}
			p.w(" USING (", strings.Join(names, ", "), ")")
		}
	}
}

func (p *printer) exprs(es []expr) {
	for i, e := range es {
		if i > 0 {
			p.w(", ")
		}
		p.expr(e)
	}
}

func (p *printer) expr(e expr) {
	switch x := e.(type) {
	case *ident:
		for i, part := range x.parts {
			if i > 0 {
				p.w(".")
			}
			p.w(quoteIdent(part))
		}
	case *literal:
		p.w(x.text)
	case *unary:
		p.w("(", x.op, " ")
		p.expr(x.x)
		p.w(")")
	case *binary:
		p.w("(")
		p.expr(x.l)
		p.w(" ", x.op, " ")
		p.expr(x.r)
		p.w(")")
	case *inExpr:
		p.in(x)
	case *betweenExpr:
		p.w("(")
		p.expr(x.x)
		p.w(map[bool]string{true: " NOT BETWEEN ", false: " BETWEEN "}[x.not])
		p.expr(x.lo)
		p.w(" AND ")
		p.expr(x.hi)
		p.w(")")
	case *isNullExpr:
		p.w("(")
		p.expr(x.x)
		p.w(map[bool]string{true: " IS NOT NULL)", false: " IS NULL)"}[x.not])
	case *call:
		p.call(x)
	case *lambda:
		p.lambda(x)
	case *arrayLit:
		p.w("[")
		p.exprs(x.elems)
		p.w("]")
	case *tupleLit:
		p.w("tuple(")
		p.exprs(x.elems)
		p.w(")")
	case *subquery:
		p.w("(")
		p.union(x.q)
		p.w(")")
	case *castExpr:
		p.w("CAST(")
		p.expr(x.x)
		p.w(" AS ", x.typ, ")")
	case *caseExpr:
		p.caseExpr(x)
	case *intervalExpr:
		p.w("toInterval", x.unit, "(")
		p.expr(x.x)
		p.w(")")
	case *ternary:
		p.w("if(")
		p.exprs([]expr{x.c, x.a, x.b})
		p.w(")")
	case *indexExpr:
		p.w("arrayElement(")
		p.exprs([]expr{x.x, x.i})
		p.w(")")
	case *tupleElem:
		p.w("tupleElement(")
		p.expr(x.x)
		p.w(", ", x.n, ")")
	default:
		panic(fmt.Sprintf("sqlscope: print %T", e))
	}
}

// in prints x IN (...). The right side is always parenthesised and never a bare
// name (the parser refused those), so ClickHouse cannot read it as a table.
func (p *printer) in(x *inExpr) {
	p.w("(")
	p.expr(x.x)
	p.w(map[bool]string{true: " NOT IN (", false: " IN ("}[x.not])
	if x.sub != nil {
		p.union(x.sub)
	} else {
		p.exprs(x.list)
	}
	p.w("))")
}

func (p *printer) call(c *call) {
	p.w(c.name)
	if c.params != nil {
		p.w("(")
		p.exprs(c.params)
		p.w(")")
	}
	p.w("(")
	if c.star {
		p.w("*")
	}
	if c.distinct {
		p.w("DISTINCT ")
	}
	p.exprs(c.args)
	p.w(")")
}

func (p *printer) lambda(l *lambda) {
	// Lambda parameters are printed bare (they are plain names, see plainName).
	if len(l.params) == 1 {
		p.w(l.params[0])
	} else {
		p.w("(", strings.Join(l.params, ", "), ")")
	}
	p.w(" -> ")
	p.expr(l.body)
}

func (p *printer) caseExpr(c *caseExpr) {
	p.w("CASE")
	if c.operand != nil {
		p.w(" ")
		p.expr(c.operand)
	}
	for i := range c.whens {
		p.w(" WHEN ")
		p.expr(c.whens[i])
		p.w(" THEN ")
		p.expr(c.thens[i])
	}
	if c.els != nil {
		p.w(" ELSE ")
		p.expr(c.els)
	}
	p.w(" END")
}
