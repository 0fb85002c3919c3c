package sqlscope

// The syntax tree of the accepted subset. Every node the parser builds is printed
// back by print.go; nothing of the input text survives except through these nodes,
// so the statement ClickHouse runs is exactly what the tree says.

// union is one or more SELECTs joined by UNION ALL / UNION DISTINCT.
type union struct {
	selects []*selectStmt
	ops     []string // ops[i] joins selects[i] and selects[i+1]
}

type withItem struct {
	name string
	pos  int
	expr expr   // WITH expr AS name
	sub  *union // WITH name AS (SELECT ...): a table, inlined where it is read
}

type selectItem struct {
	expr      expr
	alias     string
	star      bool   // * or t.*
	starTable string // t of t.*
	pos       int
}

type orderItem struct {
	expr  expr
	desc  bool
	nulls string // "", "FIRST", "LAST"
}

type selectStmt struct {
	pos      int
	with     []withItem
	distinct bool
	items    []selectItem
	from     *tableRef
	joins    []joinClause
	where    expr
	groupBy  []expr
	having   expr
	orderBy  []orderItem
	limit    *limitClause
}

type limitClause struct {
	count, offset string // integer literals; offset "" when absent
}

// tableRef is a FROM or JOIN operand: one of the audit tables, a subquery, or a
// table CTE (resolved to its subquery).
type tableRef struct {
	pos   int
	table string // EventsTable or CheckpointsTable; "" for a subquery
	sub   *union
	alias string // always set after parsing: the table name when none is written
}

type joinClause struct {
	pos int
	// array is set for [LEFT] ARRAY JOIN; items then hold the arrays and aliases.
	array     bool
	left      bool
	items     []selectItem
	kind      string // "INNER", "LEFT", "LEFT OUTER", "ANY LEFT", "CROSS", ...
	table     *tableRef
	on        expr
	using     []string
	usingPos  int
	commaJoin bool
}

type expr interface{ position() int }

type ident struct {
	pos   int
	parts []string // 1 or 2: column, or qualifier.column
}

type literal struct {
	pos  int
	text string // printed form: a canonical string literal, a number or NULL
}

type unary struct {
	pos int
	op  string // "-", "NOT"
	x   expr
}

type binary struct {
	pos  int
	op   string
	l, r expr
}

type inExpr struct {
	pos  int
	not  bool
	x    expr
	list []expr // IN (a, b, ...) or IN [a, b]
	sub  *union // IN (SELECT ...)
}

type betweenExpr struct {
	pos       int
	not       bool
	x, lo, hi expr
}

type isNullExpr struct {
	pos int
	not bool
	x   expr
}

type call struct {
	pos      int
	name     string // canonical spelling from the allowlist
	params   []expr // parametric aggregates: quantile(0.9)(x)
	args     []expr
	distinct bool
	star     bool // count(*)
}

type lambda struct {
	pos    int
	params []string
	body   expr
}

type arrayLit struct {
	pos   int
	elems []expr
}

type tupleLit struct {
	pos   int
	elems []expr
}

type subquery struct {
	pos int
	q   *union
}

type castExpr struct {
	pos int
	x   expr
	typ string // validated type, printed verbatim
}

type caseExpr struct {
	pos     int
	operand expr
	whens   []expr
	thens   []expr
	els     expr
}

type intervalExpr struct {
	pos  int
	x    expr
	unit string // toIntervalDay etc.
}

type ternary struct {
	pos     int
	c, a, b expr
}

type indexExpr struct {
	pos  int
	x, i expr
}

type tupleElem struct {
	pos int
	x   expr
	n   string
}

func (e *ident) position() int        { return e.pos }
func (e *literal) position() int      { return e.pos }
func (e *unary) position() int        { return e.pos }
func (e *binary) position() int       { return e.pos }
func (e *inExpr) position() int       { return e.pos }
func (e *betweenExpr) position() int  { return e.pos }
func (e *isNullExpr) position() int   { return e.pos }
func (e *call) position() int         { return e.pos }
func (e *lambda) position() int       { return e.pos }
func (e *arrayLit) position() int     { return e.pos }
func (e *tupleLit) position() int     { return e.pos }
func (e *subquery) position() int     { return e.pos }
func (e *castExpr) position() int     { return e.pos }
func (e *caseExpr) position() int     { return e.pos }
func (e *intervalExpr) position() int { return e.pos }
func (e *ternary) position() int      { return e.pos }
func (e *indexExpr) position() int    { return e.pos }
func (e *tupleElem) position() int    { return e.pos }
