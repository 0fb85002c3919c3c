package event

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/trailkeep/trailkeep/internal/fixtures"
)

var bigLimits = Limits{MaxEventBytes: 1 << 20, MaxDepth: 64}

// The examples of RFC 8785 §3.2.2 (values), §3.2.3 (sorting) and a nested
// structure, run through the exact decoder and encoder Canonicalize uses.
func TestRFC8785Examples(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"values",
			`{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
			  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
			  "literals": [null, true, false]}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{"sorting",
			`{"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
			  "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control\u007f", "\u00f6": "Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\u007f\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{"structures",
			`{"1": {"f": {"f": "hi","F": 5} ,"\n": 56.0}, "10": { }, "": "empty", "a": { }, "111": [ { } ], "A": { }, "</script>": "x"}`,
			`{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"</script>":"x","A":{},"a":{}}`},
	}
	for _, c := range cases {
		doc, err := Decode([]byte(c.in), bigLimits)
		if err != nil {
			t.Fatalf("%s: decode: %v", c.name, err)
		}
		got, err := canonicalJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// RFC 8785 Appendix B: IEEE 754 doubles and their canonical text.
func TestRFC8785Numbers(t *testing.T) {
	vectors := map[string]string{
		"0000000000000000": "0", "8000000000000000": "0",
		"0000000000000001": "5e-324", "8000000000000001": "-5e-324",
		"7fefffffffffffff": "1.7976931348623157e+308", "ffefffffffffffff": "-1.7976931348623157e+308",
		"4340000000000000": "9007199254740992", "c340000000000000": "-9007199254740992",
		"4430000000000000": "295147905179352830000",
		"44b52d02c7e14af5": "9.999999999999997e+22", "44b52d02c7e14af6": "1e+23", "44b52d02c7e14af7": "1.0000000000000001e+23",
		"444b1ae4d6e2ef4e": "999999999999999700000", "444b1ae4d6e2ef4f": "999999999999999900000", "444b1ae4d6e2ef50": "1e+21",
		"3eb0c6f7a0b5ed8c": "9.999999999999997e-7", "3eb0c6f7a0b5ed8d": "0.000001",
		"41b3de4355555553": "333333333.3333332", "41b3de4355555554": "333333333.33333325",
		"41b3de4355555555": "333333333.3333333", "41b3de4355555556": "333333333.3333334",
		"41b3de4355555557": "333333333.33333343", "becbf647612f3696": "-0.0000033333333333333333",
		"43143ff3c1cb0959": "1424953923781206.2",
	}
	for hex, want := range vectors {
		bits, _ := strconv.ParseUint(hex, 16, 64)
		f := math.Float64frombits(bits)
		got, err := canonicalJSON([]any{f})
		if err != nil {
			t.Fatalf("%s: %v", hex, err)
		}
		if string(got) != "["+want+"]" {
			t.Errorf("%s: got %s want [%s]", hex, got, want)
		}
		// The same value written as text must decode to the same double.
		if !strings.ContainsAny(want, ".e") && math.Abs(f) > maxSafeInteger {
			continue // integers beyond 2^53-1 are rejected by Decode on purpose
		}
		doc, err := Decode([]byte(`{"n":`+want+`}`), bigLimits)
		if err != nil {
			t.Errorf("%s: decode %s: %v", hex, want, err)
		} else if doc["n"].(float64) != f {
			t.Errorf("%s: decode %s = %v want %v", hex, want, doc["n"], f)
		}
	}
}

func ruleAt(t *testing.T, err error, field, rule string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want ValidationError with %s %s, got %v", field, rule, err)
	}
	for _, fe := range ve.Errors {
		if fe.Field == field && fe.Rule == rule {
			if fe.Message == "" {
				t.Errorf("%s %s: empty message", field, rule)
			}
			return
		}
	}
	t.Fatalf("want %s %s in %v", field, rule, ve)
}

// Every file in shared/fixtures/bad must be rejected by the event pipeline
// with the field and rule a sender can act on.
func TestBadFixtures(t *testing.T) {
	want := map[string][2]string{
		"not-json":                {"", RuleSyntax},
		"array-where-object":      {"", RuleObject},
		"wrong-type-hook-event":   {"/tool_name", "additionalProperties"},
		"missing-hook-event-name": {"/action", "required"},
		"duplicate-keys":          {"/action", RuleDuplicateKey},
		"invalid-utf8":            {"/x", RuleUTF8},
		"nul-byte":                {"/resource/id", RuleNUL},
		"deep-nesting":            {"/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a", RuleMaxDepth},
		"huge-int":                {"/metadata/n", RuleNumber},
		"timestamp-garbage":       {"/occurred_at", "format"},
		"action-injection":        {"/action", "pattern"},
		"oversized":               {"", RuleMaxBytes},
	}
	seen := 0
	for _, b := range fixtures.BadInputs(t) {
		w, ok := want[b.Name]
		if !ok {
			t.Errorf("bad fixture %q has no expectation here: add one", b.Name)
			continue
		}
		seen++
		_, _, err := prepare(b.Body)
		if err == nil {
			t.Errorf("%s: accepted", b.Name)
			continue
		}
		t.Run(b.Name, func(t *testing.T) { ruleAt(t, err, w[0], w[1]) })
	}
	if seen != len(want) {
		t.Errorf("saw %d of %d expected bad fixtures", seen, len(want))
	}
}

var testStamp = Stamp{Tenant: "acme-platform", Tool: "registry", ReceivedAt: time.Date(2026, 1, 21, 2, 3, 5, 0, time.UTC),
	ID: "0194a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", IPKey: []byte("test-ip-key")}

// prepare runs the ingest path: decode, stamp, canonicalise.
func prepare(raw []byte) (*Event, []byte, error) {
	doc, err := Decode(raw, Limits{})
	if err != nil {
		return nil, nil, err
	}
	if err := testStamp.Apply(doc); err != nil {
		return nil, nil, err
	}
	return Canonicalize(doc, Limits{})
}

const minimal = `{"action":"skill.updated","actor":{"type":"user","id":"usr_41"},"source":{"tool":"registry"},"resource":{"type":"skill","id":"skl_9"}}`

func TestSchemaErrors(t *testing.T) {
	meta := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"k` + strconv.Itoa(i) + `":1`)
		}
		return `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"metadata":{` + b.String() + `}}`
	}
	cases := []struct{ name, in, field, rule, msg string }{
		{"email", `{"action":"a.b","actor":{"type":"user","id":"u","email":"not-an-email"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`,
			"/actor/email", "format", "/actor/email: must be a valid email address"},
		{"too many metadata keys", meta(65), "/metadata", "maxProperties", "/metadata: at most 64 keys (got 65)"},
		{"metadata key", `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"metadata":{"bad key":1}}`,
			"/metadata/bad key", "propertyNames", ""},
		{"metadata nested", `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"metadata":{"o":{"x":1}}}`,
			"/metadata/o", "type", ""},
		{"metadata value length", `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"metadata":{"s":"` + strings.Repeat("x", 8193) + `"}}`,
			"/metadata/s", "maxLength", "/metadata/s: must be at most 8192 characters (got 8193)"},
		{"empty metadata", `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"metadata":{}}`,
			"/metadata", "minProperties", "/metadata: must not be empty; omit the field instead"},
		{"empty text", `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"change":{"diff_summary":""}}`,
			"/change/diff_summary", "minLength", "/change/diff_summary: must not be empty"},
		{"empty tags", `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"compliance_tags":[]}`,
			"/compliance_tags", "minItems", ""},
		{"actor type", `{"action":"a.b","actor":{"type":"robot","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`,
			"/actor/type", "enum", ""},
		{"unknown field", `{"action":"a.b","actor":{"type":"user","id":"u","role":"x"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`,
			"/actor/role", "additionalProperties", ""},
		{"required", `{"action":"a.b","source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`, "/actor", "required", "/actor: is required"},
		{"action case", `{"action":"Skill.Updated","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`,
			"/action", "pattern", "/action: must be resource.verb in lower snake case, e.g. skill.updated or team.role_changed"},
		{"identifier control char", `{"action":"a.b","actor":{"type":"user","id":"u\u0007"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`,
			"/actor/id", "pattern", "/actor/id: must not contain control characters"},
		{"empty id", `{"action":"a.b","actor":{"type":"user","id":""},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`,
			"/actor/id", "minLength", ""},
		{"duplicate tags", `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"compliance_tags":["SOC2","SOC2"]}`,
			"/compliance_tags", "uniqueItems", ""},
		{"negative duration", `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"result":{"status":"success","duration_ms":-1}}`,
			"/result/duration_ms", "minimum", ""},
		{"digest", `{"action":"a.b","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"},"approval":{"approved_params_digest":"md5:00"}}`,
			"/approval/approved_params_digest", "pattern", ""},
		{"time range", `{"action":"a.b","occurred_at":"1969-12-31T23:59:59Z","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`,
			"/occurred_at", RuleTimeRange, ""},
		{"lone surrogate", `{"action":"a.b","x":"\ud800"}`, "/x", RuleUTF8, ""},
		{"trailing data", minimal + ` {}`, "", RuleSyntax, "/: unexpected data after the JSON object"},
		{"float overflow", `{"metadata":{"f":1e400}}`, "/metadata/f", RuleNumber, ""},
		{"float underflow", `{"metadata":{"f":1e-400}}`, "/metadata/f", RuleNumber, ""},
		{"nul in key", `{"a\u0000":1}`, "/a\x00", RuleNUL, ""},
		{"tenant mismatch", `{"tenant":"other","action":"a.b"}`, "/tenant", RuleServerField, ""},
		{"received_at from client", `{"received_at":"2026-01-01T00:00:00Z","action":"a.b"}`, "/received_at", RuleServerField, ""},
		{"bad ip", `{"action":"a.b","actor":{"type":"user","id":"u","ip":"999.1.1.1"}}`, "/actor/ip", "format", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := prepare([]byte(c.in))
			ruleAt(t, err, c.field, c.rule)
			if c.msg != "" {
				var ve *ValidationError
				errors.As(err, &ve)
				found := false
				for _, fe := range ve.Errors {
					found = found || fe.Error() == c.msg
				}
				if !found {
					t.Errorf("want message %q in %v", c.msg, err)
				}
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, _, err := prepare([]byte(`{"action":"BAD","actor":{"type":"robot","id":""},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) < 3 {
		t.Fatalf("want at least 3 errors, got %v", err)
	}
	ruleAt(t, err, "/action", "pattern")
	ruleAt(t, err, "/actor/type", "enum")
	ruleAt(t, err, "/actor/id", "minLength")
}

func TestTimestampsNormalised(t *testing.T) {
	ev, canon, err := prepare([]byte(`{"action":"a.b","occurred_at":"2026-01-15T10:23:00.5+01:00","actor":{"type":"user","id":"u"},"source":{"tool":"registry"},"resource":{"type":"r","id":"1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(canon, []byte(`"occurred_at":"2026-01-15T09:23:00.500000000Z"`)) ||
		!bytes.Contains(canon, []byte(`"received_at":"2026-01-21T02:03:05.000000000Z"`)) {
		t.Fatalf("timestamps not normalised: %s", canon)
	}
	if !ev.OccurredAt.Equal(time.Date(2026, 1, 15, 9, 23, 0, 5e8, time.UTC)) {
		t.Fatalf("OccurredAt = %v", ev.OccurredAt)
	}
	// occurred_at defaults to received_at.
	ev, _, err = prepare([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if !ev.OccurredAt.Equal(ev.ReceivedAt.Time) {
		t.Fatalf("occurred_at %v != received_at %v", ev.OccurredAt, ev.ReceivedAt)
	}
}

func TestStamp(t *testing.T) {
	ev, canon, err := prepare([]byte(`{"id":"client-42","action":"auth.sso_failed","actor":{"type":"user","id":"u","ip":"::ffff:203.0.113.77"},"source":{"tool":"registry"},"resource":{"type":"idp","id":"okta"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != testStamp.ID || ev.IdempotencyKey != "client-42" || ev.Tenant != "acme-platform" || ev.SchemaVersion != 1 {
		t.Fatalf("server fields: %+v", ev)
	}
	if bytes.Contains(canon, []byte("203.0.113.77")) || bytes.Contains(canon, []byte(`"ip"`)) {
		t.Fatalf("raw IP stored: %s", canon)
	}
	// IPv4-mapped and plain IPv4 hash the same.
	want := HashIP(testStamp.IPKey, mustAddr(t, "203.0.113.77"))
	if ev.Actor.IPHMAC != want {
		t.Fatalf("ip_hmac %s want %s", ev.Actor.IPHMAC, want)
	}
	doc, _ := Decode([]byte(`{"action":"a.b","actor":{"type":"user","id":"u","ip":"10.0.0.1"}}`), Limits{})
	err = Stamp{Tenant: "t", ReceivedAt: time.Now()}.Apply(doc)
	ruleAt(t, err, "/actor/ip", RuleServerField)

	// A fresh UUIDv7 when none is given.
	doc, _ = Decode([]byte(minimal), Limits{})
	if err := (Stamp{Tenant: "t", ReceivedAt: time.Now()}).Apply(doc); err != nil {
		t.Fatal(err)
	}
	ev, _, err = Canonicalize(doc, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID[14] != '7' {
		t.Fatalf("id %s is not a UUIDv7", ev.ID)
	}
}

// The registry fixtures are canonical events as senders post them: they
// must all pass, and their canonical bytes must be a fixed point.
func TestRegistryFixturesCanonical(t *testing.T) {
	for i, l := range fixtures.Lines(t, "registry/canonical-events.jsonl") {
		ev, canon, err := prepare(l)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if _, err := CheckCanonical(canon, Limits{}); err != nil {
			t.Fatalf("line %d: canonical bytes do not re-validate: %v", i+1, err)
		}
		assertRoundTrip(t, ev, canon)
	}
}

// assertRoundTrip checks the Go types lose nothing: encoding the decoded
// Event gives back the canonical bytes.
func assertRoundTrip(t testing.TB, ev *Event, canon []byte) {
	t.Helper()
	if v := libraryJCS(t, ev); !bytes.Equal(v, canon) {
		t.Fatalf("Go types lose data:\n canonical %s\n via types %s", canon, v)
	}
}

func TestCheckCanonicalRejectsNonCanonical(t *testing.T) {
	_, canon, err := prepare([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	spaced := append([]byte(" "), canon...)
	if _, err := CheckCanonical(spaced, Limits{}); !errors.Is(err, ErrNotCanonical) {
		t.Fatalf("want ErrNotCanonical, got %v", err)
	}
	if _, err := CheckCanonical(canon, Limits{}); err != nil {
		t.Fatal(err)
	}
}

func TestDeterministic(t *testing.T) {
	in := []byte(`{"metadata":{"b":2,"a":"x","c":true},"action":"a.b","actor":{"id":"u","type":"user"},"source":{"tool":"registry"},"resource":{"id":"1","type":"r"},"compliance_tags":["SOC2","HIPAA"]}`)
	_, first, err := prepare(in)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		_, again, err := prepare(in)
		if err != nil || !bytes.Equal(first, again) {
			t.Fatalf("not deterministic: %s vs %s (%v)", first, again, err)
		}
	}
}

func TestAdmit(t *testing.T) {
	doc := map[string]any{
		"action": "skill.updated", "actor": map[string]any{"type": "user", "id": "u"},
		"resource": map[string]any{"type": "skill", "id": "s"},
	}
	st := Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := st.Apply(doc); err != nil {
		t.Fatal(err)
	}
	_, canon, err := Canonicalize(doc, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if err := Admit(canon, DefaultLimits); err != nil {
		t.Fatalf("canonical event refused: %v", err)
	}
	spaced := bytes.Replace(canon, []byte(`,"`), []byte(`, "`), 1)
	v2 := bytes.Replace(canon, []byte(`"schema_version":1`), []byte(`"schema_version":2`), 1)
	for name, raw := range map[string][]byte{
		"not canonical": spaced, "schema v2": v2, "empty": nil, "array": []byte(`[1]`),
		"garbage": []byte(`{"a":`), "no tenant": []byte(`{"id":"x","schema_version":1}`),
	} {
		if err := Admit(raw, DefaultLimits); err == nil {
			t.Errorf("%s admitted", name)
		}
	}
}

// TestServerOwnedFieldsAreRejected iterates the schema's x-server-owned list, so a
// field annotated tomorrow is tested by being annotated.
func TestServerOwnedFieldsAreRejected(t *testing.T) {
	owned := ServerOwned()
	for _, want := range []string{"/actor/ip_hmac", "/idempotency_conflict", "/received_at", "/redactions"} {
		if !slices.Contains(owned, want) {
			t.Errorf("%s is not annotated x-server-owned (list %v)", want, owned)
		}
	}
	for _, ptr := range owned {
		t.Run(ptr, func(t *testing.T) {
			doc := map[string]any{"action": "a.b", "actor": map[string]any{"type": "user", "id": "u"},
				"resource": map[string]any{"type": "r", "id": "1"}}
			parts := strings.Split(ptr[1:], "/")
			cur := doc
			for _, p := range parts[:len(parts)-1] {
				next, ok := cur[p].(map[string]any)
				if !ok {
					next = map[string]any{}
					cur[p] = next
				}
				cur = next
			}
			cur[parts[len(parts)-1]] = "client-sent"
			st := Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: time.Now(), IPKey: []byte("k")}
			ruleAt(t, st.Apply(doc), ptr, RuleServerField)

			// A source mapper's own document may carry them (it set them itself).
			doc2 := map[string]any{"redactions": []any{map[string]any{"field": "/metadata/x", "rule": "r"}}}
			st.Mapped = true
			if err := st.Apply(doc2); err != nil {
				t.Errorf("mapped document refused: %v", err)
			}
		})
	}
}

// oracleCanonicalBytes is CanonicalBytes as it was before its encoder took over
// the text rules: a walk of its own for them first, then the schema, then the
// encoding. CanonicalBytes must answer exactly as it does.
func oracleCanonicalBytes(doc map[string]any, lim Limits) ([]byte, error) {
	lim = lim.withDefaults()
	if err := checkText(doc, nil, 0, lim); err != nil {
		return nil, err
	}
	if err := Validate(doc); err != nil {
		return nil, err
	}
	for _, f := range timeFields {
		if s, ok := doc[f].(string); ok {
			t, _ := ParseTime(s)
			doc[f] = FormatTime(t)
		}
	}
	v, err := AppendCanonical(nil, doc)
	if err != nil {
		return nil, err
	}
	if len(v) > lim.MaxEventBytes {
		return nil, fieldErr("", RuleMaxBytes, strconv.Itoa(lim.MaxEventBytes), "canonical event is %d bytes, at most %d allowed", len(v), lim.MaxEventBytes)
	}
	return v, nil
}

// plantTextFault breaks Decode's text rules at one random place of doc: U+0000
// or an invalid byte in a string or a key, or nesting past lim.MaxDepth.
func plantTextFault(r *rand.Rand, doc map[string]any, maxDepth int) {
	type place struct {
		obj map[string]any
		arr []any
		key string
		idx int
	}
	var places []place
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				places = append(places, place{obj: v, key: k})
				walk(v[k])
			}
		case []any:
			for i, x := range v {
				places = append(places, place{arr: v, idx: i})
				walk(x)
			}
		}
	}
	walk(doc)
	if len(places) == 0 { // a mutation emptied the event
		doc["k\x00"] = 1.0
		return
	}
	p := places[r.IntN(len(places))]
	get := func() any {
		if p.obj != nil {
			return p.obj[p.key]
		}
		return p.arr[p.idx]
	}
	set := func(v any) {
		if p.obj != nil {
			p.obj[p.key] = v
		} else {
			p.arr[p.idx] = v
		}
	}
	fault := []string{"\x00", "\xff", "\xed\xa0\x80"}[r.IntN(3)]
	switch op := r.IntN(3); {
	case op == 0 && p.obj != nil: // in the key
		v := p.obj[p.key]
		delete(p.obj, p.key)
		p.obj[p.key[:r.IntN(len(p.key)+1)]+fault+p.key[len(p.key)/2:]] = v
	case op == 1: // nested too deep: in arrays, objects or both
		m, inMeta := doc["metadata"].(map[string]any)
		inMeta = inMeta && r.IntN(2) == 0
		var v any = "leaf"
		if !inMeta {
			v = get()
		}
		kind := r.IntN(3)
		for range maxDepth + 1 {
			if kind == 0 || kind == 2 && r.IntN(2) == 0 {
				v = []any{v}
			} else {
				v = map[string]any{"n": v}
			}
		}
		if inMeta {
			m["deep"] = v // where the schema allows anything, so only the depth refuses it
			return
		}
		set(v)
	default: // in a string value (or a new one)
		s, _ := get().(string)
		set(s[:r.IntN(len(s)+1)] + fault)
	}
}

// isTextErr reports whether err is a refusal by one of Decode's text rules.
func isTextErr(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve) && len(ve.Errors) == 1 && slices.Contains([]string{RuleNUL, RuleUTF8, RuleMaxDepth}, ve.Errors[0].Rule)
}

// TestCanonicalBytesNamesTextFaultsFirst is the differential oracle for the text
// rules' move into the encoder: events built in Go, mutated at the schema's edges
// and with text faults planted at random places, must get from CanonicalBytes the
// same bytes or the same error (field, rule and message; for text faults, a text
// rule) as from the separate walk that ran first before.
func TestCanonicalBytesNamesTextFaultsFirst(t *testing.T) {
	c, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	bases := stampedEvents(t)
	pool, sizes := edgeValues(c.doc)
	r := rand.New(rand.NewPCG(3, 5))
	outcomes := map[string]int{}
	for i := range 20000 {
		// The schema bounds every event's depth; a limit below that bound is the
		// only way a schema-valid event meets the depth rule.
		lim := Limits{MaxDepth: 6}
		if r.IntN(5) == 0 {
			lim.MaxDepth = 1 + r.IntN(2)
		}
		doc := deepCopy(bases[i%len(bases)]).(map[string]any)
		for range r.IntN(3) {
			mutateEvent(r, doc, pool, sizes)
		}
		if r.IntN(3) > 0 {
			plantTextFault(r, doc, lim.MaxDepth)
		}
		want, werr := oracleCanonicalBytes(deepCopy(doc).(map[string]any), lim)
		got, gerr := CanonicalBytes(deepCopy(doc).(map[string]any), lim)
		// With several text faults, which one checkText names follows Go's map
		// order, on either side; that a text rule refuses it must agree.
		wtext, gtext := isTextErr(werr), isTextErr(gerr)
		if wtext != gtext || !wtext && (fmt.Sprint(gerr) != fmt.Sprint(werr) || !bytes.Equal(got, want)) {
			b, _ := json.Marshal(doc)
			t.Fatalf("case %d: CanonicalBytes = %q, %v\nwant %q, %v\nfor %s", i, got, gerr, want, werr, b)
		}
		switch {
		case werr == nil:
			outcomes["accepted"]++
		case wtext:
			outcomes["text"]++
		default:
			outcomes["schema"]++
		}
	}
	for _, o := range []string{"accepted", "text", "schema"} {
		if outcomes[o] < 2000 {
			t.Fatalf("outcomes %v: too few %s to compare", outcomes, o)
		}
	}
}
