package event

import (
	"strings"
	"unicode/utf8"
)

// Sanitized says what SanitizeText changed.
type Sanitized struct {
	InvalidUTF8 bool // invalid UTF-8 was replaced by U+FFFD
	NUL         bool // U+0000 was escaped as the six characters \u0000
	Truncated   bool // the text was cut to the character limit
}

// Changed reports whether anything was changed.
func (s Sanitized) Changed() bool { return s.InvalidUTF8 || s.NUL || s.Truncated }

// Flags lists what was changed, for an event's metadata ("invalid_utf8,nul,truncated").
func (s Sanitized) Flags() string {
	var f []string
	if s.InvalidUTF8 {
		f = append(f, "invalid_utf8")
	}
	if s.NUL {
		f = append(f, "nul")
	}
	if s.Truncated {
		f = append(f, "truncated")
	}
	return strings.Join(f, ",")
}

// SanitizeText makes untrusted text (a query string, a header, a path) safe to
// put into an event that trailkeep produces itself: invalid UTF-8 becomes U+FFFD,
// NUL is escaped, and the text is cut to at most maxChars characters — by
// characters, never inside one — with "…" marking the cut. Canonicalize refuses
// what this removes, so every producer of events must pass untrusted text through
// here first.
func SanitizeText(s string, maxChars int) (string, Sanitized) {
	var st Sanitized
	if !utf8.ValidString(s) {
		st.InvalidUTF8 = true
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		st.NUL = true
		s = strings.ReplaceAll(s, "\x00", `\u0000`)
	}
	if maxChars > 0 && utf8.RuneCountInString(s) > maxChars {
		st.Truncated = true
		n := 0
		for i := range s {
			if n == maxChars-1 {
				s = s[:i] + "…"
				break
			}
			n++
		}
	}
	return s, st
}
