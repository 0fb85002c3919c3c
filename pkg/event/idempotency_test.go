package event

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestIdempotencyKeyIsInjective draws random tuples from an alphabet made of every
// separator a key encoding might use (and JSON's own metacharacters), and checks that
// no two different tuples share a key.
func TestIdempotencyKeyIsInjective(t *testing.T) {
	alphabet := []string{"", "a", ":", "#", "/", "\x00", "\"", "\\", ",", "[", "]", "\n", "é", "\\u0000", "sha256:", "\",\""}
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]string{}
	for range 200000 {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			var b strings.Builder
			for range rng.IntN(4) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			parts[i] = b.String()
		}
		key := IdempotencyKey(parts...)
		id := strings.Join(parts, "\x1f") + "|" + string(rune('0'+n))
		if prev, ok := seen[key]; ok && prev != id {
			t.Fatalf("tuples %q and %q share key %q", prev, id, key)
		}
		seen[key] = id
	}
}

func TestIdempotencyKeyCases(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []string
	}{
		{"separator moved between parts (cloudevents)", []string{"cloudevents", "urn:coll#x", "y"}, []string{"cloudevents", "urn:coll", "x#y"}},
		{"separator moved between parts (hooks)", []string{"claude_code", "s:PreToolUse", "t1"}, []string{"claude_code", "s", "PreToolUse:t1"}},
		{"source kind differs", []string{"cloudevents", "a", "b"}, []string{"claude_code", "a", "b"}},
		{"long keys sharing a 256-byte prefix", []string{"k", strings.Repeat("x", 300) + "1"}, []string{"k", strings.Repeat("x", 300) + "2"}},
		{"part count differs", []string{"k", "a", ""}, []string{"k", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ka, kb := IdempotencyKey(tc.a...), IdempotencyKey(tc.b...)
			if ka == kb {
				t.Fatalf("%q and %q share key %q", tc.a, tc.b, ka)
			}
			for _, k := range []string{ka, kb} {
				if len(k) > MaxIdempotencyKey || strings.ContainsAny(k, "\x00\n") {
					t.Errorf("key %q is not a valid stored identifier", k)
				}
			}
		})
	}
}
