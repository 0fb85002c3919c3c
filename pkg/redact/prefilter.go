package redact

import (
	"maps"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	ahocorasick "github.com/BobuSumisu/aho-corasick"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect/codec"
)

// The batch pre-scan (anyFinding) sends a string to the detector only when a scan of
// that string alone could find something. Two questions decide it, each a necessary
// condition read from gitleaks itself rather than from a list kept here:
//
//   - Could a rule match the raw string? The detector runs a rule only when one of its
//     keywords occurs in the text, and a rule's regular expression can only match a
//     string holding, for each of the character classes the expression requires (a
//     literal, a class repeated at least once, one class per alternative), at least one
//     of its bytes. Both are derived when the Redactor is built, from each rule's
//     compiled expression; a keyword alone (an "api" in "api-conventions-12") no longer
//     sends a string through gitleaks' costliest rule when the string lacks, say, any of
//     the assignment characters that rule's match requires.
//   - Does the string hold a segment the detector would decode? gitleaks' own decoder
//     (detect/codec) answers it; a string without one gets only the raw pass.
//
// Dropping a string that fails both cannot hide a secret: the per-string scan, which is
// what redaction applies, would find nothing in it. A string that passes is scanned by
// the full detector, which still decides; a wrong "could match" only costs time.

// byteSet is a set of byte values.
type byteSet [4]uint64

func (s *byteSet) add(b byte) { s[b>>6] |= 1 << (b & 63) }
func (s *byteSet) union(o byteSet) {
	s[0], s[1], s[2], s[3] = s[0]|o[0], s[1]|o[1], s[2]|o[2], s[3]|o[3]
}
func (s byteSet) meets(o byteSet) bool { return s[0]&o[0]|s[1]&o[1]|s[2]&o[2]|s[3]&o[3] != 0 }
func (s byteSet) size() (n int) {
	for _, w := range s {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// addRune adds the bytes that a string holding r contains: r itself when ASCII, and
// every byte from 0x80 otherwise (the bytes of a multi-byte or invalid sequence, which
// the regexp engine reads as U+FFFD, are all at least 0x80).
func (s *byteSet) addRune(r rune) {
	if r < 0x80 {
		s.add(byte(r))
		return
	}
	s[2], s[3] = ^uint64(0), ^uint64(0)
}

// bytesOf is the set of bytes in str.
func bytesOf(str string) (s byteSet) {
	for i := 0; i < len(str); i++ {
		s.add(str[i])
	}
	return s
}

// needs returns classes of which every match of re holds at least one byte each. It
// may return fewer than exist (nil is always true); it must never return a class a
// match can lack.
func needs(re *syntax.Regexp) []byteSet {
	switch re.Op {
	case syntax.OpLiteral:
		out := make([]byteSet, 0, len(re.Rune))
		for _, r := range re.Rune {
			var s byteSet
			s.addRune(r)
			if re.Flags&syntax.FoldCase != 0 {
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					s.addRune(f)
				}
			}
			out = append(out, s)
		}
		return out
	case syntax.OpCharClass: // the parser has already folded case into the ranges
		var s byteSet
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if r >= 0x80 {
					s.addRune(r)
					break
				}
				s.add(byte(r))
			}
		}
		return []byteSet{s}
	case syntax.OpCapture, syntax.OpPlus:
		return needs(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return needs(re.Sub[0])
		}
		return nil
	case syntax.OpConcat:
		var out []byteSet
		for _, sub := range re.Sub {
			out = append(out, needs(sub)...)
		}
		return out
	case syntax.OpAlternate:
		// One class: the union, over the alternatives, of each one's smallest class.
		var s byteSet
		for _, alt := range re.Sub {
			n := needs(alt)
			if len(n) == 0 {
				return nil // this alternative needs nothing in particular
			}
			best := n[0]
			for _, c := range n[1:] {
				if c.size() < best.size() {
					best = c
				}
			}
			s.union(best)
		}
		return []byteSet{s}
	}
	return nil // empty matches, anchors, any character, star and quest need nothing
}

// ruleFilter is what a rule needs of a string before the detector could report it.
type ruleFilter struct {
	never bool // a path-only rule that does not match the empty path: it reports a fragment's path, and ours have none
	need  []byteSet
}

// mayMatch reports whether a string with the bytes present could satisfy f.
func (f ruleFilter) mayMatch(present byteSet) bool {
	if f.never {
		return false
	}
	for _, n := range f.need {
		if !present.meets(n) {
			return false
		}
	}
	return true
}

// prefilter holds the rules' filters by lower-case keyword.
type prefilter struct {
	keywords    *ahocorasick.Trie // every rule's keywords, lower case, as gitleaks' own prefilter has them
	byKeyword   map[string][]ruleFilter
	byPattern   [][]ruleFilter // byKeyword by the trie's pattern number
	keywordless []ruleFilter
}

func newPrefilter(cfg config.Config) (*prefilter, error) {
	p := &prefilter{byKeyword: map[string][]ruleFilter{}}
	for _, rule := range cfg.Rules {
		f, err := filterOf(rule)
		if err != nil {
			return nil, err
		}
		if len(rule.Keywords) == 0 {
			p.keywordless = append(p.keywordless, f)
			continue
		}
		for _, k := range rule.Keywords {
			k = strings.ToLower(k)
			p.byKeyword[k] = append(p.byKeyword[k], f)
		}
	}
	// The trie numbers its patterns in the order added.
	keywords := slices.Sorted(maps.Keys(p.byKeyword))
	for _, k := range keywords {
		p.byPattern = append(p.byPattern, p.byKeyword[k])
	}
	p.keywords = ahocorasick.NewTrieBuilder().AddStrings(keywords).Build()
	return p, nil
}

// hasKeyword reports whether s contains, case-insensitively, a keyword of any rule.
func (p *prefilter) hasKeyword(s string) bool {
	var scratch [256]byte
	found := false
	p.keywords.Walk(appendLower(scratch[:0], s), func(_, _, _ int64) bool {
		found = true
		return false
	})
	return found
}

// appendLower appends strings.ToLower(s), by bytes when s is ASCII. The keyword
// walk needs bytes: strings.ToLower, the conversion and the trie's matches were
// allocations per scanned string; into a caller's stack array they are none.
func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return append(b, strings.ToLower(s)...)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

func filterOf(rule config.Rule) (ruleFilter, error) {
	if rule.Regex == nil {
		return ruleFilter{never: rule.Path == nil || !rule.Path.MatchString("")}, nil
	}
	re, err := syntax.Parse(rule.Regex.String(), syntax.Perl)
	if err != nil {
		return ruleFilter{}, &RuleError{Rule: rule.RuleID, Err: err}
	}
	return ruleFilter{need: needs(re)}, nil
}

// RuleError says a gitleaks rule's expression could not be read for the pre-filter.
type RuleError struct {
	Rule string
	Err  error
}

func (e *RuleError) Error() string { return "redact: rule " + e.Rule + ": " + e.Err.Error() }
func (e *RuleError) Unwrap() error { return e.Err }

// mayMatchRaw reports whether some rule could report something in s without decoding.
func (r *Redactor) mayMatchRaw(s string) bool {
	present := bytesOf(s)
	for _, f := range r.pre.keywordless {
		if f.mayMatch(present) {
			return true
		}
	}
	var scratch [256]byte
	may := false
	r.pre.keywords.Walk(appendLower(scratch[:0], s), func(_, _, pattern int64) bool {
		for _, f := range r.pre.byPattern[pattern] {
			if f.mayMatch(present) {
				may = true
				return false
			}
		}
		return true
	})
	return may
}

// hasSegments reports whether the detector's decoding passes would decode anything in
// s: gitleaks' decoder finds a segment that decodes to text.
func hasSegments(s string) bool {
	if !mayEncode(s) {
		return false
	}
	_, segments := codec.NewDecoder().Decode(s, nil)
	return len(segments) > 0
}
