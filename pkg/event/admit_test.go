package event

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomCanonical builds a random event-shaped document (schema_version, id,
// tenant, then random members: ASCII names, strings over an alphabet of escapes and
// multi-byte characters, integers, literals, nesting) and returns its RFC 8785
// bytes; excluded reports whether it holds a character admitFast leaves to the full
// check (DEL, U+2028, U+2029).
func randomCanonical(rng *rand.Rand) (raw []byte, excluded bool) {
	alphabet := []string{"a", "Z", "0", " ", "/", "\"", "\\", "\n", "\t", "\b", "\f", "\r", "\x00", "\x01", "\x1f", "é", "€", "😀", "\x7f", "\u2028", "\u2029"}
	var str func(n int) string
	str = func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	names := []string{"a", "b", "action", "actor", "z", "A", "_x", "id2", "n-1", "k.k", "metadata", "~"}
	var val func(depth int) any
	val = func(depth int) any {
		switch k := rng.IntN(8); {
		case k == 0 && depth < 4:
			m := map[string]any{}
			for range rng.IntN(4) {
				m[names[rng.IntN(len(names))]] = val(depth + 1)
			}
			return m
		case k == 1 && depth < 4:
			a := make([]any, rng.IntN(4))
			for i := range a {
				a[i] = val(depth + 1)
			}
			return a
		case k == 2:
			return float64(rng.Int64N(2_000_000_000_000_000) - 1_000_000_000_000_000) // exact: below 2^53
		case k == 3:
			return []any{true, false, nil}[rng.IntN(3)]
		default:
			return str(rng.IntN(6))
		}
	}
	doc := map[string]any{"schema_version": float64(SchemaVersion), "id": "ev-" + str(1), "tenant": "acme"}
	for range 1 + rng.IntN(6) {
		doc[names[rng.IntN(len(names))]] = val(0)
	}
	raw, err := canonicalJSON(doc)
	if err != nil {
		panic(err)
	}
	excluded = bytes.IndexByte(raw, 0x7f) >= 0 || bytes.Contains(raw, []byte("\u2028")) || bytes.Contains(raw, []byte("\u2029"))
	return raw, excluded
}

// TestAdmitFastAcceptsCanonicalEvents: what ingest writes takes the fast path
// (otherwise it saves nothing), and the full check agrees with every acceptance.
func TestAdmitFastAcceptsCanonicalEvents(t *testing.T) {
	_, canon, err := prepare(bench1KiB)
	if err != nil {
		t.Fatal(err)
	}
	if !admitFast(canon) {
		t.Fatalf("the fast path refuses an event ingest wrote:\n%s", canon)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 5000 {
		raw, excluded := randomCanonical(rng)
		if err := admitFull(raw); err != nil {
			t.Fatalf("trial %d: the full check refuses canonical bytes (%v):\n%q", i, err, raw)
		}
		if fast := admitFast(raw); fast == excluded {
			t.Fatalf("trial %d: admitFast = %v on canonical bytes (excluded characters: %v):\n%q", i, fast, excluded, raw)
		}
	}
}

// TestAdmitFastNeverAcceptsWhatTheFullCheckRefuses mutates canonical events (bytes
// replaced, snippets inserted, spans cut) and requires that every mutant the fast
// path accepts passes the full check too. Mutants that stay canonical (a digit or a
// letter changed) must be among those accepted, so the property is not vacuous.
func TestAdmitFastNeverAcceptsWhatTheFullCheckRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	accepted := 0
	for i := range 40000 {
		base, _ := randomCanonical(rng)
		m := mutateJSON(rng, base)
		if admitFast(m) {
			accepted++
			if err := admitFull(m); err != nil {
				t.Fatalf("trial %d: the fast path accepts what the full check refuses (%v):\n%q", i, err, m)
			}
		}
	}
	if accepted < 1000 {
		t.Fatalf("only %d of 40000 mutants accepted: the mutations no longer reach the fast path's acceptance", accepted)
	}
	for _, raw := range []string{
		`{"id":"x","schema_version":1,"tenant":"t"}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":-0}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":1.0}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":1e2}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":01}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":"\/"}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":"\u0041"}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":"\u000a"}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":"\u001F"}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":"` + "\xff" + `"}`,
		`{"id":"x","schema_version":1,"tenant":"t","zb":1,"za":2}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":1,"z":1}`,
		`{"id":"x","schema_version":1,"tenant":"t" }`,
		`{"id":"x","schema_version":2,"tenant":"t"}`,
		`{"id":"","schema_version":1,"tenant":"t"}`,
		`{"id":"x","schema_version":1}`,
		`{"id":1,"schema_version":1,"tenant":"t"}`,
		`{"id":"x","schema_version":"1","tenant":"t"}`,
		`{"id":"x","schema_version":1,"tenant":"t"}x`,
		`{"id":"x","schema_version":1,"tenant":"t","z":[1,]}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":tru}`,
		`{"id":"x","schema_version":1,"tenant":"t","z":1234567890123456}`,
	} {
		want := admitFull([]byte(raw)) == nil
		if got := admitFast([]byte(raw)); got && !want {
			t.Errorf("admitFast accepts %q, which the full check refuses", raw)
		}
		if raw == `{"id":"x","schema_version":1,"tenant":"t"}` && !admitFast([]byte(raw)) {
			t.Errorf("admitFast refuses the minimal canonical event %q", raw)
		}
	}
}

// FuzzAdmitFast: whatever the fast path accepts, the full check accepts.
func FuzzAdmitFast(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		raw, _ := randomCanonical(rng)
		f.Add(raw)
	}
	_, canon, err := prepare(bench1KiB)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(canon)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if admitFast(raw) {
			if err := admitFull(raw); err != nil {
				t.Fatalf("the fast path accepts what the full check refuses (%v): %q", err, raw)
			}
		}
	})
}

var mutationSnippets = []string{
	" ", "\"", "\\", "0", "1", "9", "-", ".", "e", "E", "{", "}", "[", "]", ",", ":", "a", "A", "~",
	"\x7f", "\x00", "\x1f", "\xc3", "\xe2\x80\xa8", "\xff", `\u00e9`, `\u001f`, `\u000a`, `\u0008`, `\/`, `\n`,
	`1.0`, `-0`, `1e5`, `"a":1,`, `"zz":"x",`, `null`, `true`, `[]`, `{}`, "é",
}

// mutateJSON applies one to three random edits to a copy of b.
func mutateJSON(rng *rand.Rand, b []byte) []byte {
	m := bytes.Clone(b)
	for range 1 + rng.IntN(3) {
		if len(m) == 0 {
			return m
		}
		at := rng.IntN(len(m))
		switch rng.IntN(4) {
		case 0: // replace a byte
			m[at] = mutationSnippets[rng.IntN(len(mutationSnippets))][0]
		case 1: // insert a snippet
			s := mutationSnippets[rng.IntN(len(mutationSnippets))]
			m = append(m[:at], append([]byte(s), m[at:]...)...)
		case 2: // cut a span
			end := min(len(m), at+1+rng.IntN(8))
			m = append(m[:at], m[end:]...)
		default: // change a digit or a lower-case letter, which usually stays canonical
			for j := at; j < len(m); j++ {
				if c := m[j]; '0' <= c && c <= '9' {
					m[j] = byte('0' + rng.IntN(10))
					break
				} else if 'a' <= c && c <= 'z' {
					m[j] = byte('a' + rng.IntN(26))
					break
				}
			}
		}
	}
	return m
}

func ExampleAdmit() {
	fmt.Println(Admit([]byte(`{"id":"ev1","schema_version":1,"tenant":"acme"}`), DefaultLimits))
	fmt.Println(Admit([]byte(`{"id":"ev1", "schema_version":1,"tenant":"acme"}`), DefaultLimits))
	// Output:
	// <nil>
	// event is valid but its bytes are not the RFC 8785 canonical form
}
