package redact

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/secretcorpus"
)

// TestNeedsHoldsForEveryMatch is the oracle of the class derivation: for small
// expressions of every syntax form it reads, every string over a small alphabet (with
// case pairs, a multi-byte letter, a fold-only letter and an invalid byte) that the
// expression matches holds a byte of each class needs returns.
func TestNeedsHoldsForEveryMatch(t *testing.T) {
	alphabet := []string{"a", "A", "b", "k", "=", ":", "\n", "é", "\u212a", "\xff"}
	var strs []string
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		strs = append(strs, prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			grow(prefix+c, n-1)
		}
	}
	grow("", 4)
	for _, expr := range []string{
		`a`, `ab`, `(?i)ab`, `(?i)k`, `[a-b]`, `[^a]`, `(?i)[a]`, `[é]`, `\x{212a}`, `a+`, `a*b`, `a?b`, `a{2,3}`, `a{0,2}b`,
		`(a|b)`, `(?:a=|:)`, `(?:a|)b`, `(?:ab|ba)`, `a|b=`, `(a)(b)`, `(?i)(?:k=|b:)`, `.`, `.b`, `^a$`, `\ba\b`, `(?s).a`,
		`[\w]{2}`, `\s`, `[\s=]{1,3}`, `(?:a|b)+=`, `(?i)[a-z]{2}:`, `(?-i:A)`, `(?i)(?-i:A)b`, `\pL`, `[^\x00-\x7f]`, `\x{fffd}`,
	} {
		t.Run(expr, func(t *testing.T) {
			re := regexp.MustCompile(expr)
			p, err := syntax.Parse(expr, syntax.Perl)
			if err != nil {
				t.Fatal(err)
			}
			f := ruleFilter{need: needs(p)}
			matched := 0
			for _, s := range strs {
				if re.MatchString(s) {
					matched++
					if !f.mayMatch(bytesOf(s)) {
						t.Fatalf("%q matches but the filter rules it out", s)
					}
				}
			}
			if matched == 0 {
				t.Fatalf("no string of the alphabet matches; the case tests nothing")
			}
		})
	}
}

// TestNeedsRulesOutWhatItShould: the derivation is not empty where it matters, so a
// keyword alone does not send a string through a rule that needs more.
func TestNeedsRulesOutWhatItShould(t *testing.T) {
	for _, c := range []struct{ expr, s string }{
		{`(?i)(?:key|token)\s*(?:=|:)\s*\w{8,}`, "api key rotation notes"},
		{`(?i)ab`, "A c"},
		{`(?:x|y)z`, "xy"},
		{`a{1,3}b`, "aaa"},
	} {
		p, err := syntax.Parse(c.expr, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if (ruleFilter{need: needs(p)}).mayMatch(bytesOf(c.s)) {
			t.Errorf("%s: the filter lets %q through", c.expr, c.s)
		}
	}
}

// TestEveryRuleFilterPassesItsSecrets runs every gitleaks rule's filter on the secret
// corpus in several contexts: where the rule's expression matches, the filter passes.
func TestEveryRuleFilterPassesItsSecrets(t *testing.T) {
	r := newRedactor(t)
	checked := 0
	for _, s := range secretcorpus.Read(t) {
		for _, ctx := range []string{"%s", "run with %s now", `{"k":"%s"}`, "x=%s\nnext line", "TOKEN=%s"} {
			in := strings.Replace(ctx, "%s", s.Text, 1)
			if _, rules := r.String(in); len(rules) > 0 && !r.mayMatchRaw(in) && !hasSegments(in) {
				t.Errorf("%s in %q: the detector finds %v, the pre-filter drops the string", s.Rule, ctx, rules)
			}
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("only %d cases", checked)
	}
}

// TestPathOnlyRulesPassNothing: gitleaks' path-only rules (pkcs12-file) report a file
// by its name; a string has none, so they must not make every string scanned.
func TestPathOnlyRulesPassNothing(t *testing.T) {
	r := newRedactor(t)
	for _, s := range []string{"payments", "skill.updated", "user0@acme.example"} {
		if r.mayMatchRaw(s) {
			t.Errorf("%q could match a rule raw, per the pre-filter", s)
		}
	}
}

// FuzzPrefilter: whatever the string, when the detector finds a secret in it alone,
// the pre-filter keeps it.
func FuzzPrefilter(f *testing.F) {
	r := newRedactor(f)
	for _, s := range secretcorpus.Read(f) {
		f.Add(s.Text)
		f.Add("export TOKEN=" + s.Text)
	}
	f.Add("api-conventions-12")
	f.Fuzz(func(t *testing.T, s string) {
		if _, rules := r.String(s); len(rules) > 0 && !r.mayMatchRaw(s) && !hasSegments(s) {
			t.Fatalf("the detector finds %v in %q, the pre-filter drops it", rules, s)
		}
	})
}

// The keyword walks lower-case into a stack buffer and read the trie's pattern
// numbers instead of strings.ToLower and the trie's match list. These oracles are the
// previous code: the same answers on the secret corpus in context, on every keyword
// with its case changed, and on random strings with Unicode case pairs (U+212A lowers
// to "k", U+0130 to two bytes) and long ones past the stack buffer.
func mayMatchRawByMatches(r *Redactor, s string) bool {
	present := bytesOf(s)
	for _, f := range r.pre.keywordless {
		if f.mayMatch(present) {
			return true
		}
	}
	for _, m := range r.pre.keywords.MatchString(strings.ToLower(s)) {
		for _, f := range r.pre.byKeyword[m.MatchString()] {
			if f.mayMatch(present) {
				return true
			}
		}
	}
	return false
}

func TestKeywordWalkMatchesTheMatchList(t *testing.T) {
	r := newRedactor(t)
	var cases []string
	for _, s := range secretcorpus.Read(t) {
		cases = append(cases, s.Text, "run with "+s.Text+" now", "TOKEN="+s.Text)
	}
	for k := range r.pre.byKeyword {
		cases = append(cases, k, strings.ToUpper(k), "x "+k+"=", strings.ToUpper(k)+":"+strings.Repeat("A", 40),
			strings.ReplaceAll(k, "k", "\u212a")) // KELVIN SIGN, whose lower case is "k"
	}
	alphabet := []string{"a", "K", "k", "\u212a", "\u0130", "=", ":", "-", "_", " ", "0", "9", "Z", "é", "\xff", "api", "KEY", "token", "ghp_", "AKIA", "sk-", "xox"}
	rng := rand.New(rand.NewPCG(5, 9))
	for range 20000 {
		var b strings.Builder
		for range 1 + rng.IntN(40) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		if rng.IntN(20) == 0 {
			b.WriteString(strings.Repeat("q", 300) + "Token=" + strings.Repeat("Ab9", 20))
		}
		cases = append(cases, b.String())
	}
	var may, keyed int
	for _, s := range cases {
		want := mayMatchRawByMatches(r, s)
		if got := r.mayMatchRaw(s); got != want {
			t.Fatalf("mayMatchRaw(%q) = %v, the match list says %v", s, got, want)
		}
		wantKey := r.pre.keywords.MatchFirstString(strings.ToLower(s)) != nil
		if got := r.pre.hasKeyword(s); got != wantKey {
			t.Fatalf("hasKeyword(%q) = %v, the match list says %v", s, got, wantKey)
		}
		may += b2i(want)
		keyed += b2i(wantKey)
	}
	if may < 1000 || keyed < 1000 || len(cases)-may < 1000 {
		t.Fatalf("of %d cases %d may match and %d hold a keyword: too few of one side", len(cases), may, keyed)
	}
}

// TestSkipValueMatchesTheExpressions: the length guard in front of skipValue's
// expressions changes no answer.
func TestSkipValueMatchesTheExpressions(t *testing.T) {
	hex := "0123456789abcdef"
	rng := rand.New(rand.NewPCG(2, 4))
	var cases []string
	for n := range 80 {
		var b strings.Builder
		for range n {
			b.WriteByte(hex[rng.IntN(len(hex))])
		}
		s := b.String()
		cases = append(cases, s, "sha256:"+s, strings.ToUpper(s))
		if n == 32 {
			cases = append(cases, s[:8]+"-"+s[8:12]+"-"+s[12:16]+"-"+s[16:20]+"-"+s[20:], s[:8]+"-"+s[8:12]+"-"+s[12:16]+"-"+s[16:20]+"-"+s[20:31]+"g")
		}
	}
	skipped := 0
	for _, s := range cases {
		want := digestLike.MatchString(s) || uuidLike.MatchString(s)
		if got := skipValue(s); got != want {
			t.Fatalf("skipValue(%q) = %v, the expressions say %v", s, got, want)
		}
		skipped += b2i(want)
	}
	if skipped < 3 {
		t.Fatalf("only %d of the cases are skipped: the test compares little", skipped)
	}
}
