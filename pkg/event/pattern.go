package event

import (
	"regexp"
	"regexp/syntax"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compilePattern is the schema compiler's regexp engine. Most of the schema's
// patterns are anchored runs of character classes (identifiers, digests, "no control
// characters"), checked on every string of every event; they are matched here by a
// scan of the string against the classes, and every other pattern by Go's regexp.
// Ingest spent about 6% of its CPU in regexp matching for these.
func compilePattern(pattern string) (jsonschema.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	if m := classRun(pattern); m != nil {
		return m, nil
	}
	return re, nil
}

// classItem is one element of a classPattern: a rune in ranges, min to max times
// (max < 0: unbounded).
type classItem struct {
	ranges   []rune // pairs lo, hi, as syntax.Regexp.Rune of OpCharClass
	min, max int
}

func (c classItem) has(r rune) bool {
	for i := 0; i < len(c.ranges); i += 2 {
		if r >= c.ranges[i] && r <= c.ranges[i+1] {
			return true
		}
	}
	return false
}

// classPattern matches ^item...item$ by one greedy scan. It is only built when
// greed is exact: every item of variable count is the last one or is followed by an
// item of at least one rune that no rune of its own class matches, so where a run
// must stop is decided by the next rune alone.
type classPattern struct {
	src   string
	items []classItem
}

func (p *classPattern) String() string { return p.src }

// MatchString reports whether s matches the whole pattern.
func (p *classPattern) MatchString(s string) bool {
	i := 0
	for _, it := range p.items {
		n := 0
		for (it.max < 0 || n < it.max) && i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			if !it.has(r) {
				break
			}
			i += size
			n++
		}
		if n < it.min {
			return false
		}
	}
	return i == len(s)
}

// classRun returns the classPattern of pattern, or nil when it is not of that shape
// (groups, alternation, case folding, unanchored) or greed would not be exact.
func classRun(pattern string) *classPattern {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil || re.Op != syntax.OpConcat || len(re.Sub) < 3 {
		return nil
	}
	subs := re.Sub
	if subs[0].Op != syntax.OpBeginText || subs[len(subs)-1].Op != syntax.OpEndText {
		return nil
	}
	var items []classItem
	for _, sub := range subs[1 : len(subs)-1] {
		got, ok := classItems(sub)
		if !ok {
			return nil
		}
		items = append(items, got...)
	}
	for i, it := range items {
		if it.min == it.max || i == len(items)-1 {
			continue
		}
		next := items[i+1]
		if next.min < 1 || overlaps(it.ranges, next.ranges) {
			return nil
		}
	}
	return &classPattern{src: pattern, items: items}
}

// classItems turns one element of the pattern into items: a class or literal, alone
// or repeated.
func classItems(re *syntax.Regexp) ([]classItem, bool) {
	if re.Flags&syntax.FoldCase != 0 {
		return nil, false
	}
	switch re.Op {
	case syntax.OpLiteral:
		out := make([]classItem, len(re.Rune))
		for i, r := range re.Rune {
			out[i] = classItem{ranges: []rune{r, r}, min: 1, max: 1}
		}
		return out, true
	case syntax.OpCharClass:
		return []classItem{{ranges: re.Rune, min: 1, max: 1}}, true
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		one, ok := classItems(re.Sub[0])
		if !ok || len(one) != 1 {
			return nil, false
		}
		it := one[0]
		switch re.Op {
		case syntax.OpStar:
			it.min, it.max = 0, -1
		case syntax.OpPlus:
			it.min, it.max = 1, -1
		case syntax.OpQuest:
			it.min, it.max = 0, 1
		default:
			it.min, it.max = re.Min, re.Max
		}
		return []classItem{it}, true
	}
	return nil, false
}

// overlaps reports whether two class range lists share a rune.
func overlaps(a, b []rune) bool {
	for i := 0; i < len(a); i += 2 {
		for j := 0; j < len(b); j += 2 {
			if a[i] <= b[j+1] && b[j] <= a[i+1] {
				return true
			}
		}
	}
	return false
}
