package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/secretcorpus"
)

// position plants a secret in one field of one source's payload.
type position struct {
	name, path, token, ctype string
	body                     func(secret string) []byte
	// unkept: the field may legitimately not be kept as text at all (digest-only
	// prompt text, an unknown key that is not a valid metadata key), so there may be
	// nothing to record as redacted.
	unkept bool
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func canonicalDoc(mut func(d map[string]any)) []byte {
	d := map[string]any{"action": "skill.updated", "actor": map[string]any{"type": "user", "id": "u1"},
		"resource": map[string]any{"type": "skill", "id": "s1"}}
	mut(d)
	return mustJSON(d)
}

func ceDoc(mut func(ce, data map[string]any)) []byte {
	data := map[string]any{"actor": map[string]any{"type": "user", "id": "u1"}}
	ce := map[string]any{"specversion": "1.0", "type": "skill.updated", "source": "urn:reg", "id": "e1", "subject": "skl_1", "data": data}
	mut(ce, data)
	return mustJSON(ce)
}

func hookDoc(event string, mut func(p map[string]any)) []byte {
	p := map[string]any{"session_id": "s1", "hook_event_name": event, "cwd": "/w", "tool_name": "Bash",
		"tool_input": map[string]any{"command": "make"}, "tool_use_id": "t1"}
	mut(p)
	return mustJSON(p)
}

func positions() []position {
	ev := func(name string, mut func(d map[string]any, s string)) position {
		return position{name: "events" + name, path: "/v1/events", token: tokRegistry, ctype: "application/json",
			body: func(s string) []byte { return canonicalDoc(func(d map[string]any) { mut(d, s) }) }}
	}
	ce := func(name string, mut func(ce, data map[string]any, s string)) position {
		return position{name: "cloudevents" + name, path: "/v1/cloudevents", token: tokRegistry, ctype: "application/cloudevents+json",
			body: func(s string) []byte { return ceDoc(func(c, d map[string]any) { mut(c, d, s) }) }}
	}
	hk := func(name, event string, mut func(p map[string]any, s string)) position {
		return position{name: "hooks/" + event + name, path: "/v1/hooks/claude-code", token: tokSarah, ctype: "application/json",
			body:   func(s string) []byte { return hookDoc(event, func(p map[string]any) { mut(p, s) }) },
			unkept: name == "/unknown/key" || name == "/prompt"}
	}
	sub := func(d map[string]any, k string) map[string]any { return d[k].(map[string]any) }
	return []position{
		ev("/id", func(d map[string]any, s string) { d["id"] = s }),
		ev("/idempotency_key", func(d map[string]any, s string) { d["idempotency_key"] = s }),
		ev("/actor/id", func(d map[string]any, s string) { sub(d, "actor")["id"] = s }),
		ev("/actor/name", func(d map[string]any, s string) { sub(d, "actor")["name"] = s }),
		ev("/actor/user_agent", func(d map[string]any, s string) { sub(d, "actor")["user_agent"] = s }),
		ev("/resource/id", func(d map[string]any, s string) { sub(d, "resource")["id"] = s }),
		ev("/resource/name", func(d map[string]any, s string) { sub(d, "resource")["name"] = s }),
		ev("/resource/targets/0/name", func(d map[string]any, s string) {
			sub(d, "resource")["targets"] = []any{map[string]any{"type": "repo", "id": "r", "name": s}}
		}),
		ev("/result/reason", func(d map[string]any, s string) { d["result"] = map[string]any{"status": "failure", "reason": s} }),
		ev("/change/diff_summary", func(d map[string]any, s string) { d["change"] = map[string]any{"diff_summary": s} }),
		ev("/change/changed_fields/0", func(d map[string]any, s string) { d["change"] = map[string]any{"changed_fields": []any{s}} }),
		ev("/session/id", func(d map[string]any, s string) { d["session"] = map[string]any{"id": s} }),
		ev("/policy/id", func(d map[string]any, s string) { d["policy"] = map[string]any{"id": s} }),
		ev("/metadata/value", func(d map[string]any, s string) { d["metadata"] = map[string]any{"note": "x " + s} }),
		ev("/metadata/key", func(d map[string]any, s string) { d["metadata"] = map[string]any{s: "v"} }),
		ce("/source", func(c, _ map[string]any, s string) { c["source"] = s }),
		ce("/id", func(c, _ map[string]any, s string) { c["id"] = s }),
		ce("/subject", func(c, _ map[string]any, s string) { c["subject"] = s }),
		ce("/extension", func(c, _ map[string]any, s string) { c["traceparent"] = s }),
		ce("/data/member", func(_, d map[string]any, s string) { d["reason"] = s }),
		ce("/data/object-key", func(_, d map[string]any, s string) { d["details"] = map[string]any{s: 1.0} }),
		ce("/data/actor/id", func(_, d map[string]any, s string) { d["actor"] = map[string]any{"type": "user", "id": s} }),
		hk("/tool_input/value", "PreToolUse", func(p map[string]any, s string) { p["tool_input"] = map[string]any{"command": "run " + s} }),
		hk("/tool_input/key", "PreToolUse", func(p map[string]any, s string) { p["tool_input"] = map[string]any{s: "x"} }),
		hk("/tool_input/nested", "PostToolUse", func(p map[string]any, s string) {
			p["tool_input"] = map[string]any{"env": []any{map[string]any{"v": s}}}
		}),
		hk("/error", "PostToolUseFailure", func(p map[string]any, s string) { p["error"] = "failed: " + s }),
		hk("/reason", "PermissionDenied", func(p map[string]any, s string) { p["reason"] = "denied " + s }),
		hk("/cwd", "PreToolUse", func(p map[string]any, s string) { p["cwd"] = "/w/" + s }),
		hk("/session_id", "PreToolUse", func(p map[string]any, s string) { p["session_id"] = s }),
		hk("/tool_use_id", "PreToolUse", func(p map[string]any, s string) { p["tool_use_id"] = s }),
		hk("/unknown/value", "PreToolUse", func(p map[string]any, s string) { p["new_field"] = s }),
		hk("/unknown/object-key", "PreToolUse", func(p map[string]any, s string) { p["new_object"] = map[string]any{s: true} }),
		hk("/unknown/key", "PreToolUse", func(p map[string]any, s string) { p[s] = "v" }),
		hk("/file_path", "FileChanged", func(p map[string]any, s string) { p["file_path"] = "/w/" + s }),
		hk("/prompt", "UserPromptSubmit", func(p map[string]any, s string) { p["prompt"] = "use " + s }),
	}
}

// TestSecretsNeverStored plants every secret of the corpus in every field position
// of every source: whatever the answer, the secret is in no published byte and in no
// response; an accepted event records where it was redacted.
func TestSecretsNeverStored(t *testing.T) {
	secrets := secretcorpus.Read(t)
	for _, pos := range positions() {
		t.Run(pos.name, func(t *testing.T) {
			for _, sec := range secrets {
				pub := &memPublisher{failAt: -1}
				s := newTestServer(t, pub)
				r := post(t, s, pos.path, pos.token, pos.ctype, pos.body(sec.Text))
				for _, m := range pub.msgs {
					if bytes.Contains(m.Value, []byte(sec.Core)) {
						t.Fatalf("%s: secret stored: %s", sec.Rule, m.Value)
					}
					if !pos.unkept && !bytes.Contains(m.Value, []byte(`"redactions"`)) {
						t.Errorf("%s: stored without a redaction record: %s", sec.Rule, m.Value)
					}
				}
				if bytes.Contains(r.body, []byte(sec.Core)) {
					t.Errorf("%s: secret echoed in the %d answer: %s", sec.Rule, r.code, r.body)
				}
				if r.code >= 500 || (r.code == 200 && len(pub.msgs) == 0) {
					t.Errorf("%s: %d with %d events stored: %s", sec.Rule, r.code, len(pub.msgs), r.body)
				}
				if len(pub.msgs) == 0 && !strings.HasPrefix(pos.name, "events") && !strings.HasPrefix(pos.name, "cloudevents") {
					t.Errorf("%s: hook event refused (%d %s): a hook must never be lost for carrying a secret", sec.Rule, r.code, r.body)
				}
			}
		})
	}
}
