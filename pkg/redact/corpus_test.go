package redact

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/secretcorpus"
)

func TestSecretCorpus(t *testing.T) {
	r := newRedactor(t)
	list := secretcorpus.Read(t)
	kinds := map[string]bool{}
	for _, s := range list {
		kinds[s.Rule] = true
	}
	if len(kinds) < 30 {
		t.Errorf("corpus has %d secret kinds, want at least 30", len(kinds))
	}
	for _, s := range list {
		t.Run(s.Rule, func(t *testing.T) {
			for _, ctx := range []string{"%s", "run with %s now", `{"k":"%s"}`, "x=%s\nnext line"} {
				in := strings.Replace(ctx, "%s", s.Text, 1)
				out, rules := r.String(in)
				if strings.Contains(out, s.Core) || len(rules) == 0 {
					t.Errorf("in %q: secret kept: %q (rules %v)", ctx, out, rules)
				}
			}
			key, rules := r.Key(s.Text)
			if strings.Contains(key, s.Core) || len(rules) == 0 {
				t.Errorf("as a key: kept %q", key)
			}
		})
	}
}

// TestOnlyTheSecretIsReplaced: where rules overlap on one secret the marker covers
// their union, and the text around it survives.
func TestOnlyTheSecretIsReplaced(t *testing.T) {
	r := newRedactor(t)
	tok := "ghp_R9xq2Lm7Vb4Tz8Yk1Wc6Nd3Fp5Hs0Ja2Ue7Q"
	for _, tc := range []struct{ name, in, before, after string }{
		{"token as url password", "git clone https://x:" + tok + "@github.com/o/r && make", "git clone https://x:", "@github.com/o/r && make"},
		{"token in a flag", "gh auth login --token=" + tok + " --hostname github.com", "gh auth login --token=", " --hostname github.com"},
		{"token twice", tok + " and " + tok, "", ""},
		{"env assignment of a token", "GITHUB_TOKEN=" + tok + " make release", "GITHUB_TOKEN=", " make release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, rules := r.String(tc.in)
			if strings.Contains(out, tok) || len(rules) == 0 {
				t.Fatalf("token kept: %q", out)
			}
			if !strings.HasPrefix(out, tc.before) || !strings.HasSuffix(out, tc.after) {
				t.Errorf("%q: the text around the secret was not kept (want prefix %q, suffix %q)", out, tc.before, tc.after)
			}
		})
	}
}

// TestDocumentScansEveryKeyAndValue plants a secret in every kind of place a canonical
// document has, including keys, and checks each is gone and recorded.
func TestDocumentScansEveryKeyAndValue(t *testing.T) {
	r := newRedactor(t)
	tok := "ghp_R9xq2Lm7Vb4Tz8Yk1Wc6Nd3Fp5Hs0Ja2Ue7Q"
	doc := map[string]any{
		"id":              "01a23625-0db9-707f-891a-2bfa1b0724f2",
		"idempotency_key": `["cloudevents","https://u:` + tok + `@h/x","1"]`,
		"actor":           map[string]any{"type": "user", "id": tok, "name": "n " + tok},
		"resource":        map[string]any{"type": "skill", "id": "s", "name": tok, "targets": []any{map[string]any{"type": "t", "id": tok}}},
		"metadata":        map[string]any{tok: "v", "x.ok": "also " + tok, "n": 1.0},
		"approval":        map[string]any{"approved_params_digest": "sha256:" + strings.Repeat("ab", 32)},
		"redactions":      []any{map[string]any{"field": "/metadata/earlier", "rule": "r"}},
	}
	r.Document(doc)
	b := fmtDoc(doc)
	if strings.Contains(b, tok) {
		t.Fatalf("token kept: %s", b)
	}
	if !strings.Contains(b, "sha256:"+strings.Repeat("ab", 32)) || !strings.Contains(b, "01a23625-0db9-707f-891a-2bfa1b0724f2") {
		t.Errorf("digest or id changed: %s", b)
	}
	red, _ := doc["redactions"].([]any)
	fields := map[string]bool{}
	for _, e := range red {
		fields[e.(map[string]any)["field"].(string)] = true
	}
	for _, want := range []string{"/metadata/earlier", "/idempotency_key", "/actor/id", "/actor/name", "/resource/name", "/resource/targets/0/id", "/metadata/REDACTED.github-pat", "/metadata/x.ok"} {
		if !fields[want] {
			t.Errorf("redactions lack %s: %v", want, fields)
		}
	}
}

// TestDocumentFindsASecretAloneInEachPlace: with one secret in one place and the
// rest of the document clean, the batch pre-scan alone must see it, wherever it is:
// in a value at any depth, and in a metadata key however deep under metadata
// (objects in arrays in objects). Keys outside metadata are the schema's closed set
// and are not scanned.
func TestDocumentFindsASecretAloneInEachPlace(t *testing.T) {
	r := newRedactor(t)
	tok := "ghp_R9xq2Lm7Vb4Tz8Yk1Wc6Nd3Fp5Hs0Ja2Ue7Q"
	for _, tc := range []struct {
		name string
		doc  map[string]any
	}{
		{"top-level value", map[string]any{"idempotency_key": tok}},
		{"nested value", map[string]any{"resource": map[string]any{"targets": []any{map[string]any{"id": tok}}}}},
		{"metadata key", map[string]any{"metadata": map[string]any{tok: "v"}}},
		{"metadata key in an object", map[string]any{"metadata": map[string]any{"a": map[string]any{tok: "v"}}}},
		{"metadata key in an array", map[string]any{"metadata": map[string]any{"a": []any{1.0, map[string]any{tok: "v"}}}}},
		{"metadata key in arrays of objects", map[string]any{"metadata": map[string]any{"a": []any{[]any{map[string]any{"b": map[string]any{tok: 1.0}}}}}}},
		{"metadata value in an array", map[string]any{"metadata": map[string]any{"a": []any{"x", tok}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := map[string]any{"id": "01a23625-0db9-707f-891a-2bfa1b0724f2", "action": "skill.updated"}
			for k, v := range tc.doc {
				doc[k] = v
			}
			r.Documents([]map[string]any{doc, {"action": "clean"}})
			if b := fmtDoc(doc); strings.Contains(b, tok) {
				t.Fatalf("the secret was kept: %s", b)
			}
		})
	}
}

func TestRedactionListIsBounded(t *testing.T) {
	r := newRedactor(t)
	meta := map[string]any{}
	for i := range 100 {
		meta[strings.Repeat("k", 1+i%60)+string(rune('a'+i/60))] = "DB_PASSWORD=Xk92mQ7pLz" + strings.Repeat("q", i)
	}
	doc := map[string]any{"metadata": meta}
	r.Document(doc)
	red := doc["redactions"].([]any)
	if len(red) != 64 || red[63].(map[string]any)["rule"] != RuleMore {
		t.Fatalf("%d redactions, last %v; want 64 ending with %s", len(red), red[len(red)-1], RuleMore)
	}
}

func fmtDoc(doc map[string]any) string {
	b, _ := json.Marshal(doc)
	return string(b)
}

// TestBatchPrescanAgreesWithPerStringScan is a differential test of the split
// pre-scan: for random batches of clean strings, secrets and encoded secrets (base64,
// hex, percent), "the batch has a finding" must equal "some string has one".
func TestBatchPrescanAgreesWithPerStringScan(t *testing.T) {
	r := newRedactor(t)
	var pool []string
	for _, s := range secretcorpus.Read(t) {
		pool = append(pool, s.Text, "run "+s.Text+" now",
			base64.StdEncoding.EncodeToString([]byte(s.Text)),
			hex.EncodeToString([]byte(s.Text)),
			url.QueryEscape("x="+s.Text))
	}
	clean := []string{"api-conventions-12", "usr_000123456", "user12@acme.example", "payments team notes",
		"Adjusted rate limiting instructions", "/home/dev/payments-api/src", "skill.updated", "token bucket size 10",
		"aGVsbG8gd29ybGQgaGVsbG8=", "%41%42 percent text", "deadbeefdeadbeefdeadbeefdeadbeef", `\u0041 escaped`, "U+0041 code point",
		// keywords without what their rules need, and with it
		"password reset flow", "api_key rotation due", "secret santa list", "auth: ok", "key=value", "token: short",
		"access granted to credentials page", "passwd file moved", "apikey-docs/README"}
	rng := rand.New(rand.NewPCG(3, 4))
	withSecret := 0
	defer func() {
		if withSecret < 50 {
			t.Errorf("only %d of 300 batches held a secret; the test would not notice a miss", withSecret)
		}
	}()
	for i := range 300 {
		var docs []map[string]any
		want := false
		for j := range 1 + rng.IntN(6) {
			meta := map[string]any{}
			for k := range 1 + rng.IntN(4) {
				v := clean[rng.IntN(len(clean))]
				if rng.IntN(8) == 0 {
					v = pool[rng.IntN(len(pool))]
				}
				meta[fmt.Sprintf("k%d_%d", j, k)] = v
				_, rules := r.String(v)
				want = want || rules != nil
			}
			docs = append(docs, map[string]any{"metadata": meta})
		}
		if want {
			withSecret++
		}
		if got := r.anyFinding(docs); got != want {
			t.Fatalf("batch %d: pre-scan %v, per-string scan %v: %v", i, got, want, docs)
		}
	}
}

func TestMayEncode(t *testing.T) {
	for s, want := range map[string]bool{
		"short words only": false, "abcdefghijklmnop": true, "abcdefghijklmno": false, "a%20b": true,
		`x\u0041`: true, "U+0041": true, "dead-beef/cafe+babe_0": true, "usr_1 and skl_2": false,
	} {
		if got := mayEncode(s); got != want {
			t.Errorf("mayEncode(%q) = %v, want %v", s, got, want)
		}
	}
}
