package event

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// schemaPatterns returns every "pattern" of the event schema.
func schemaPatterns(t testing.TB) []string {
	t.Helper()
	doc, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if p, ok := x["pattern"].(string); ok {
				out = append(out, p)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

// extraPatterns are shapes beyond the schema's: ones the scan must refuse (greed
// would not be exact, groups, folding) and ones it takes.
var extraPatterns = []string{
	`^[a-z]*[a-z]$`, `^[a-z]*[0-9]*[a-z]$`, `^[a-z]{2,4}[0-9]+$`, `^a?b$`, `^a?a$`, `^(?i)abc$`,
	`^[a-z]+-[0-9]{1,3}$`, `abc`, `^abc`, `^x|y$`, `^[^a]*$`, `^\d{3}$`, `^é+[ü]?$`, `^.*$`,
}

// randomString draws from the runes the pattern mentions, their neighbours, and a
// few others (controls, non-ASCII, invalid UTF-8), so boundaries are hit often.
func randomString(rnd *rand.Rand, pattern string) string {
	var pool []rune
	for _, r := range pattern {
		pool = append(pool, r, r-1, r+1)
	}
	pool = append(pool, 0, 0x1f, 0x7f, 'a', 'Z', '0', '9', '-', '_', '.', ':', '/', 'é', '\u2028', 0xfffd)
	var b strings.Builder
	for n := rnd.IntN(70); n > 0; n-- {
		if rnd.IntN(50) == 0 {
			b.WriteByte(0xff) // invalid UTF-8
			continue
		}
		b.WriteRune(pool[rnd.IntN(len(pool))])
	}
	return b.String()
}

// TestClassPatternsAgreeWithRegexp is a differential oracle: for every schema pattern
// and the extra shapes, the scan (where it applies) and Go's regexp agree on random
// strings, and on strings the regexp accepts (built by mutating accepted ones).
func TestClassPatternsAgreeWithRegexp(t *testing.T) {
	rnd := rand.New(rand.NewPCG(8, 8))
	taken := 0
	for _, p := range append(schemaPatterns(t), extraPatterns...) {
		re := regexp.MustCompile(p)
		m := classRun(p)
		if m == nil {
			continue
		}
		taken++
		var accepted []string
		for range 20000 {
			s := randomString(rnd, p)
			if len(accepted) > 0 && rnd.IntN(2) == 0 {
				s = mutate(rnd, accepted[rnd.IntN(len(accepted))])
			}
			want := re.MatchString(s)
			if got := m.MatchString(s); got != want {
				t.Fatalf("pattern %q on %q: scan %v, regexp %v", p, s, got, want)
			}
			if want && len(accepted) < 100 {
				accepted = append(accepted, s)
			}
		}
	}
	if schema := len(schemaPatterns(t)); taken < schema-2 {
		t.Fatalf("only %d patterns take the scan; the schema's %d patterns should all but the two with groups", taken, schema)
	}
}

// TestClassRunRefusesInexactShapes: patterns where a greedy scan could reject a
// string the regexp accepts must go to the regexp engine.
func TestClassRunRefusesInexactShapes(t *testing.T) {
	for _, p := range []string{`^[a-z]*[a-z]$`, `^[a-z]*[0-9]*[a-z]$`, `^a?a$`, `^(?i)abc$`, `abc`, `^abc`, `^x|y$`, `^(ab)+$`, `^.*$`} {
		if classRun(p) != nil {
			t.Errorf("classRun(%q) took a pattern whose greedy scan is not exact", p)
		}
	}
}

func mutate(rnd *rand.Rand, s string) string {
	b := []byte(s)
	switch {
	case len(b) == 0:
		return "a"
	case rnd.IntN(3) == 0:
		return string(b[:rnd.IntN(len(b))])
	case rnd.IntN(2) == 0:
		b[rnd.IntN(len(b))] ^= byte(1 << rnd.IntN(7))
		return string(b)
	}
	i := rnd.IntN(len(b))
	return string(b[:i]) + string(b[i]) + string(b[i:])
}

// FuzzClassPattern extends the oracle to inputs the fuzzer finds.
func FuzzClassPattern(f *testing.F) {
	pats := append(schemaPatterns(f), extraPatterns...)
	for _, s := range []string{"", "a", "skill.updated", "sha256:" + strings.Repeat("a", 64), "\x00", "\xff"} {
		f.Add(0, s)
	}
	f.Fuzz(func(t *testing.T, i int, s string) {
		p := pats[uint(i)%uint(len(pats))]
		m := classRun(p)
		if m == nil {
			return
		}
		if got, want := m.MatchString(s), regexp.MustCompile(p).MatchString(s); got != want {
			t.Fatalf("pattern %q on %q: scan %v, regexp %v", p, s, got, want)
		}
	})
}
