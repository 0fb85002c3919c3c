package sqlscope

import (
	"regexp"
	"strings"
)

// Expressions, lowest precedence first (ClickHouse's order):
// lambda, ?:, OR, AND, NOT, comparison (= != < > <= >= LIKE ILIKE IN BETWEEN IS),
// ||, + -, * / %, unary -, postfix [i] and .N.

func (p *parser) expr() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	return p.ternary()
}

func (p *parser) ternary() (expr, error) {
	c, err := p.or()
	if err != nil || !p.isPunct("?") {
		return c, err
	}
	t := p.next()
	a, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.expectPunct(":", "in a ? b : c"); err != nil {
		return nil, err
	}
	b, err := p.expr()
	if err != nil {
		return nil, err
	}
	return &ternary{pos: t.pos, c: c, a: a, b: b}, nil
}

func (p *parser) or() (expr, error) {
	l, err := p.and()
	for err == nil && p.isKW("OR") {
		t := p.next()
		var r expr
		if r, err = p.and(); err == nil {
			l = &binary{pos: t.pos, op: "OR", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) and() (expr, error) {
	l, err := p.not()
	for err == nil && p.isKW("AND") {
		t := p.next()
		var r expr
		if r, err = p.not(); err == nil {
			l = &binary{pos: t.pos, op: "AND", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) not() (expr, error) {
	if p.isKW("NOT") {
		t := p.next()
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return &unary{pos: t.pos, op: "NOT", x: x}, nil
	}
	return p.comparison()
}

var compareOps = map[string]string{"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}

func (p *parser) comparison() (expr, error) {
	l, err := p.concat()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if op, ok := compareOps[t.text]; ok && t.kind == kindPunct {
			p.next()
			r, err := p.concat()
			if err != nil {
				return nil, err
			}
			l = &binary{pos: t.pos, op: op, l: l, r: r}
			continue
		}
		not := false
		if t.keyword() == "NOT" {
			switch p.peekAt(1).keyword() {
			case "LIKE", "ILIKE", "IN", "BETWEEN":
				not = true
				p.next()
			default:
				return l, nil
			}
		}
		switch k := p.peek().keyword(); k {
		case "LIKE", "ILIKE":
			p.next()
			r, err := p.concat()
			if err != nil {
				return nil, err
			}
			op := k
			if not {
				op = "NOT " + k
			}
			l = &binary{pos: t.pos, op: op, l: l, r: r}
		case "IN":
			p.next()
			if l, err = p.inRHS(t, not, l); err != nil {
				return nil, err
			}
		case "GLOBAL":
			return nil, errAt(p.peek(), "GLOBAL IN is outside the accepted SQL subset")
		case "BETWEEN":
			p.next()
			lo, err := p.concat()
			if err != nil {
				return nil, err
			}
			if err := p.expectKW("AND", "in BETWEEN lo AND hi"); err != nil {
				return nil, err
			}
			hi, err := p.concat()
			if err != nil {
				return nil, err
			}
			l = &betweenExpr{pos: t.pos, not: not, x: l, lo: lo, hi: hi}
		case "IS":
			p.next()
			isNot := p.acceptKW("NOT")
			if err := p.expectKW("NULL", "after IS [NOT]"); err != nil {
				return nil, err
			}
			l = &isNullExpr{pos: t.pos, not: isNot, x: l}
		default:
			return l, nil
		}
	}
}

// inRHS parses what follows IN. ClickHouse reads a bare name there, or a single
// name in parentheses, as a table: both are refused, so the only tables a
// statement reads are the ones its FROM and JOIN clauses name.
func (p *parser) inRHS(at token, not bool, x expr) (expr, error) {
	in := &inExpr{pos: at.pos, not: not, x: x}
	t := p.peek()
	switch {
	case t.kind == kindPunct && t.text == "(":
		if k := p.peekAt(1).keyword(); k == "SELECT" || k == "WITH" {
			p.next()
			sub, err := p.union()
			if err != nil {
				return nil, err
			}
			in.sub = sub
			return in, p.expectPunct(")", "to close the IN subquery")
		}
		p.next()
		if p.acceptPunct(")") {
			return nil, errAt(t, "IN () needs at least one value")
		}
		list, err := p.exprList()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(")", "to close the IN list"); err != nil {
			return nil, err
		}
		if len(list) == 1 {
			if id, ok := list[0].(*ident); ok {
				return nil, &Error{Pos: id.pos, Token: strings.Join(id.parts, "."),
					Msg: "IN (name) reads a table in ClickHouse; write IN (SELECT column FROM ...) or compare with ="}
			}
		}
		in.list = list
		return in, nil
	case t.kind == kindPunct && t.text == "[":
		a, err := p.primary()
		if err != nil {
			return nil, err
		}
		in.list = a.(*arrayLit).elems
		if len(in.list) == 0 {
			return nil, errAt(t, "IN [] needs at least one value")
		}
		return in, nil
	}
	return nil, errAt(t, "IN needs a list or a subquery: write IN (1, 2) or IN (SELECT ... FROM ...)")
}

func (p *parser) concat() (expr, error) {
	l, err := p.additive()
	for err == nil && p.isPunct("||") {
		t := p.next()
		var r expr
		if r, err = p.additive(); err == nil {
			l = &binary{pos: t.pos, op: "||", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) additive() (expr, error) {
	l, err := p.multiplicative()
	for err == nil && (p.isPunct("+") || p.isPunct("-")) {
		t := p.next()
		var r expr
		if r, err = p.multiplicative(); err == nil {
			l = &binary{pos: t.pos, op: t.text, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) multiplicative() (expr, error) {
	l, err := p.unaryMinus()
	for err == nil && (p.isPunct("*") || p.isPunct("/") || p.isPunct("%")) {
		t := p.next()
		var r expr
		if r, err = p.unaryMinus(); err == nil {
			l = &binary{pos: t.pos, op: t.text, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) unaryMinus() (expr, error) {
	if p.isPunct("-") {
		t := p.next()
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.unaryMinus()
		if err != nil {
			return nil, err
		}
		return &unary{pos: t.pos, op: "-", x: x}, nil
	}
	return p.postfix()
}

func (p *parser) postfix() (expr, error) {
	x, err := p.primary()
	for err == nil {
		t := p.peek()
		switch {
		case t.kind == kindPunct && t.text == "[":
			p.next()
			var i expr
			if i, err = p.expr(); err != nil {
				return nil, err
			}
			if err = p.expectPunct("]", "to close the index"); err != nil {
				return nil, err
			}
			x = &indexExpr{pos: t.pos, x: x, i: i}
		case t.kind == kindPunct && t.text == "." && p.peekAt(1).kind == kindNumber && uintRE.MatchString(p.peekAt(1).text):
			p.next()
			x = &tupleElem{pos: t.pos, x: x, n: p.next().text}
		case t.kind == kindPunct && t.text == "::":
			return nil, errAt(t, "write CAST(x AS Type) instead of x::Type")
		default:
			return x, nil
		}
	}
	return nil, err
}

var numberRE = regexp.MustCompile(`^(0[xX][0-9a-fA-F]{1,16}|([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)$`)

func (p *parser) primary() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	t := p.peek()
	switch t.kind {
	case kindNumber:
		if !numberRE.MatchString(t.text) {
			return nil, errAt(t, "not a number literal")
		}
		p.next()
		return &literal{pos: t.pos, text: t.text}, nil
	case kindString:
		p.next()
		s, err := stringValue(t)
		if err != nil {
			return nil, err
		}
		return &literal{pos: t.pos, text: quoteString(s)}, nil
	case kindPunct:
		switch t.text {
		case "(":
			return p.parenthesised()
		case "[":
			p.next()
			a := &arrayLit{pos: t.pos}
			if !p.acceptPunct("]") {
				elems, err := p.exprList()
				if err != nil {
					return nil, err
				}
				a.elems = elems
				if err := p.expectPunct("]", "to close the array"); err != nil {
					return nil, err
				}
			}
			return a, nil
		}
		return nil, unexpected(t)
	case kindIdent, kindQuoted:
		return p.word()
	}
	return nil, unexpected(t)
}

// parenthesised: (subquery), (expr), (a, b) tuple, or (x, y) -> lambda.
func (p *parser) parenthesised() (expr, error) {
	t := p.next()
	if k := p.peek().keyword(); k == "SELECT" || k == "WITH" {
		sub, err := p.union()
		if err != nil {
			return nil, err
		}
		return &subquery{pos: t.pos, q: sub}, p.expectPunct(")", "to close the subquery")
	}
	if p.acceptPunct(")") {
		return &tupleLit{pos: t.pos}, nil
	}
	list, err := p.exprList()
	if err != nil {
		return nil, err
	}
	if err := p.expectPunct(")", "to close the parenthesis"); err != nil {
		return nil, err
	}
	if p.isPunct("->") {
		return p.lambdaBody(t, list)
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return &tupleLit{pos: t.pos, elems: list}, nil
}

func (p *parser) lambdaBody(at token, params []expr) (expr, error) {
	p.next() // ->
	l := &lambda{pos: at.pos}
	for _, e := range params {
		id, ok := e.(*ident)
		if !ok || len(id.parts) != 1 {
			return nil, &Error{Pos: e.position(), Msg: "lambda parameters are plain names: (x, y) -> ..."}
		}
		l.params = append(l.params, id.parts[0])
	}
	body, err := p.expr()
	if err != nil {
		return nil, err
	}
	l.body = body
	return l, nil
}

// word: a keyword-led expression (NULL, CASE, CAST, INTERVAL), a function call, a
// one-parameter lambda, or a column reference.
func (p *parser) word() (expr, error) {
	t := p.peek()
	if t.kind == kindIdent {
		switch t.keyword() {
		case "NULL":
			p.next()
			return &literal{pos: t.pos, text: "NULL"}, nil
		case "TRUE", "FALSE":
			p.next()
			return &literal{pos: t.pos, text: strings.ToLower(t.keyword())}, nil
		case "CASE":
			return p.caseExpr()
		case "CAST":
			if p.peekAt(1).text == "(" {
				return p.castExpr()
			}
		case "INTERVAL":
			return p.intervalExpr()
		case "SELECT", "WITH":
			return nil, errAt(t, "a subquery must be in parentheses")
		}
		if p.peekAt(1).text == "(" {
			return p.call()
		}
	}
	if p.peekAt(1).text == "->" {
		id := &ident{pos: t.pos, parts: []string{t.name()}}
		if _, _, err := p.name("a lambda parameter"); err != nil {
			return nil, err
		}
		return p.lambdaBody(t, []expr{id})
	}
	if t.kind == kindQuoted && p.peekAt(1).text == "(" {
		return nil, errAt(t, "function names are not quoted")
	}
	first, _, err := p.name("a column name")
	if err != nil {
		return nil, err
	}
	id := &ident{pos: t.pos, parts: []string{first}}
	if p.isPunct(".") && (p.peekAt(1).kind == kindIdent || p.peekAt(1).kind == kindQuoted) {
		p.next()
		second, _, err := p.name("a column name after the table")
		if err != nil {
			return nil, err
		}
		id.parts = append(id.parts, second)
		if p.isPunct(".") && (p.peekAt(1).kind == kindIdent || p.peekAt(1).kind == kindQuoted) {
			return nil, errAt(p.peek(), "write alias.column: a column is qualified by its table's alias only")
		}
	}
	return id, nil
}

func (p *parser) call() (expr, error) {
	t := p.next()
	canon, ok := lookupFunction(t.text)
	if !ok {
		return nil, errAt(t, "function %s is not on the allowlist of functions that only compute on their arguments", t.text)
	}
	c := &call{pos: t.pos, name: canon}
	args, distinct, star, err := p.callArgs()
	if err != nil {
		return nil, err
	}
	c.args, c.distinct, c.star = args, distinct, star
	if p.isPunct("(") { // quantile(0.9)(x): the first list was the parameters
		if !isAggregate(canon) || distinct || star {
			return nil, errAt(p.peek(), "only aggregate functions take parameters: f(params)(args)")
		}
		c.params = c.args
		if c.args, c.distinct, c.star, err = p.callArgs(); err != nil {
			return nil, err
		}
	}
	if c.star && !strings.EqualFold(canon, "count") {
		return nil, errAt(t, "only count(*) takes *")
	}
	if c.distinct && !isAggregate(canon) {
		return nil, errAt(t, "DISTINCT inside a call needs an aggregate function")
	}
	if p.isKW("OVER") {
		return nil, errAt(p.peek(), "window functions (OVER) are outside the accepted SQL subset")
	}
	return c, nil
}

func (p *parser) callArgs() (args []expr, distinct, star bool, err error) {
	if err := p.expectPunct("(", "to open the arguments"); err != nil {
		return nil, false, false, err
	}
	if p.acceptPunct(")") {
		return nil, false, false, nil
	}
	if p.isPunct("*") && p.peekAt(1).text == ")" {
		p.next()
		p.next()
		return nil, false, true, nil
	}
	distinct = p.acceptKW("DISTINCT")
	if args, err = p.exprList(); err != nil {
		return nil, false, false, err
	}
	return args, distinct, false, p.expectPunct(")", "to close the arguments")
}

func (p *parser) caseExpr() (expr, error) {
	t := p.next()
	c := &caseExpr{pos: t.pos}
	var err error
	if !p.isKW("WHEN") {
		if c.operand, err = p.expr(); err != nil {
			return nil, err
		}
	}
	for p.acceptKW("WHEN") {
		w, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expectKW("THEN", "after WHEN"); err != nil {
			return nil, err
		}
		th, err := p.expr()
		if err != nil {
			return nil, err
		}
		c.whens, c.thens = append(c.whens, w), append(c.thens, th)
	}
	if len(c.whens) == 0 {
		return nil, errAt(p.peek(), "CASE needs at least one WHEN")
	}
	if p.acceptKW("ELSE") {
		if c.els, err = p.expr(); err != nil {
			return nil, err
		}
	}
	return c, p.expectKW("END", "to close CASE")
}

func (p *parser) castExpr() (expr, error) {
	t := p.next()
	p.next() // (
	x, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.expectKW("AS", "in CAST(x AS Type)"); err != nil {
		return nil, err
	}
	typ, err := p.typeName(0)
	if err != nil {
		return nil, err
	}
	return &castExpr{pos: t.pos, x: x, typ: typ}, p.expectPunct(")", "to close CAST")
}

var castTypes = map[string]bool{"String": true, "FixedString": true, "UInt8": true, "UInt16": true, "UInt32": true, "UInt64": true,
	"Int8": true, "Int16": true, "Int32": true, "Int64": true, "Float32": true, "Float64": true, "Date": true, "DateTime": true,
	"DateTime64": true, "Decimal": true, "Decimal32": true, "Decimal64": true, "Decimal128": true, "Nullable": true, "Array": true,
	"Tuple": true, "LowCardinality": true, "UUID": true, "Bool": true}

// typeName reads a data type such as Nullable(DateTime64(9, 'UTC')).
func (p *parser) typeName(depth int) (string, error) {
	t := p.peek()
	if t.kind != kindIdent || !castTypes[t.text] {
		return "", errAt(t, "expected a data type (String, UInt64, DateTime64(9), Nullable(...), Array(...), ...)")
	}
	if depth > 8 {
		return "", errAt(t, "the type nests too deep")
	}
	p.next()
	if !p.acceptPunct("(") {
		return t.text, nil
	}
	var args []string
	for {
		a := p.peek()
		switch {
		case a.kind == kindNumber && uintRE.MatchString(a.text):
			p.next()
			args = append(args, a.text)
		case a.kind == kindString:
			p.next()
			s, err := stringValue(a)
			if err != nil {
				return "", err
			}
			args = append(args, quoteString(s))
		default:
			sub, err := p.typeName(depth + 1)
			if err != nil {
				return "", err
			}
			args = append(args, sub)
		}
		if !p.acceptPunct(",") {
			break
		}
	}
	if err := p.expectPunct(")", "to close the type"); err != nil {
		return "", err
	}
	return t.text + "(" + strings.Join(args, ", ") + ")", nil
}

var intervalUnits = map[string]string{"SECOND": "Second", "MINUTE": "Minute", "HOUR": "Hour", "DAY": "Day", "WEEK": "Week",
	"MONTH": "Month", "QUARTER": "Quarter", "YEAR": "Year"}

func (p *parser) intervalExpr() (expr, error) {
	t := p.next()
	x, err := p.additive()
	if err != nil {
		return nil, err
	}
	u := p.peek()
	unit, ok := intervalUnits[strings.TrimSuffix(u.keyword(), "S")]
	if !ok {
		return nil, errAt(u, "expected an interval unit (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR)")
	}
	p.next()
	return &intervalExpr{pos: t.pos, x: x, unit: unit}, nil
}
