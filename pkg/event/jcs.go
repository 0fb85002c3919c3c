package event

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendJCS appends the RFC 8785 canonical form of a document produced by
// Decode (map[string]any, []any, string, float64, bool, nil) in one pass.
//
// It exists for speed: json/v2 marshalling followed by
// jsontext.Value.Canonicalize re-parses every event and costs twice the
// ingest budget (BENCHMARKS.md). The library stays the reference: tests and
// FuzzCanonicalize require byte equality with jsontext's canonical form.
//
// The same pass enforces Decode's text rules (valid UTF-8, no U+0000 in keys
// or strings, objects and arrays nested at most maxDepth deep, the top-level
// object at depth 0): a walk of its own over every member was about a tenth of
// ingest's CPU per event. It returns errText without saying where; the caller
// names the field with checkText, which only a refused document pays for. A
// negative maxDepth (AppendCanonical's sub-documents) checks nothing.
func appendJCS(b []byte, v any, depth, maxDepth int) ([]byte, error) {
	check := maxDepth >= 0
	switch v := v.(type) {
	case map[string]any:
		if check && depth > maxDepth {
			return nil, errText
		}
		// The members are sorted with their values, so no value is looked up
		// again; an event's objects fit the stack array.
		var stack [24]member
		members := stack[:0]
		if len(v) > len(stack) {
			members = make([]member, 0, len(v))
		}
		for k, e := range v {
			members = append(members, member{k, e})
		}
		slices.SortFunc(members, compareMembers)
		b = append(b, '{')
		for i := range members {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendJCSString(b, members[i].name, check); !ok {
				return nil, errText
			}
			b = append(b, ':')
			var err error
			if b, err = appendJCS(b, members[i].value, depth+1, maxDepth); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if check && depth > maxDepth {
			return nil, errText
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJCS(b, e, depth+1, maxDepth); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case string:
		b, ok := appendJCSString(b, v, check)
		if !ok {
			return nil, errText
		}
		return b, nil
	case float64:
		return appendJCSNumber(b, v)
	case bool:
		return strconv.AppendBool(b, v), nil
	case nil:
		return append(b, "null"...), nil
	}
	return nil, fmt.Errorf("event: canonical encoding: unsupported value of type %T", v)
}

// member is one member of an object being encoded.
type member struct {
	name  string
	value any
}

func compareMembers(a, b member) int { return compareUTF16(a.name, b.name) }

// errText is appendJCS's answer for a string, key or depth the text rules
// refuse.
var errText = errors.New("event: text rules refuse the document")

// appendJCSString writes s with the minimal escaping of RFC 8785 §3.2.2.2:
// only '"', '\\' and control characters are escaped; everything else is
// literal UTF-8. With check it reports false, having written a prefix, if s is
// not valid UTF-8 or holds U+0000; without, it escapes U+0000 and copies
// invalid bytes.
func appendJCSString(b []byte, s string, check bool) ([]byte, bool) {
	const hex = "0123456789abcdef"
	if check && !utf8.ValidString(s) {
		return b, false
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		if c == 0 && check {
			return b, false
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}

// appendJCSNumber writes f as ECMAScript's Number.prototype.toString does
// (RFC 8785 §3.2.2.3): shortest round-trip digits, plain notation for
// 1e-6 ≤ |f| < 1e21, otherwise exponent form with a signed, unpadded
// exponent. This is the same rule encoding/json applies.
func appendJCSNumber(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("event: canonical encoding: %v is not a JSON number", f)
	}
	if f == 0 {
		return append(b, '0'), nil // also for -0
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	n := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 / e+07; ECMAScript writes e-7 / e+7.
		if m := len(b); m-n >= 4 && b[m-4] == 'e' && b[m-2] == '0' {
			b[m-2] = b[m-1]
			b = b[:m-1]
		}
	}
	return b, nil
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785
// §3.2.3 requires. Byte order differs from it only where a rune ≥ U+10000
// meets one in U+E000..U+FFFF.
//
// Member names are nearly always ASCII, so it first skips the common prefix
// byte by byte. When the first bytes that differ are both ASCII, they start a
// rune each (no multi-byte sequence holds an ASCII byte, so the prefix decodes
// the same in both) and decide. A string that is a prefix of the other, ending
// in an ASCII byte, sorts first. Anything else, including text that is not
// UTF-8 (AppendCanonical does not check), takes compareRunes.
func compareUTF16(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	switch {
	case i == n && (n == 0 || a[n-1] < utf8.RuneSelf):
		return len(a) - len(b)
	case i < n && a[i] < utf8.RuneSelf && b[i] < utf8.RuneSelf:
		return int(a[i]) - int(b[i])
	}
	return compareRunes(a, b)
}

// compareRunes is compareUTF16 rune by rune.
func compareRunes(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := utf16Units(ra), utf16Units(rb)
			if ua[0] != ub[0] {
				return int(ua[0]) - int(ub[0])
			}
			return int(ua[1]) - int(ub[1])
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

func utf16Units(r rune) [2]uint16 {
	if r < 0x10000 {
		return [2]uint16{uint16(r), 0}
	}
	r -= 0x10000
	return [2]uint16{uint16(0xd800 + r>>10), uint16(0xdc00 + r&0x3ff)}
}

// AppendCanonical appends the RFC 8785 canonical form of v, a value as produced by
// [Decode] (map[string]any, []any, string, float64, bool or nil). Source adapters use
// it to digest and store sub-documents such as a tool's input. It applies no text
// rules: the event the sub-document ends up in is checked as a whole.
func AppendCanonical(b []byte, v any) ([]byte, error) { return appendJCS(b, v, 0, -1) }
