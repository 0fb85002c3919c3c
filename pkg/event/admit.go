package event

import (
	"bytes"
	"unicode/utf8"
)

// admitFast reports whether raw certainly passes Admit's canonical-form and head
// checks, in one scan without allocating. It accepts only a conservative subset of
// RFC 8785 output — what ingest writes: ASCII member names without escapes in
// strictly increasing byte order (which for ASCII is the UTF-16 order RFC 8785
// sorts by, and rules out duplicates), integers of at most 15 digits (exact in a
// float64, so their ECMAScript form is their digits), strings with only the escapes
// RFC 8785 writes — and answers false for anything else, including input that is
// canonical but outside the subset; Admit then runs the full check, which decides
// and names the error. So a false here costs time, never a wrong answer; a true must
// never be given to bytes the full check refuses (FuzzAdmitFast holds it to that).
func admitFast(raw []byte) bool {
	s := admitScan{b: raw}
	if !s.value(0) || s.i != len(raw) {
		return false
	}
	return s.version && s.id && s.tenant
}

// admitMaxDepth bounds the scan's recursion; deeper documents take the full check.
const admitMaxDepth = 32

type admitScan struct {
	b []byte
	i int
	// version, id, tenant: the top-level object has schema_version SchemaVersion
	// and non-empty string id and tenant.
	version, id, tenant bool
}

func (s *admitScan) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		return s.str()
	case c == '-' || '0' <= c && c <= '9':
		_, ok := s.integer()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *admitScan) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

func (s *admitScan) object(depth int) bool {
	if depth >= admitMaxDepth {
		return false
	}
	s.i++ // {
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	var prev []byte
	for {
		key, ok := s.name()
		if !ok || (prev != nil && bytes.Compare(key, prev) <= 0) {
			return false
		}
		prev = key
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		if depth == 0 {
			if !s.head(key) {
				return false
			}
		} else if !s.value(depth + 1) {
			return false
		}
		if more, ok := s.separator('}'); !more {
			return ok
		}
	}
}

// separator scans what follows a member or element: ',' (more to come) or the
// closing byte (done, ok); anything else is not ok.
func (s *admitScan) separator(closing byte) (more, ok bool) {
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, true
	case closing:
		s.i++
		return false, true
	}
	return false, false
}

// head scans a top-level member's value, noting the three Admit requires.
func (s *admitScan) head(key []byte) bool {
	switch string(key) {
	case "schema_version":
		n, ok := s.integer()
		s.version = ok && n == SchemaVersion
		return ok
	case "id", "tenant":
		start := s.i
		if s.i >= len(s.b) || s.b[s.i] != '"' || !s.str() {
			return false
		}
		nonEmpty := s.i-start > 2
		if key[0] == 'i' {
			s.id = nonEmpty
		} else {
			s.tenant = nonEmpty
		}
		return true
	}
	return s.value(1)
}

func (s *admitScan) array(depth int) bool {
	if depth >= admitMaxDepth {
		return false
	}
	s.i++ // [
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth + 1) {
			return false
		}
		if more, ok := s.separator(']'); !more {
			return ok
		}
	}
}

// name scans a member name of printable ASCII without escapes and returns it.
func (s *admitScan) name() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c < 0x20 || c == '\\' || c >= 0x7f:
			return nil, false
		}
	}
	return nil, false
}

// str scans a string value as RFC 8785 writes it: \" \\ \b \f \n \r \t, \u00xx
// (lower-case hex) for the other control characters, everything else literal and
// valid UTF-8. DEL, U+2028 and U+2029 are left to the full check.
func (s *admitScan) str() bool {
	s.i++ // "
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			if !s.escape() {
				return false
			}
		case c < 0x20 || c == 0x7f:
			return false
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
				return false
			}
			s.i += n
		}
	}
	return false
}

func (s *admitScan) escape() bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	switch s.b[s.i+1] {
	case '"', '\\', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		// \u00xx for a control character without a short form.
		if s.i+6 > len(s.b) || s.b[s.i+2] != '0' || s.b[s.i+3] != '0' {
			return false
		}
		hi, lo := s.b[s.i+4], s.b[s.i+5]
		if hi != '0' && hi != '1' || !('0' <= lo && lo <= '9' || 'a' <= lo && lo <= 'f') {
			return false
		}
		switch cc := (hi-'0')<<4 | hexVal(lo); cc {
		case '\b', '\t', '\n', '\f', '\r':
			return false
		}
		s.i += 6
		return true
	}
	return false
}

func hexVal(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// integer scans -?(0|[1-9][0-9]{0,14}) not followed by a fraction or exponent, and
// not -0 (RFC 8785 writes 0).
func (s *admitScan) integer() (int64, bool) {
	j := s.i
	neg := j < len(s.b) && s.b[j] == '-'
	if neg {
		j++
	}
	start := j
	var n int64
	for j < len(s.b) && '0' <= s.b[j] && s.b[j] <= '9' {
		n = n*10 + int64(s.b[j]-'0')
		j++
	}
	digits := j - start
	switch {
	case digits == 0 || digits > 15:
		return 0, false
	case s.b[start] == '0' && (digits > 1 || neg):
		return 0, false
	case j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E'):
		return 0, false
	}
	s.i = j
	if neg {
		n = -n
	}
	return n, true
}
