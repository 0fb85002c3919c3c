package event

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// The walks keep their position as tokens and build a pointer only for an error
// (path). These tests hold every pointer an error names to jsontext's own pointer
// of the faulty value (the oracle), for faults planted at random places in random
// documents whose keys need RFC 6901 escaping.

// faultTree is a random document as JSON text with one fault at a known place.
type faultTree struct {
	json string
	doc  map[string]any   // the same document built in Go (for checkText)
	at   jsontext.Pointer // where the fault is
}

// faultKeys need escaping ("~", "/"), look like indices, or are empty.
var faultKeys = []string{"a", "b~c", "d/e", "~1", "/", "", "0", "12", "ü", "x~0/y"}

// genFault builds a document of depth at most depth with the fault fault planted in
// one string (a value, or with inKey a key), chosen at random.
func genFault(r *rand.Rand, depth int, fault string, inKey bool) faultTree {
	var b strings.Builder
	var at jsontext.Pointer
	var gen, leaf func(p jsontext.Pointer, d int, plant bool) any
	// gen writes an object or an array at p; plant: the fault goes somewhere in it.
	gen = func(p jsontext.Pointer, d int, plant bool) any {
		n := 1 + r.IntN(3)
		plantAt := -1
		if plant {
			plantAt = r.IntN(n)
		}
		if p != "" && r.IntN(3) == 0 { // the document itself is an object
			b.WriteByte('[')
			arr := []any{}
			for i := range n {
				if i > 0 {
					b.WriteByte(',')
				}
				arr = append(arr, leaf(p.AppendToken(strconv.Itoa(i)), d, i == plantAt))
			}
			b.WriteByte(']')
			return arr
		}
		b.WriteByte('{')
		m := map[string]any{}
		for i := range n {
			k := faultKeys[r.IntN(len(faultKeys))]
			for _, used := m[k]; used; _, used = m[k] {
				k += "_"
			}
			if i > 0 {
				b.WriteByte(',')
			}
			if i == plantAt && inKey && (d == 0 || r.IntN(2) == 0) {
				k += fault
				at = p.AppendToken(k)
				fmt.Fprintf(&b, "%s:1", quote(k))
				m[k] = 1.0
				continue
			}
			fmt.Fprintf(&b, "%s:", quote(k))
			m[k] = leaf(p.AppendToken(k), d, i == plantAt)
		}
		b.WriteByte('}')
		return m
	}
	// leaf writes a value at p: deeper structure, the fault, or a clean string.
	leaf = func(p jsontext.Pointer, d int, plant bool) any {
		if d > 0 && (plant && r.IntN(2) == 0 || !plant && r.IntN(3) == 0) {
			return gen(p, d-1, plant)
		}
		switch {
		case !plant:
			b.WriteString(`"ok"`)
			return "ok"
		case inKey: // the planted key of a leaf's own object
			at = p.AppendToken("k" + fault)
			b.WriteString("{" + quote("k"+fault) + ":1}")
			return map[string]any{"k" + fault: 1.0}
		default:
			at = p
			b.WriteString(quote("v" + fault))
			return "v" + fault
		}
	}
	doc := gen("", depth, true).(map[string]any)
	return faultTree{json: b.String(), doc: doc, at: at}
}

// quote is s as a JSON string; invalid UTF-8 (only planted in Go documents, whose
// JSON text is not decoded) comes out replaced.
func quote(s string) string {
	v, _ := jsontext.AppendQuote(nil, s)
	return string(v)
}

// fieldOf is the pointer of the one FieldError err carries.
func fieldOf(t *testing.T, err error) (string, string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 1 {
		t.Fatalf("error %v: want a ValidationError of one field", err)
	}
	return ve.Errors[0].Field, ve.Errors[0].Rule
}

func TestErrorPointersNameThePlantedFault(t *testing.T) {
	lim := DefaultLimits.withDefaults()
	for seed, inKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("in key %v", inKey), func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(seed)))
			for i := range 3000 {
				ft := genFault(r, 4, "\x00", inKey)
				want := string(ft.at)
				_, err := Decode([]byte(ft.json), lim)
				if got, rule := fieldOf(t, err); got != want || rule != RuleNUL {
					t.Fatalf("case %d: Decode(%s): field %q rule %s, want %q %s", i, ft.json, got, rule, want, RuleNUL)
				}
				err = checkText(ft.doc, nil, 0, lim)
				if got, rule := fieldOf(t, err); got != want || rule != RuleNUL {
					t.Fatalf("case %d: checkText(%s): field %q rule %s, want %q %s", i, ft.json, got, rule, want, RuleNUL)
				}
			}
		})
	}
	t.Run("invalid UTF-8 in a Go document", func(t *testing.T) {
		r := rand.New(rand.NewPCG(8, 8))
		for i := range 3000 {
			ft := genFault(r, 4, "\xff", r.IntN(2) == 0)
			// jsontext's pointer holds U+FFFD for the invalid byte; the error keeps it.
			got, rule := fieldOf(t, checkText(ft.doc, nil, 0, lim))
			if strings.ToValidUTF8(got, "\uFFFD") != string(ft.at) || rule != RuleUTF8 {
				t.Fatalf("case %d: checkText: field %q rule %s, want %q %s", i, got, rule, ft.at, RuleUTF8)
			}
		}
	})
}

func TestErrorPointersOfNumbersAndDepth(t *testing.T) {
	lim := DefaultLimits.withDefaults()
	for _, tc := range []struct {
		name, json, field, rule string
	}{
		{"integer beyond 2^53 in an array", `{"a~b":[1,{"c/d":[0,9007199254740993]}]}`, "/a~0b/1/c~1d/1", RuleNumber},
		{"double out of range", `{"x":{"":{"~":1e400}}}`, "/x//~0", RuleNumber},
		{"underflow to zero", `{"0":[[1e-400]]}`, "/0/0/0", RuleNumber},
		{"syntax error inside a member (jsontext's pointer)", `{"a":{"b/":[1,]}}`, "/a/b~1", RuleSyntax},
		{"NUL beside escaped keys", `{"~/":{"~0":["a","\u0000"]}}`, "/~0~1/~00/1", RuleNUL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.json), lim)
			if got, rule := fieldOf(t, err); got != tc.field || rule != tc.rule {
				t.Fatalf("field %q rule %s, want %q %s", got, rule, tc.field, tc.rule)
			}
		})
	}
	t.Run("nesting too deep", func(t *testing.T) {
		doc := `"x"`
		want := jsontext.Pointer("")
		for i := range lim.MaxDepth + 1 {
			doc = `{"k/` + strconv.Itoa(i) + `":` + doc + `}`
		}
		for i := lim.MaxDepth; i >= 1; i-- {
			want = want.AppendToken("k/" + strconv.Itoa(i))
		}
		_, err := Decode([]byte(doc), lim)
		if got, rule := fieldOf(t, err); got != string(want) || rule != RuleMaxDepth {
			t.Fatalf("field %q rule %s, want %q %s", got, rule, want, RuleMaxDepth)
		}
	})
}

func TestPathStringIsRFC6901(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 10000 {
		var p path
		want := jsontext.Pointer("")
		for range r.IntN(6) {
			if r.IntN(3) == 0 {
				i := r.IntN(1000)
				p, want = p.elem(i), want.AppendToken(strconv.Itoa(i))
				continue
			}
			k := faultKeys[r.IntN(len(faultKeys))] + faultKeys[r.IntN(len(faultKeys))]
			p, want = p.key(k), want.AppendToken(k)
		}
		if got := p.String(); got != string(want) {
			t.Fatalf("path %v: %q, want %q", p, got, want)
		}
	}
}
