package event

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// maxSafeInteger is 2^53−1, the largest integer every IEEE 754 double holds
// exactly (I-JSON, RFC 7493 §2.2). JCS serialises numbers as doubles, so a
// larger integer would silently change when canonicalised.
const maxSafeInteger = 1<<53 - 1

// Decode parses raw as one JSON object and returns it as a document of
// map[string]any, []any, string, float64, bool and nil values, rejecting
// everything RFC 8785 cannot represent faithfully (see the package
// documentation). It is the first step for every source: adapters map the
// document onto the canonical shape, then [Canonicalize] validates it.
func Decode(raw []byte, lim Limits) (map[string]any, error) {
	lim = lim.withDefaults()
	if len(raw) > lim.MaxEventBytes {
		return nil, fieldErr("", RuleMaxBytes, strconv.Itoa(lim.MaxEventBytes),
			"event is %d bytes, at most %d allowed", len(raw), lim.MaxEventBytes)
	}
	p := decoders.Get().(*pooledDecoder)
	defer p.release()
	d := decoder{dec: p.reset(raw), lim: lim}
	switch k := d.dec.PeekKind(); k {
	case '{':
	case 0: // malformed: the next read reports why
	default:
		return nil, fieldErr("", RuleObject, "", "must be a JSON object, not %s", kindName(k))
	}
	v, err := d.value(1, make(path, 0, 8))
	if err != nil {
		return nil, err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return nil, fieldErr("", RuleSyntax, "", "unexpected data after the JSON object")
	}
	return v.(map[string]any), nil
}

type decoder struct {
	dec *jsontext.Decoder
	lim Limits
}

// pooledDecoder is a jsontext decoder kept between events with the buffer it
// reads. jsontext parses a [bytes.Buffer]'s bytes in place, where from any other
// reader it copies the input into a buffer of its own, grown as it reads; and a
// decoder reused keeps the state it grew (its name and nesting stacks).
type pooledDecoder struct {
	in  bytes.Buffer
	dec jsontext.Decoder
}

var decoders = sync.Pool{New: func() any { return new(pooledDecoder) }}

// reset points p at raw. The decoder finds duplicate names itself, in the map it
// fills anyway: jsontext's own check keeps a second name set per object, about a
// twentieth of ingest's allocations.
func (p *pooledDecoder) reset(raw []byte) *jsontext.Decoder {
	p.in = *bytes.NewBuffer(raw)
	p.dec.Reset(&p.in, jsontext.AllowDuplicateNames(true))
	return &p.dec
}

// release drops p's reference to the event's bytes and returns it to the pool.
func (p *pooledDecoder) release() {
	p.in = bytes.Buffer{}
	p.dec.Reset(&p.in)
	decoders.Put(p)
}

func (d *decoder) value(depth int, at path) (any, error) {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return nil, syntaxError(err, at.String())
	}
	switch tok.Kind() {
	case '{':
		if depth > d.lim.MaxDepth {
			return nil, fieldErr(at.String(), RuleMaxDepth, strconv.Itoa(d.lim.MaxDepth), "nesting deeper than %d levels", d.lim.MaxDepth)
		}
		m := make(map[string]any, objectHint(depth))
		for d.dec.PeekKind() != '}' {
			name, err := d.dec.ReadToken()
			if err != nil {
				return nil, syntaxError(err, at.String())
			}
			key := name.String()
			child := at.key(key)
			if _, dup := m[key]; dup {
				// key is unescaped, so "a" and "\u0061" are the same name, as in
				// RFC 8259's and jsontext's sense.
				return nil, fieldErr(child.String(), RuleDuplicateKey, "", "duplicate key; each key may appear once per object")
			}
			if strings.IndexByte(key, 0) >= 0 {
				return nil, fieldErr(child.String(), RuleNUL, "", "key must not contain U+0000")
			}
			v, err := d.value(depth+1, child)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, syntaxError(err, at.String())
		}
		return m, nil
	case '[':
		if depth > d.lim.MaxDepth {
			return nil, fieldErr(at.String(), RuleMaxDepth, strconv.Itoa(d.lim.MaxDepth), "nesting deeper than %d levels", d.lim.MaxDepth)
		}
		a := []any{}
		for i := 0; d.dec.PeekKind() != ']'; i++ {
			v, err := d.value(depth+1, at.elem(i))
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, syntaxError(err, at.String())
		}
		return a, nil
	case '"':
		s := tok.String()
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fieldErr(at.String(), RuleNUL, "", "must not contain U+0000")
		}
		return s, nil
	case '0':
		return number(tok.String(), at)
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	}
	return nil, fieldErr(at.String(), RuleSyntax, "", "unexpected token %q", tok.Kind().String())
}

// objectHint is the size to make an object's map with. The top level gets room
// for every member the v1 schema has (19), so an event's map does not grow while
// Stamp adds the server-owned ones; nested objects start small.
func objectHint(depth int) int {
	if depth == 1 {
		return 20
	}
	return 0
}

// number accepts a JSON number only if its IEEE 754 double, the form JCS
// serialises, is the value the sender wrote as far as I-JSON promises.
func number(lit string, at path) (float64, error) {
	if !strings.ContainsAny(lit, ".eE") {
		n, err := strconv.ParseInt(lit, 10, 64)
		if err != nil || n > maxSafeInteger || n < -maxSafeInteger {
			return 0, fieldErr(at.String(), RuleNumber, "±9007199254740991",
				"integer %s is beyond ±(2^53−1) and would lose precision; send it as a string", clip(lit))
		}
		return float64(n), nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return 0, fieldErr(at.String(), RuleNumber, "IEEE 754 double",
			"number %s is outside the range of an IEEE 754 double; send it as a string", clip(lit))
	}
	if f == 0 && strings.ContainsAny(mantissa(lit), "123456789") {
		return 0, fieldErr(at.String(), RuleNumber, "IEEE 754 double",
			"number %s is too small for an IEEE 754 double and would become 0; send it as a string", clip(lit))
	}
	return f, nil
}

func mantissa(lit string) string {
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		return lit[:i]
	}
	return lit
}

var surrogateEscape = regexp.MustCompile(`\\[uU][dD][89abcdefABCDEF][0-9a-fA-F]{2}`)

// syntaxError turns a jsontext error into a FieldError with the pointer the
// decoder reports, classified by the rule a sender can act on.
func syntaxError(err error, ptr string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		return fieldErr(ptr, RuleSyntax, "", "unexpected end of JSON input")
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		if se.JSONPointer != "" {
			ptr = string(se.JSONPointer)
		}
		msg := se.Err.Error()
		switch {
		case strings.Contains(msg, "invalid UTF-8"):
			return fieldErr(ptr, RuleUTF8, "", "invalid UTF-8 in string (byte offset %d)", se.ByteOffset)
		case surrogateEscape.MatchString(msg):
			return fieldErr(ptr, RuleUTF8, "", "lone UTF-16 surrogate escape %s is not a Unicode character (byte offset %d)",
				surrogateEscape.FindString(msg), se.ByteOffset)
		}
		return fieldErr(ptr, RuleSyntax, "", "%s (byte offset %d)", msg, se.ByteOffset)
	}
	return fieldErr(ptr, RuleSyntax, "", "%v", err)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "empty input"
}

// SplitArray returns the raw bytes of each element of a top-level JSON array, so that
// a batch can be decoded and rejected item by item: one bad element never costs the
// good ones. Only the array's own syntax is checked here; each element still goes
// through [Decode]. More than maxItems elements is an error naming the limit.
func SplitArray(raw []byte, maxItems int) ([][]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(raw), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, syntaxError(err, "")
	}
	if tok.Kind() != '[' {
		return nil, fieldErr("", "type", "array", "must be a JSON array, not %s", kindName(tok.Kind()))
	}
	var out [][]byte
	for dec.PeekKind() != ']' {
		if len(out) == maxItems {
			return nil, fieldErr("", "maxItems", strconv.Itoa(maxItems), "a batch holds at most %d items", maxItems)
		}
		v, err := dec.ReadValue()
		if err != nil {
			return nil, syntaxError(err, "/"+strconv.Itoa(len(out)))
		}
		out = append(out, bytes.Clone(v))
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, syntaxError(err, "")
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, fieldErr("", RuleSyntax, "", "unexpected data after the JSON array")
	}
	return out, nil
}
