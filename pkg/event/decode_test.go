package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/trailkeep/trailkeep/internal/fixtures"
)

// Decode finds duplicate names itself, in the map it builds, instead of
// jsontext's name set. A name is the same after unescaping, whatever its
// escapes, and only within one object.
func TestDecodeDuplicateNames(t *testing.T) {
	for _, c := range []struct {
		name, in, field string // field "" means accepted
	}{
		{"plain", `{"a":1,"a":2}`, "/a"},
		{"escaped", `{"a":1,"\u0061":2}`, "/a"},
		{"escaped first", `{"\u0061":1,"a":2}`, "/a"},
		{"surrogate pair and literal", `{"\ud83d\ude00":1,"😀":2}`, "/😀"},
		{"same value", `{"a":1,"b":2,"a":1}`, "/a"},
		{"nested", `{"x":{"b":1,"b":1}}`, "/x/b"},
		{"in an array's object", `{"x":[{"b":1,"b":2}]}`, "/x/0/b"},
		{"after a nested object", `{"a":{"a":1},"a":2}`, "/a"},
		{"escaped slash in the pointer", `{"a/b":1,"a\/b":2}`, "/a~1b"},
		{"same name in sibling objects", `{"x":[{"b":1},{"b":1}]}`, ""},
		{"same name at two levels", `{"a":{"a":{"a":1}}}`, ""},
		{"canonically equivalent, different code points", `{"é":1,"e\u0301":2}`, ""},
		{"case differs", `{"a":1,"A":2}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in), Limits{})
			if c.field == "" {
				if err != nil {
					t.Fatalf("Decode(%s) = %v, want accepted", c.in, err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != 1 {
				t.Fatalf("Decode(%s) = %v, want one field error", c.in, err)
			}
			if fe := ve.Errors[0]; fe.Field != c.field || fe.Rule != RuleDuplicateKey {
				t.Fatalf("Decode(%s) = %s %s, want %s %s", c.in, fe.Field, fe.Rule, c.field, RuleDuplicateKey)
			}
		})
	}
}

// FuzzDecodeAgreesWithJSONText holds Decode to jsontext's strict reading (duplicate
// names and invalid UTF-8 rejected): whatever Decode accepts, jsontext accepts, and
// whatever jsontext refuses for a duplicate name, Decode refuses.
func FuzzDecodeAgreesWithJSONText(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(`{"a":1,"\u0061":2}`))
	f.Add([]byte(`{"x":[{"b":1},{"b":1,"b":2}]}`))
	for _, b := range fixtures.BadInputs(f) {
		if len(b.Body) < 4096 {
			f.Add(b.Body)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, derr := Decode(raw, Limits{})
		_, jerr := jsontext.NewDecoder(bytes.NewReader(raw)).ReadValue()
		if derr == nil && jerr != nil {
			t.Fatalf("Decode accepted what jsontext refuses (%v): %q", jerr, raw)
		}
		if errors.Is(jerr, jsontext.ErrDuplicateName) && derr == nil {
			t.Fatalf("Decode accepted a duplicate name: %q", raw)
		}
	})
}

// TestDecodeIsTheSameWhateverCameBefore: Decode reuses pooled decoders, so no
// state may pass from one document to the next, and it parses the caller's bytes
// in place, so it must leave them as they were. Good and bad documents are
// decoded in shuffled orders, each from two goroutines; every result must be the
// first one's, and an accepted document must be what encoding/json reads.
func TestDecodeIsTheSameWhateverCameBefore(t *testing.T) {
	inputs := [][]byte{[]byte(minimal), []byte(`{"a":1,"a":2}`), []byte(`{"x":[{"b":"\u00e9"}],"y":`), []byte(`{"a":"b"} x`)}
	for _, b := range fixtures.BadInputs(t) {
		inputs = append(inputs, b.Body)
	}
	for _, l := range fixtures.Lines(t, "claude-code/session-mcp-subagent.jsonl") {
		inputs = append(inputs, l)
	}
	outcome := func(raw []byte) string {
		doc, err := Decode(raw, Limits{})
		if err != nil {
			return "error: " + err.Error()
		}
		var want any
		if err := json.Unmarshal(raw, &want); err != nil || !reflect.DeepEqual(any(doc), want) {
			return fmt.Sprintf("accepted %v, but encoding/json reads %v (%v)", doc, want, err)
		}
		return "accepted"
	}
	first := make([]string, len(inputs))
	copies := make([][]byte, len(inputs))
	for i, in := range inputs {
		copies[i] = bytes.Clone(in)
		first[i] = outcome(in)
		if strings.HasPrefix(first[i], "accepted ") {
			t.Fatalf("input %d: %s", i, first[i])
		}
	}
	r := rand.New(rand.NewPCG(3, 5))
	var wg sync.WaitGroup
	for g := range 2 {
		order := r.Perm(len(inputs) * 20)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range order {
				i := k % len(inputs)
				if got := outcome(inputs[i]); got != first[i] {
					t.Errorf("goroutine %d, input %d: %s, first %s", g, i, got, first[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range inputs {
		if !bytes.Equal(inputs[i], copies[i]) {
			t.Fatalf("input %d changed by Decode", i)
		}
	}
}
