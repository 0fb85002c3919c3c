package schemacheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileBoth compiles a schema text with the library (formats asserted, as the
// event schema is) and into a Check.
func compileBoth(t *testing.T, text string) (*jsonschema.Schema, Check, error) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		t.Fatalf("schema %s: %v", text, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("mem://s.json", doc); err != nil {
		t.Fatal(err)
	}
	lib, err := c.Compile("mem://s.json")
	if err != nil {
		t.Fatalf("schema %s: %v", text, err)
	}
	check, err := Compile(lib)
	return lib, check, err
}

// schemas exercise every keyword a Check implements, alone and nested.
var schemas = []string{
	`true`,
	`false`,
	`{}`,
	`{"type":"string"}`,
	`{"type":["integer","null"]}`,
	`{"type":"number","minimum":0,"maximum":9007199254740991}`,
	`{"type":"integer","minimum":-3,"maximum":3}`,
	`{"const":1}`,
	`{"const":"a"}`,
	`{"const":null}`,
	`{"enum":["user","agent",2,true,null]}`,
	`{"enum":[]}`,
	`{"type":"string","minLength":1,"maxLength":3}`,
	`{"type":"string","pattern":"^[a-z]+$"}`,
	`{"pattern":"b"}`,
	`{"format":"email","maxLength":254}`,
	`{"format":"uuid"}`,
	`{"format":"date-time"}`,
	`{"format":"not-a-known-format"}`,
	`{"type":"array","minItems":1,"maxItems":3,"uniqueItems":true}`,
	`{"uniqueItems":true}`,
	`{"type":"array","items":{"type":"string","maxLength":2}}`,
	`{"type":"object","minProperties":1,"maxProperties":2}`,
	`{"type":"object","required":["a","b"]}`,
	`{"type":"object","properties":{"a":{"type":"string"},"b":{"const":1}},"additionalProperties":false}`,
	`{"type":"object","properties":{"a":{"type":"string"},"c":{}},"required":["a"],"additionalProperties":false}`,
	`{"properties":{"a":{"type":"string"},"b":{}},"required":["a","b"],"additionalProperties":false,"minProperties":2}`,
	`{"properties":{"a":{"type":"string"}},"required":["b"],"additionalProperties":false}`,
	`{"properties":{"a":{},"abcd":{}},"additionalProperties":false,"propertyNames":{"maxLength":3}}`,
	`{"properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}}`,
	`{"propertyNames":{"pattern":"^[a-z]{1,3}$"}}`,
	`{"$defs":{"s":{"type":"string","maxLength":2}},"type":"object","properties":{"a":{"$ref":"#/$defs/s","minLength":1}}}`,
	`{"$defs":{"t":{"type":["object","integer"],"properties":{"c":{"$ref":"#/$defs/t"}},"additionalProperties":false}},"$ref":"#/$defs/t"}`,
}

// instances are JSON texts around every keyword's edges.
var instances = []string{
	`null`, `true`, `false`, `0`, `-0`, `1`, `1.0`, `1.5`, `-3`, `-4`, `3`, `4`, `1e300`, `-1e-300`,
	`9007199254740991`, `9007199254740992`, `9007199254740993`,
	`""`, `"a"`, `"abc"`, `"abcd"`, `"é"`, `"ééé"`, `"éééé"`, `"b"`, `"xbx"`, `"user"`, `"agent"`,
	`"sarah@acme.example"`, `"not an email"`, `"6f1c2a9e-3b7d-4c1e-9a55-0d2e8b7f4a10"`, `"6F1C2A9E-3B7D-4C1E-9A55-0D2E8B7F4A10"`,
	`"2026-01-15T09:23:00.5Z"`, `"2026-13-15T09:23:00Z"`,
	`[]`, `["a"]`, `["a","a"]`, `["a","b","c"]`, `["a","b","c","d"]`, `[1,1.0]`, `[0,-0]`, `[{"a":1},{"a":1}]`, `[{"a":1},{"a":2}]`, `[[1],[1]]`, `["abc"]`,
	`{}`, `{"a":"x"}`, `{"a":1}`, `{"a":"x","b":1}`, `{"a":"x","b":2}`, `{"a":"x","c":1}`, `{"a":"x","c":1.5}`, `{"abcd":1}`, `{"A":1}`,
	`{"a":""}`, `{"a":"xyz"}`, `{"c":{"c":1}}`, `{"c":{"c":{"d":1}}}`, `{"c":"s"}`,
}

func decode(t *testing.T, text string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("instance %s: %v", text, err)
	}
	return v
}

// TestCheckAgreesWithTheLibrary is the differential oracle on hand-picked
// edges: for decoded documents a Check accepts exactly what the library does.
func TestCheckAgreesWithTheLibrary(t *testing.T) {
	for _, st := range schemas {
		t.Run(st, func(t *testing.T) {
			lib, check, err := compileBoth(t, st)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range instances {
				v := decode(t, it)
				want := lib.Validate(v) == nil
				if got := check(v); got != want {
					t.Errorf("instance %s: Check says %v, library %v", it, got, want)
				}
			}
		})
	}
}

// TestCheckAgreesOnRandomDocuments runs the oracle on random trees of the
// decoder's types, nested under each schema's keywords.
func TestCheckAgreesOnRandomDocuments(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, st := range schemas {
		lib, check, err := compileBoth(t, st)
		if err != nil {
			t.Fatal(err)
		}
		for range 2000 {
			v := randomValue(r, 3)
			want := lib.Validate(v) == nil
			if got := check(v); got != want {
				b, _ := json.Marshal(v)
				t.Fatalf("schema %s, instance %s: Check says %v, library %v", st, b, got, want)
			}
		}
	}
}

var randomStrings = []string{"", "a", "b", "c", "abc", "abcd", "é", "A", "user", "agent", "sarah@acme.example", "6f1c2a9e-3b7d-4c1e-9a55-0d2e8b7f4a10", "2026-01-15T09:23:00Z"}
var randomNumbers = []float64{0, math.Copysign(0, -1), 1, 1.5, 2, -3, 3, -4, 4, 9007199254740991, 9007199254740992, 1e300, -1e-300}

func randomValue(r *rand.Rand, depth int) any {
	k := r.IntN(7)
	if depth == 0 {
		k = r.IntN(4)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return randomNumbers[r.IntN(len(randomNumbers))]
	case 3:
		return randomStrings[r.IntN(len(randomStrings))]
	case 4:
		arr := make([]any, r.IntN(5))
		for i := range arr {
			arr[i] = randomValue(r, depth-1)
		}
		return arr
	default:
		obj := map[string]any{}
		for range r.IntN(4) {
			obj[[]string{"a", "b", "c", "d", "abcd", "A"}[r.IntN(6)]] = randomValue(r, depth-1)
		}
		return obj
	}
}

// TestCheckLeavesUndecidedValuesToTheLibrary: a value of a type no JSON decoder
// produces, or an array too long to scan for uniqueness, is never accepted.
func TestCheckLeavesUndecidedValuesToTheLibrary(t *testing.T) {
	long := make([]any, maxUniqueScan+1)
	for i := range long {
		long[i] = float64(i)
	}
	for _, c := range []struct {
		schema string
		v      any
	}{
		{`{"type":"number"}`, 1},
		{`{"type":"integer"}`, int64(1)},
		{`{"type":"object"}`, map[string]string{}},
		{`{"properties":{"a":{"type":"array"}}}`, map[string]any{"a": []string{"x"}}},
		{`{"uniqueItems":true}`, long},
		{`{"uniqueItems":true}`, append(long, float64(0))},
		{`{"uniqueItems":true}`, []any{1, 2}},
		{`{"type":"number"}`, math.NaN()},
		{`{"type":"number"}`, math.Inf(-1)},
	} {
		t.Run(fmt.Sprintf("%s %T", c.schema, c.v), func(t *testing.T) {
			_, check, err := compileBoth(t, c.schema)
			if err != nil {
				t.Fatal(err)
			}
			if check(c.v) {
				t.Errorf("Check accepted %#v, which it does not decide", c.v)
			}
		})
	}
}

// TestCompileRefusesWhatItDoesNotImplement: a keyword without an implementation
// fails Compile with its name, so a schema change cannot be silently ignored.
func TestCompileRefusesWhatItDoesNotImplement(t *testing.T) {
	for kw, schema := range map[string]string{
		"not":                   `{"not":{"type":"string"}}`,
		"allOf":                 `{"allOf":[{"type":"string"}]}`,
		"anyOf":                 `{"properties":{"a":{"anyOf":[{"type":"string"}]}}}`,
		"oneOf":                 `{"items":{"oneOf":[{"type":"string"}]}}`,
		"if/then/else":          `{"if":{"type":"string"},"then":{"minLength":1}}`,
		"patternProperties":     `{"patternProperties":{"^a":{}}}`,
		"dependentRequired":     `{"dependentRequired":{"a":["b"]}}`,
		"dependentSchemas":      `{"dependentSchemas":{"a":{}}}`,
		"unevaluatedProperties": `{"unevaluatedProperties":false}`,
		"contains":              `{"contains":{"type":"string"}}`,
		"prefixItems":           `{"prefixItems":[{}]}`,
		"unevaluatedItems":      `{"unevaluatedItems":false}`,
		"exclusiveMinimum":      `{"exclusiveMinimum":0}`,
		"exclusiveMaximum":      `{"exclusiveMaximum":0}`,
		"multipleOf":            `{"multipleOf":2}`,
		"minimum":               `{"minimum":0.5}`,
		"maximum":               `{"maximum":18014398509481984}`,
		"const/enum number":     `{"enum":[0.1]}`,
		"const/enum value":      `{"const":[1]}`,
	} {
		t.Run(kw, func(t *testing.T) {
			_, _, err := compileBoth(t, schema)
			var ue *UnsupportedError
			if !errors.As(err, &ue) || !strings.Contains(ue.Keyword, kw) {
				t.Fatalf("Compile: %v, want an UnsupportedError naming %s", err, kw)
			}
		})
	}
}
