package event

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// libraryJCS is the reference RFC 8785 implementation (json/v2 +
// jsontext.Value.Canonicalize) that appendJCS must match byte for byte.
func libraryJCS(t testing.TB, doc any) []byte {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	v := jsontext.Value(b)
	if err := v.Canonicalize(); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJCSMatchesLibrary(t *testing.T) {
	docs := []any{
		map[string]any{"\ue000": 1.0, "\U0001F600": 2.0, "a": "x\u2028y\u007f\"\\\b\f\n\r\t\x01", "": nil, "b": []any{true, false, -0.0}},
		map[string]any{"n": []any{1e21, 1e-7, 9.999999999999997e+22, 5e-324, 123456789.125, -1.5e-10, 1e20, 1e-6}},
	}
	_, canon, err := prepare(bench1KiB)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := Decode(canon, Limits{})
	docs = append(docs, doc)
	for i, d := range docs {
		got, err := canonicalJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		if want := libraryJCS(t, d); !bytes.Equal(got, want) {
			t.Errorf("doc %d:\n got %q\nwant %q", i, got, want)
		}
	}
}

// FuzzJCS compares the single-pass encoder with the library on arbitrary
// keys, strings and doubles.
func FuzzJCS(f *testing.F) {
	f.Add("a", "\U0001F600", "\ue000", 1.5, uint64(0))
	f.Add("\x7f", "\u0080", "", 1e21, uint64(1))
	f.Fuzz(func(t *testing.T, k1, k2, s string, x float64, bits uint64) {
		if !utf8.ValidString(k1) || !utf8.ValidString(k2) || !utf8.ValidString(s) {
			return // Decode never produces invalid UTF-8
		}
		y := math.Float64frombits(bits)
		doc := map[string]any{k1: s, k2: []any{x, s, map[string]any{s: k1}}, "y": nil}
		if !math.IsNaN(y) && !math.IsInf(y, 0) {
			doc["y"] = y
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		got, err := canonicalJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		if want := libraryJCS(t, doc); !bytes.Equal(got, want) {
			t.Fatalf("\n got %q\nwant %q", got, want)
		}
	})
}

// TestCompareUTF16MatchesTheRuneWalk holds compareUTF16's byte shortcuts to the
// rune-by-rune comparison on pairs that share prefixes of every kind: ASCII,
// multi-byte runes, runes on both sides of the U+E000/U+10000 order flip, and
// bytes that are not UTF-8 (truncated and stray continuation bytes). For valid
// UTF-8 it also holds both to the order of the strings' UTF-16 code units.
func TestCompareUTF16MatchesTheRuneWalk(t *testing.T) {
	pieces := []string{"", "a", "b", "_", "~", "\x7f", "é", "\u20ac", "\ue000", "\uffff", "\U0001f600", "\U00010000",
		"\xe2", "\xe2\x82", "\x82", "\xff", "\xc3", "\xf0\x9f"}
	r := rand.New(rand.NewPCG(7, 11))
	word := func() string {
		var s strings.Builder
		for range r.IntN(4) {
			s.WriteString(pieces[r.IntN(len(pieces))])
		}
		return s.String()
	}
	sign := func(x int) int { return min(max(x, -1), 1) }
	units := func(s string) []uint16 { return utf16.Encode([]rune(s)) }
	for range 200000 {
		prefix := word()
		a, b := prefix+word(), prefix+word()
		if r.IntN(4) == 0 {
			b = a + word()
		}
		got, want := sign(compareUTF16(a, b)), sign(compareRunes(a, b))
		if got != want {
			t.Fatalf("compareUTF16(%q, %q) = %d, the rune walk says %d", a, b, got, want)
		}
		if utf8.ValidString(a) && utf8.ValidString(b) {
			if oracle := slices.Compare(units(a), units(b)); got != oracle {
				t.Fatalf("compareUTF16(%q, %q) = %d, UTF-16 order is %d", a, b, got, oracle)
			}
		}
	}
}
