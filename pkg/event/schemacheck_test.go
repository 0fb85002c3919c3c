package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/fixtures"
)

// TestEventSchemaHasAFastCheck: the event schema compiles to a schemacheck.Check.
// Without one every event pays the library's validator (a fifth of ingest's CPU);
// a schema change that needs a new keyword must implement it in schemacheck.
func TestEventSchemaHasAFastCheck(t *testing.T) {
	c, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	if c.valid == nil {
		t.Fatalf("the event schema has no fast check: %v", c.validErr)
	}
}

// TestFastCheckAgreesOnMutatedEvents is the differential oracle for the event
// schema: valid events, each mutated at a random place with a value drawn from
// the schema's own edges (lengths at and past every bound, enum members,
// patterns' near misses, wrong types), must be accepted by the fast check
// exactly when the library's validator accepts them.
func TestFastCheckAgreesOnMutatedEvents(t *testing.T) {
	c, err := loadSchema()
	if err != nil || c.valid == nil {
		t.Fatalf("no fast check: %v %v", err, c.validErr)
	}
	bases := stampedEvents(t)
	pool, sizes := edgeValues(c.doc)
	r := rand.New(rand.NewPCG(7, 11))
	accepted, refused := 0, 0
	for i := range 20000 {
		doc := deepCopy(bases[i%len(bases)]).(map[string]any)
		for range 1 + r.IntN(2) {
			mutateEvent(r, doc, pool, sizes)
		}
		want := c.schema.Validate(doc) == nil
		if got := c.valid(doc); got != want {
			b, _ := json.Marshal(doc)
			t.Fatalf("fast check says %v, library %v, for %s", got, want, b)
		}
		if want {
			accepted++
		} else {
			refused++
		}
	}
	// Both outcomes must be common, or the oracle compares little.
	if accepted < 2000 || refused < 2000 {
		t.Fatalf("%d accepted and %d refused mutants: the mutations do not reach both sides", accepted, refused)
	}
}

// TestSchemaValidEventsDecodeTyped holds the schema to the Event type: every
// document the schema accepts must come out of CanonicalBytes as bytes Unmarshal
// decodes, since ingest no longer decodes what it writes (readers do), and with the
// same bytes Canonicalize returns. The mutants are TestFastCheckAgreesOnMutatedEvents'
// (values at and past every bound of the schema, at random places).
func TestSchemaValidEventsDecodeTyped(t *testing.T) {
	c, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	bases := stampedEvents(t)
	pool, sizes := edgeValues(c.doc)
	r := rand.New(rand.NewPCG(13, 17))
	accepted := 0
	for i := range 20000 {
		doc := deepCopy(bases[i%len(bases)]).(map[string]any)
		for range 1 + r.IntN(2) {
			mutateEvent(r, doc, pool, sizes)
		}
		if c.schema.Validate(doc) != nil {
			continue
		}
		accepted++
		again := deepCopy(doc).(map[string]any)
		canon, err := CanonicalBytes(doc, Limits{})
		if err != nil {
			continue // beyond a limit the schema does not state (size, depth)
		}
		if _, err := Unmarshal(canon); err != nil {
			t.Fatalf("the schema accepts an event the Event type cannot decode: %v\n%s", err, canon)
		}
		_, canon2, err := Canonicalize(again, Limits{})
		if err != nil || !bytes.Equal(canon, canon2) {
			t.Fatalf("Canonicalize disagrees with CanonicalBytes (%v):\n%s\n%s", err, canon, canon2)
		}
	}
	if accepted < 2000 {
		t.Fatalf("only %d mutants accepted by the schema: the test decodes too few", accepted)
	}
}

// FuzzFastCheck compares the fast check with the library on whatever decodes, and
// holds every document the schema accepts to the Event type.
func FuzzFastCheck(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add(bench1KiB)
	for _, l := range fixtures.Lines(f, "registry/canonical-events.jsonl") {
		f.Add(l)
	}
	c, err := loadSchema()
	if err != nil || c.valid == nil {
		f.Fatalf("no fast check: %v %v", err, c.validErr)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := Decode(raw, Limits{})
		if err != nil {
			return
		}
		for _, stamped := range []bool{false, true} {
			if stamped && testStamp.Apply(doc) != nil {
				return
			}
			got, want := c.valid(doc), c.schema.Validate(doc) == nil
			if got != want {
				t.Fatalf("fast check says %v, library %v, for %s (stamped %v)", got, want, raw, stamped)
			}
			if !want {
				continue
			}
			canon, err := CanonicalBytes(deepCopy(doc).(map[string]any), Limits{})
			if err != nil {
				continue // beyond a limit the schema does not state (size, depth)
			}
			if _, err := Unmarshal(canon); err != nil {
				t.Fatalf("the schema accepts an event the Event type cannot decode: %v\n%s", err, canon)
			}
		}
	})
}

// stampedEvents are valid, server-stamped documents of every fixture shape.
func stampedEvents(t *testing.T) []map[string]any {
	t.Helper()
	raws := [][]byte{[]byte(minimal), bench1KiB}
	raws = append(raws, fixtures.Lines(t, "registry/canonical-events.jsonl")...)
	var out []map[string]any
	for _, raw := range raws {
		doc, err := Decode(raw, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if testStamp.Apply(doc) != nil || Validate(doc) != nil {
			continue // a fixture that is not a v1 event before mapping
		}
		out = append(out, doc)
	}
	if len(out) < 3 {
		t.Fatalf("only %d valid base events", len(out))
	}
	return out
}

// edgeValues collects from the schema document the values at its edges: for
// every length bound a string of that many characters, one fewer and one more
// (ASCII and multi-byte), every enum and const member, and generic near misses;
// and the sizes at every bound, for resizing arrays and objects in place.
func edgeValues(schema any) (pool []any, sizes []int) {
	pool = []any{nil, true, false, 0.0, -1.0, 1.0, 1.5, 9007199254740991.0, 9007199254740992.0, 1e300,
		"", " ", "a", "A", "user", "sarah@acme.example", "not-an-email@", "a\x01b", "tab\there", "line\nbreak", "\x7f",
		"6f1c2a9e-3b7d-4c1e-9a55-0d2e8b7f4a10", "6F1C2A9E-3B7D-4C1E-9A55-0D2E8B7F4A10", "0194a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		"2026-01-15T09:23:00.5Z", "2026-02-30T00:00:00Z", "2026-01-15 09:23:00", "sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("A", 64),
		strings.Repeat("f", 64), strings.Repeat("f", 63), "slug-ok.1", "Slug", "-slug", "a.b", "x:y", "_x",
		[]any{}, []any{"a"}, []any{"a", "a"}, []any{"SOC2", "HIPAA"}, []any{map[string]any{}}, []any{1.0, 2.0},
		map[string]any{}, map[string]any{"k": "v"}, map[string]any{"type": "team", "id": "t"}, map[string]any{"Bad Key": "v"}}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch k {
				case "maxLength", "minLength":
					for _, l := range around(x) {
						pool = append(pool, strings.Repeat("a", l), strings.Repeat("é", l))
					}
				case "maxItems", "minItems", "maxProperties", "minProperties":
					for _, l := range around(x) {
						sizes = append(sizes, l)
						pool = append(pool, items(l), props(l))
					}
				case "enum":
					for _, e := range x.([]any) {
						pool = append(pool, schemaNumber(e))
					}
				case "const":
					pool = append(pool, schemaNumber(x))
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(schema)
	slices.Sort(sizes)
	return pool, slices.Compact(sizes)
}

// around is a bound of the schema document, one less and one more.
func around(bound any) []int {
	l, err := strconv.Atoi(fmt.Sprint(bound))
	if err != nil {
		return nil
	}
	return []int{max(l-1, 0), l, l + 1}
}

// schemaNumber turns the schema document's json.Number into the float64 a decoded
// event holds.
func schemaNumber(v any) any {
	if n, ok := v.(interface{ Float64() (float64, error) }); ok {
		f, _ := n.Float64()
		return f
	}
	return v
}

func items(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprint("item-", i)
	}
	return out
}

func props(n int) map[string]any {
	out := make(map[string]any, n)
	for i := range n {
		out[fmt.Sprint("k", i)] = "v"
	}
	return out
}

// mutateEvent changes doc at one random place: a value replaced from pool, a key
// removed, a key added (a known field name elsewhere in the schema, or not), or
// an array or object grown or shrunk to one of sizes.
func mutateEvent(r *rand.Rand, doc map[string]any, pool []any, sizes []int) {
	var objs []map[string]any
	var arrs [][]any
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			objs = append(objs, v)
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(v[k])
			}
		case []any:
			arrs = append(arrs, v)
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	pick := func() any { return deepCopy(pool[r.IntN(len(pool))]) }
	if r.IntN(3) == 0 {
		resize(r, objs, arrs, sizes[r.IntN(len(sizes))])
		return
	}
	if len(arrs) > 0 && r.IntN(5) == 0 {
		a := arrs[r.IntN(len(arrs))]
		if len(a) > 1 && r.IntN(2) == 0 {
			a[r.IntN(len(a))] = deepCopy(a[r.IntN(len(a))]) // perhaps a duplicate
		} else if len(a) > 0 {
			a[r.IntN(len(a))] = pick()
		}
		return
	}
	o := objs[r.IntN(len(objs))]
	keys := slices.Sorted(maps.Keys(o))
	switch op := r.IntN(10); {
	case op < 3 && len(keys) > 0:
		o[keys[r.IntN(len(keys))]] = pick()
	case op < 6 && len(keys) > 0: // a value of the same JSON type, to reach its bounds
		k := keys[r.IntN(len(keys))]
		var same []any
		for _, v := range pool {
			if fmt.Sprintf("%T", v) == fmt.Sprintf("%T", o[k]) {
				same = append(same, v)
			}
		}
		if len(same) > 0 {
			o[k] = deepCopy(same[r.IntN(len(same))])
		}
	case op < 8 && len(keys) > 0:
		delete(o, keys[r.IntN(len(keys))])
	default:
		names := []string{"id", "type", "name", "email", "status", "decision", "unknown_field", "tool", "version", "Bad Key", "k0"}
		o[names[r.IntN(len(names))]] = pick()
	}
}

// resize makes a random array or object of the document n long: an array by
// dropping items or appending variants of its first (distinct, so uniqueItems
// still holds), an object by dropping keys or adding k<i> keys with copies of
// one of its values.
func resize(r *rand.Rand, objs []map[string]any, arrs [][]any, n int) {
	if len(arrs) > 0 && r.IntN(2) == 0 {
		a := arrs[r.IntN(len(arrs))]
		if len(a) == 0 {
			return
		}
		// Grow the parent's slice in place: find it through its first item.
		grown := a[:min(len(a), n)]
		for i := len(grown); i < n; i++ {
			grown = append(grown, variant(a[0], i))
		}
		for _, o := range objs {
			for k, v := range o {
				if v, ok := v.([]any); ok && len(v) > 0 && &v[0] == &a[0] {
					o[k] = grown
				}
			}
		}
		return
	}
	o := objs[r.IntN(len(objs))]
	keys := slices.Sorted(maps.Keys(o))
	if len(keys) == 0 {
		return
	}
	for i, k := range keys {
		if i >= n {
			delete(o, k)
		}
	}
	like := o[keys[0]]
	for i := 0; len(o) < n; i++ {
		o[fmt.Sprint("k", i)] = deepCopy(like)
	}
}

// variant is a copy of v whose strings end in -i.
func variant(v any, i int) any {
	switch v := v.(type) {
	case string:
		return fmt.Sprint(v, "-", i)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = variant(x, i)
		}
		return out
	}
	return deepCopy(v)
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}
