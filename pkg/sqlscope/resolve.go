package sqlscope

import (
	"fmt"
	"strings"
)

// EventColumns and CheckpointColumns are the columns of the audit tables, as the
// DDL in schemas/clickhouse defines them (a test keeps them in agreement).
var (
	EventColumns = []string{"tenant", "chain_partition", "seq", "chained_at", "chained_at_ns", "occurred_at", "received_at",
		"event_id", "idempotency_key", "action", "actor_type", "actor_id", "actor_email", "resource_type", "resource_id",
		"resource_name", "source_tool", "session_id", "tool_use_id", "result_status", "approved_digest", "executed_digest",
		"prev_hash", "leaf_hash", "event"}
	CheckpointColumns = []string{"chain_partition", "tree_size", "origin", "root_hash", "signed_at", "note", "checkpoint"}
)

// nameScope is what a name can mean at one point of the statement.
type nameScope struct {
	parent  *nameScope
	tables  map[string][]string // alias -> columns
	cols    map[string]bool     // unqualified columns of the FROM tables
	aliases map[string]bool     // SELECT and WITH aliases, ARRAY JOIN aliases
}

// resolver checks that every name of the tree means a column of a table in
// scope, an alias the statement defines, or a lambda parameter.
type resolver struct {
	outputs map[*union][]string
	lambdas []map[string]bool
}

func (r *resolver) union(u *union, parent *nameScope) ([]string, error) {
	if out, ok := r.outputs[u]; ok {
		return out, nil
	}
	var first []string
	for i, s := range u.selects {
		out, err := r.selectStmt(s, parent)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = out
		}
	}
	r.outputs[u] = first
	return first, nil
}

func (r *resolver) table(ref *tableRef, parent *nameScope) ([]string, error) {
	switch {
	case ref.table == EventsTable:
		return EventColumns, nil
	case ref.table == CheckpointsTable:
		return CheckpointColumns, nil
	}
	return r.union(ref.sub, parent)
}

func (r *resolver) addTable(sc *nameScope, ref *tableRef) error {
	cols, err := r.table(ref, sc.parent)
	if err != nil {
		return err
	}
	if ref.alias != "" {
		if _, dup := sc.tables[ref.alias]; dup {
			return &Error{Pos: ref.pos, Token: ref.alias, Msg: "two tables of one FROM have the same name: give one an alias"}
		}
		sc.tables[ref.alias] = cols
	}
	for _, c := range cols {
		sc.cols[c] = true
	}
	return nil
}

func (r *resolver) selectStmt(s *selectStmt, parent *nameScope) ([]string, error) {
	sc := &nameScope{parent: parent, tables: map[string][]string{}, cols: map[string]bool{}, aliases: map[string]bool{}}
	for _, w := range s.with {
		if w.sub != nil {
			if _, err := r.union(w.sub, sc); err != nil {
				return nil, err
			}
		} else {
			sc.aliases[w.name] = true
		}
	}
	if s.from != nil {
		if err := r.addTable(sc, s.from); err != nil {
			return nil, err
		}
	}
	for _, j := range s.joins {
		if j.table != nil {
			if err := r.addTable(sc, j.table); err != nil {
				return nil, err
			}
		}
		for _, it := range j.items {
			if it.alias != "" {
				sc.aliases[it.alias] = true
			}
		}
	}
	for _, it := range s.items {
		if it.alias != "" {
			sc.aliases[it.alias] = true
		}
	}
	if err := r.clauses(s, sc); err != nil {
		return nil, err
	}
	return r.outputNames(s, sc), nil
}

// clauses resolves every expression of s in its scope.
func (r *resolver) clauses(s *selectStmt, sc *nameScope) error {
	var exprs []expr
	for _, w := range s.with {
		if w.expr != nil {
			exprs = append(exprs, w.expr)
		}
	}
	for _, it := range s.items {
		if it.star && it.starTable != "" && sc.lookupTable(it.starTable) == nil {
			return &Error{Pos: it.pos, Token: it.starTable + ".*", Msg: "no table of this FROM is called " + it.starTable}
		}
		if it.expr != nil {
			exprs = append(exprs, it.expr)
		}
	}
	for _, j := range s.joins {
		for _, it := range j.items {
			exprs = append(exprs, it.expr)
		}
		if j.on != nil {
			exprs = append(exprs, j.on)
		}
		for _, u := range j.using {
			if !sc.cols[u] {
				return &Error{Pos: j.usingPos, Token: u, Msg: "USING names a column that the joined tables do not have"}
			}
		}
	}
	exprs = append(exprs, s.where, s.having)
	exprs = append(exprs, s.groupBy...)
	for _, o := range s.orderBy {
		exprs = append(exprs, o.expr)
	}
	for _, e := range exprs {
		if err := r.expr(e, sc); err != nil {
			return err
		}
	}
	return nil
}

// outputNames are the names an enclosing query can use for s's columns: aliases,
// column names, and the columns a * expands to. An unaliased computed column has
// no name the enclosing query can rely on.
func (r *resolver) outputNames(s *selectStmt, sc *nameScope) []string {
	var out []string
	for _, it := range s.items {
		switch {
		case it.alias != "":
			out = append(out, it.alias)
		case it.star && it.starTable != "":
			out = append(out, sc.lookupTable(it.starTable)...)
		case it.star:
			for c := range sc.cols {
				out = append(out, c)
			}
		default:
			if id, ok := it.expr.(*ident); ok {
				out = append(out, id.parts[len(id.parts)-1])
			}
		}
	}
	for _, j := range s.joins { // ARRAY JOIN aliases are columns of the result too
		for _, it := range j.items {
			if it.alias != "" {
				out = append(out, it.alias)
			}
		}
	}
	return out
}

func (sc *nameScope) lookupTable(alias string) []string {
	for s := sc; s != nil; s = s.parent {
		if cols, ok := s.tables[alias]; ok {
			if cols == nil {
				return []string{}
			}
			return cols
		}
	}
	return nil
}

func (sc *nameScope) hasName(n string) bool {
	for s := sc; s != nil; s = s.parent {
		if s.aliases[n] || s.cols[n] {
			return true
		}
	}
	return false
}

func (r *resolver) isLambdaParam(n string) bool {
	for i := len(r.lambdas) - 1; i >= 0; i-- {
		if r.lambdas[i][n] {
			return true
		}
	}
	return false
}

func (r *resolver) ident(id *ident, sc *nameScope) error {
	name := strings.Join(id.parts, ".")
	if len(id.parts) == 1 {
		if r.isLambdaParam(id.parts[0]) || sc.hasName(id.parts[0]) {
			return nil
		}
		return &Error{Pos: id.pos, Token: name, Msg: "unknown column or alias: a name must be a column of a table this query reads, or an alias it defines"}
	}
	cols := sc.lookupTable(id.parts[0])
	if cols == nil {
		return &Error{Pos: id.pos, Token: name, Msg: fmt.Sprintf("no table of this query is called %s", id.parts[0])}
	}
	for _, c := range cols {
		if c == id.parts[1] {
			return nil
		}
	}
	return &Error{Pos: id.pos, Token: name, Msg: fmt.Sprintf("%s has no column %s", id.parts[0], id.parts[1])}
}

func (r *resolver) expr(e expr, sc *nameScope) error {
	if e == nil {
		return nil
	}
	switch x := e.(type) {
	case *ident:
		return r.ident(x, sc)
	case *literal:
		return nil
	case *subquery:
		_, err := r.union(x.q, sc)
		return err
	case *inExpr:
		if x.sub != nil {
			if _, err := r.union(x.sub, sc); err != nil {
				return err
			}
		}
		return r.exprs(sc, append([]expr{x.x}, x.list...)...)
	case *lambda:
		m := map[string]bool{}
		for _, p := range x.params {
			m[p] = true
		}
		r.lambdas = append(r.lambdas, m)
		defer func() { r.lambdas = r.lambdas[:len(r.lambdas)-1] }()
		return r.expr(x.body, sc)
	}
	return r.exprs(sc, children(e)...)
}

func (r *resolver) exprs(sc *nameScope, es ...expr) error {
	for _, e := range es {
		if err := r.expr(e, sc); err != nil {
			return err
		}
	}
	return nil
}

// children returns the sub-expressions of the nodes without scope of their own.
func children(e expr) []expr {
	switch x := e.(type) {
	case *unary:
		return []expr{x.x}
	case *binary:
		return []expr{x.l, x.r}
	case *betweenExpr:
		return []expr{x.x, x.lo, x.hi}
	case *isNullExpr:
		return []expr{x.x}
	case *call:
		return append(append([]expr{}, x.params...), x.args...)
	case *arrayLit:
		return x.elems
	case *tupleLit:
		return x.elems
	case *castExpr:
		return []expr{x.x}
	case *caseExpr:
		out := append(append([]expr{x.operand}, x.whens...), x.thens...)
		return append(out, x.els)
	case *intervalExpr:
		return []expr{x.x}
	case *ternary:
		return []expr{x.c, x.a, x.b}
	case *indexExpr:
		return []expr{x.x, x.i}
	case *tupleElem:
		return []expr{x.x}
	}
	return nil
}
