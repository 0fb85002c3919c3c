// Package query parses trailkeep's search filter language and compiles it to a
// parameterised ClickHouse WHERE clause over the audit_events columns.
//
// The language is what security teams already type into audit-log search boxes:
//
//	actor:user:sarah@acme.example event:skill.* after:2026-01-19 before:2026-02-19
//	event:team.* resource:team:acme-platform
//	(result:failure OR result:denied) -actor:type:service after:-24h
//	session:7f3a "rate limiting"
//
// Terms are ANDed unless joined by OR (upper case); NOT or a leading '-' negates a
// term or a parenthesised group; AND may be written but is the default. A term is
// key:value, or free text (a word or a "quoted phrase") that matches anywhere in the
// canonical event, case-insensitively. Values may be quoted ("key:"a b""), and '*'
// and '?' in them are globs. Keys:
//
//	actor     [type:]id   id or e-mail; type is user, service, agent, subagent or system;
//	                      actor:type:T matches every actor of type T; any or * matches all
//	event     glob        the action, resource.verb (alias: action)
//	resource  [type:]id   id or name: resource:team:acme-platform, resource:skill:*, resource:api-conventions
//	tenant    glob
//	session   glob        Claude Code session id
//	tool_use  glob        tool_use_id, joining approval and execution
//	id        exact       event id
//	result    one of success, failure, denied, pending (alias: status)
//	source    glob        the sending tool: claude_code, mcp_gateway, registry, ... (alias: tool)
//	after     time        occurred_at >= time (inclusive)
//	before    time        occurred_at <  time (exclusive)
//
// Times are RFC 3339 (2026-01-19T10:00:00Z), a date (2026-01-19, midnight UTC), or
// relative to now: -30d, -12h, -15m, -2w, or now. ClickHouse servers without
// DateTime64 store occurred_at in whole seconds, so bounds have second precision.
//
// Values never become SQL text: every value is a bound argument, and the column names
// come from this package's own table, never from the query.
package query

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Filter is a compiled query: a boolean SQL expression over audit_events columns with
// '?' placeholders, and their arguments in order.
type Filter struct {
	Where string
	Args  []any
	// Occurred bounds the occurred_at of every event Where can match (derived from
	// after: and before: through AND, OR and NOT), so a store can skip data that
	// cannot hold a match. The zero Span is unbounded: a Filter built by hand is
	// never narrowed by accident.
	Occurred Span
}

// Span is a range of occurred_at in Unix seconds, [From, To), each end optional.
type Span struct {
	HasFrom, HasTo bool
	From, To       int64
}

// intersect is the range both a and b allow (AND).
func (a Span) intersect(b Span) Span {
	if b.HasFrom && (!a.HasFrom || b.From > a.From) {
		a.HasFrom, a.From = true, b.From
	}
	if b.HasTo && (!a.HasTo || b.To < a.To) {
		a.HasTo, a.To = true, b.To
	}
	return a
}

// hull is the smallest range holding a and b (OR).
func (a Span) hull(b Span) Span {
	a.HasFrom = a.HasFrom && b.HasFrom
	a.From = min(a.From, b.From)
	a.HasTo = a.HasTo && b.HasTo
	a.To = max(a.To, b.To)
	if !a.HasFrom {
		a.From = 0
	}
	if !a.HasTo {
		a.To = 0
	}
	return a
}

// Error is a query that cannot be compiled. Pos is the byte offset of the offending
// token in the query (0-based), Token its text.
type Error struct {
	Pos   int
	Token string
	Msg   string
}

func (e *Error) Error() string {
	if e.Token == "" {
		return fmt.Sprintf("query: at column %d: %s", e.Pos+1, e.Msg)
	}
	return fmt.Sprintf("query: at column %d (%q): %s", e.Pos+1, e.Token, e.Msg)
}

// Compile parses q and compiles it. now anchors relative times (-30d). An empty query
// matches everything.
func Compile(q string, now time.Time) (Filter, error) {
	toks, err := lex(q)
	if err != nil {
		return Filter{}, err
	}
	p := &parser{toks: toks, now: now.UTC(), end: len(q)}
	if len(toks) == 0 {
		return Filter{Where: "1", Args: nil}, nil
	}
	n, err := p.or()
	if err != nil {
		return Filter{}, err
	}
	if t := p.peek(); t != nil {
		return Filter{}, &Error{Pos: t.pos, Token: t.text, Msg: "unexpected; a ')' without its '(' ?"}
	}
	var b strings.Builder
	var args []any
	n.sql(&b, &args)
	return Filter{Where: b.String(), Args: args, Occurred: n.span()}, nil
}

// node is one compiled boolean expression.
type node interface {
	sql(b *strings.Builder, args *[]any)
	// span bounds the occurred_at of the rows the node can match.
	span() Span
}

type all struct{} // matches every row

func (all) sql(b *strings.Builder, _ *[]any) { b.WriteString("1") }
func (all) span() Span                       { return Span{} }

type cond struct {
	expr string // with '?' placeholders
	args []any
}

func (c cond) sql(b *strings.Builder, args *[]any) {
	b.WriteString(c.expr)
	*args = append(*args, c.args...)
}

func (c cond) span() Span { return Span{} }

// timeCond is an after: or before: condition and the range it allows.
type timeCond struct {
	cond
	occ Span
}

func (c timeCond) span() Span { return c.occ }

type junction struct {
	op    string // " AND " or " OR "
	nodes []node
}

func (j junction) sql(b *strings.Builder, args *[]any) {
	b.WriteByte('(')
	for i, n := range j.nodes {
		if i > 0 {
			b.WriteString(j.op)
		}
		n.sql(b, args)
	}
	b.WriteByte(')')
}

func (j junction) span() Span {
	out := j.nodes[0].span()
	for _, n := range j.nodes[1:] {
		if j.op == " AND " {
			out = out.intersect(n.span())
		} else {
			out = out.hull(n.span())
		}
	}
	return out
}

// andOf joins nodes with AND, leaving out those that match everything.
func andOf(nodes ...node) node {
	var kept []node
	for _, n := range nodes {
		if _, ok := n.(all); !ok {
			kept = append(kept, n)
		}
	}
	switch len(kept) {
	case 0:
		return all{}
	case 1:
		return kept[0]
	}
	return junction{" AND ", kept}
}

type not struct{ n node }

func (n not) sql(b *strings.Builder, args *[]any) {
	b.WriteString("NOT ")
	n.n.sql(b, args)
}

// span of a negation is unbounded: NOT after:T is before:T, but NOT of an AND or OR
// is not worth solving for a bound that only narrows what is read.
func (not) span() Span { return Span{} }

// token kinds
const (
	tTerm = iota
	tOpen
	tClose
	tOr
	tAnd
	tNot
)

type token struct {
	kind int
	pos  int
	text string // as written
	key  string // tTerm: "" for free text
	val  string // tTerm: unquoted value
	neg  bool   // tTerm written with a leading '-'
}

func lex(q string) ([]token, error) {
	var out []token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{kind: tOpen, pos: i, text: "("})
			i++
		case c == ')':
			out = append(out, token{kind: tClose, pos: i, text: ")"})
			i++
		default:
			t, next, err := lexTerm(q, i)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
			i = next
		}
	}
	return out, nil
}

// lexTerm reads one term, operator or negated term starting at i.
func lexTerm(q string, i int) (token, int, error) {
	start := i
	t := token{kind: tTerm, pos: i}
	if q[i] == '-' && i+1 < len(q) && !isSpace(q[i+1]) && q[i+1] != ')' {
		t.neg = true
		i++
	}
	var val strings.Builder
	keyEnd := -1
	quoted := false
	for i < len(q) && !isSpace(q[i]) && q[i] != '(' && q[i] != ')' {
		switch c := q[i]; {
		case c == '"':
			s, next, err := unquote(q, i)
			if err != nil {
				return t, 0, err
			}
			val.WriteString(s)
			quoted = true
			i = next
		case c == ':' && keyEnd < 0 && !quoted:
			keyEnd = val.Len()
			t.key = val.String()
			val.Reset()
			i++
		default:
			val.WriteByte(c)
			i++
		}
	}
	t.text = q[start:i]
	t.val = val.String()
	if keyEnd < 0 && !quoted && !t.neg {
		switch t.val {
		case "OR":
			return token{kind: tOr, pos: start, text: t.text}, i, nil
		case "AND":
			return token{kind: tAnd, pos: start, text: t.text}, i, nil
		case "NOT":
			return token{kind: tNot, pos: start, text: t.text}, i, nil
		}
	}
	if keyEnd >= 0 && t.key == "" {
		return t, 0, &Error{Pos: start, Token: t.text, Msg: "a term needs a key before ':'"}
	}
	if t.key != "" && t.val == "" && !quoted {
		return t, 0, &Error{Pos: start, Token: t.text, Msg: fmt.Sprintf("%s: needs a value, e.g. %s", t.key, example(t.key))}
	}
	return t, i, nil
}

// unquote reads a "..." string at q[i] with \" and \\ escapes.
func unquote(q string, i int) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if j+1 < len(q) && (q[j+1] == '"' || q[j+1] == '\\') {
				b.WriteByte(q[j+1])
				j++
				continue
			}
			b.WriteByte('\\')
		case '"':
			return b.String(), j + 1, nil
		default:
			b.WriteByte(q[j])
		}
	}
	return "", 0, &Error{Pos: i, Token: q[i:], Msg: "unterminated quoted string"}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

type parser struct {
	toks []token
	i    int
	now  time.Time
	end  int // query length, for errors at the end
}

func (p *parser) peek() *token {
	if p.i < len(p.toks) {
		return &p.toks[p.i]
	}
	return nil
}

func (p *parser) or() (node, error) {
	n, err := p.and()
	if err != nil {
		return nil, err
	}
	nodes := []node{n}
	for t := p.peek(); t != nil && t.kind == tOr; t = p.peek() {
		p.i++
		if next := p.peek(); next == nil || next.kind == tClose || next.kind == tOr {
			return nil, &Error{Pos: t.pos, Token: t.text, Msg: "OR needs a term on both sides"}
		}
		n, err := p.and()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		if _, ok := n.(all); ok {
			return all{}, nil // one side matches everything
		}
	}
	if len(nodes) == 1 {
		return nodes[0], nil
	}
	return junction{" OR ", nodes}, nil
}

func (p *parser) and() (node, error) {
	var nodes []node
	for t := p.peek(); t != nil && t.kind != tOr && t.kind != tClose; t = p.peek() {
		if t.kind == tAnd {
			p.i++
			if next := p.peek(); len(nodes) == 0 || next == nil || next.kind == tClose || next.kind == tOr || next.kind == tAnd {
				return nil, &Error{Pos: t.pos, Token: t.text, Msg: "AND needs a term on both sides"}
			}
			continue
		}
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		if t := p.peek(); t != nil && t.kind == tOr {
			return nil, &Error{Pos: t.pos, Token: t.text, Msg: "OR needs a term on both sides"}
		}
	}
	return andOf(nodes...), nil
}

func (p *parser) unary() (node, error) {
	t := p.peek()
	switch t.kind {
	case tNot:
		p.i++
		if next := p.peek(); next == nil || next.kind == tClose || next.kind == tOr || next.kind == tAnd {
			return nil, &Error{Pos: t.pos, Token: t.text, Msg: "NOT needs a term or a group after it"}
		}
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return negate(n), nil
	case tOpen:
		p.i++
		if next := p.peek(); next != nil && next.kind == tClose {
			return nil, &Error{Pos: t.pos, Token: "()", Msg: "empty group"}
		}
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c == nil || c.kind != tClose {
			return nil, &Error{Pos: t.pos, Token: "(", Msg: "this '(' is never closed"}
		}
		p.i++
		return n, nil
	case tClose:
		return nil, &Error{Pos: t.pos, Token: t.text, Msg: "')' without its '('"}
	}
	p.i++
	n, err := p.term(t)
	if err != nil {
		return nil, err
	}
	if t.neg {
		return negate(n), nil
	}
	return n, nil
}

// negate wraps n in NOT; NOT of match-all would match nothing, which no one means.
func negate(n node) node {
	if _, ok := n.(all); ok {
		return cond{expr: "0"}
	}
	return not{n}
}

// actorTypes are the actor.type values of the canonical event schema.
var actorTypes = map[string]bool{"user": true, "service": true, "agent": true, "subagent": true, "system": true}

// resultStatuses are the result.status values of the canonical event schema.
var resultStatuses = []string{"success", "failure", "denied", "pending"}

func (p *parser) term(t *token) (node, error) {
	bad := func(format string, args ...any) error {
		return &Error{Pos: t.pos, Token: t.text, Msg: fmt.Sprintf(format, args...)}
	}
	v := t.val
	switch strings.ToLower(t.key) {
	case "":
		if strings.TrimSpace(v) == "" {
			return nil, bad("empty text")
		}
		return cond{"positionCaseInsensitive(event, ?) > 0", []any{v}}, nil
	case "actor":
		if v == "any" || v == "*" {
			return all{}, nil
		}
		typ, id, ok := strings.Cut(v, ":")
		switch {
		case ok && typ == "type":
			if !actorTypes[id] {
				return nil, bad("actor:type: must be one of user, service, agent, subagent, system")
			}
			return cond{"actor_type = ?", []any{id}}, nil
		case ok && actorTypes[typ]:
			if id == "" || id == "*" {
				return cond{"actor_type = ?", []any{typ}}, nil
			}
			return andOf(cond{"actor_type = ?", []any{typ}}, actorID(id)), nil
		}
		return actorID(v), nil
	case "event", "action":
		if v == "any" {
			return all{}, nil
		}
		return match("action", v), nil
	case "resource":
		if v == "any" {
			return all{}, nil
		}
		typ, id, ok := strings.Cut(v, ":")
		if !ok {
			return resourceID(v), nil
		}
		if typ == "" {
			return nil, bad("resource: needs type:id, e.g. resource:skill:api-conventions")
		}
		return andOf(match("resource_type", typ), resourceID(cmp.Or(id, "*"))), nil
	case "tenant":
		return match("tenant", v), nil
	case "session":
		return match("session_id", v), nil
	case "tool_use":
		return match("tool_use_id", v), nil
	case "id":
		return cond{"event_id = ?", []any{v}}, nil
	case "result", "status":
		for _, s := range resultStatuses {
			if v == s {
				return cond{"result_status = ?", []any{v}}, nil
			}
		}
		return nil, bad("%s: must be one of %s", t.key, strings.Join(resultStatuses, ", "))
	case "source", "tool":
		return match("source_tool", v), nil
	case "after", "before":
		at, err := ParseTime(v, p.now)
		if err != nil {
			return nil, bad("%s: %v", t.key, err)
		}
		return timeTerm(strings.ToLower(t.key) == "before", at), nil
	}
	return nil, bad("unknown key %q; keys are actor, event, resource, tenant, session, tool_use, id, result, source, after, before", t.key)
}

// timeTerm is after:at, or before:at when before.
func timeTerm(before bool, at time.Time) node {
	op, occ := ">=", Span{HasFrom: true, From: at.Unix()}
	if before {
		op, occ = "<", Span{HasTo: true, To: at.Unix()}
	}
	// Whole seconds, as integers on both sides: the same comparison on DateTime
	// (legacy) and DateTime64 (modern) columns, and no time-zone text for the
	// driver to format. Not "occurred_at < toDateTime(?)": ClickHouse 26.5 answers
	// a DateTime64(9) column compared with a DateTime below it as false for every
	// row (see clickhouse.TestSameSecondBounds). toUnixTimestamp is monotonic, so
	// the primary key still prunes; for >= and < whole seconds the results agree.
	return timeCond{cond{"toUnixTimestamp(occurred_at) " + op + " ?", []any{at.Unix()}}, occ}
}

// actorID matches an actor by id or e-mail.
func actorID(v string) node {
	return junction{" OR ", []node{match("actor_id", v), match("actor_email", v)}}
}

// resourceID matches a resource by id or name: registries often know a skill by its
// name (api-conventions) and store an opaque id (skl_9).
func resourceID(v string) node {
	if v == "*" {
		return all{}
	}
	return junction{" OR ", []node{match("resource_id", v), match("resource_name", v)}}
}

// match is column = value, or LIKE when the value has globs; "*" alone matches all.
func match(column, v string) node {
	if v == "*" {
		return all{}
	}
	if !strings.ContainsAny(v, "*?") {
		return cond{column + " = ?", []any{v}}
	}
	return cond{column + " LIKE ?", []any{likePattern(v)}}
}

// likePattern turns a glob into a LIKE pattern: '*' is '%', '?' is '_', and the
// value's own '%', '_' and '\' are escaped.
func likePattern(glob string) string {
	var b strings.Builder
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			b.WriteByte('%')
		case '?':
			b.WriteByte('_')
		case '%', '_', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func example(key string) string {
	switch strings.ToLower(key) {
	case "actor":
		return "actor:user:sarah@acme.example"
	case "event", "action":
		return "event:skill.*"
	case "resource":
		return "resource:team:acme-platform"
	case "after", "before":
		return key + ":2026-01-19 or " + key + ":-30d"
	case "result", "status":
		return key + ":denied"
	}
	return key + ":value"
}

var relativeUnits = map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}

// maxRelative bounds relative times (and keeps n × unit from overflowing).
const maxRelative = 100 * 366 * 24 * time.Hour

// ParseTime reads an RFC 3339 time, a date (midnight UTC), now, or a time relative to
// now: -30d, -12h, -15m, -2w.
func ParseTime(v string, now time.Time) (time.Time, error) {
	if v == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if rel, ok := strings.CutPrefix(v, "-"); ok && len(rel) >= 2 && rel[0] >= '0' && rel[0] <= '9' {
		n, err := strconv.Atoi(rel[:len(rel)-1])
		unit := relativeUnits[rel[len(rel)-1]]
		if err == nil && unit > 0 && time.Duration(n) <= maxRelative/unit {
			return now.Add(-time.Duration(n) * unit), nil
		}
	}
	return time.Time{}, fmt.Errorf("must be an RFC 3339 time (2026-01-19T10:00:00Z), a date (2026-01-19), now, or relative (-30d, -12h, -15m, -2w)")
}
