package claudecode

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/fixtures"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/source/sourcetext"
)

var testRedactor *redact.Redactor

func redactor(t testing.TB) *redact.Redactor {
	t.Helper()
	if testRedactor == nil {
		r, err := redact.New()
		if err != nil {
			t.Fatal(err)
		}
		testRedactor = r
	}
	return testRedactor
}

// canonical maps, stamps and canonicalises one payload the way ingest does.
func canonical(t testing.TB, raw []byte, o Options) (*event.Event, error) {
	t.Helper()
	p, err := event.Decode(raw, Limits)
	if err != nil {
		return nil, err
	}
	doc, err := Map(p, o)
	if err != nil {
		return nil, err
	}
	st := event.Stamp{Tenant: "acme", Tool: "claude_code", ReceivedAt: time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC), IPKey: []byte("k"), Mapped: true}
	if err := st.Apply(doc); err != nil {
		return nil, err
	}
	ev, _, err := event.Canonicalize(doc, event.DefaultLimits)
	return ev, err
}

func TestFixturesMapToValidEvents(t *testing.T) {
	o := Options{Redactor: redactor(t), Actor: map[string]any{"type": "user", "id": "sarah@acme.example"}}
	byToolUse := map[string]map[string]*event.Event{}
	for _, f := range []string{"claude-code/session-basic.jsonl", "claude-code/session-mcp-subagent.jsonl", "claude-code/param-drift.jsonl"} {
		for i, line := range fixtures.Lines(t, f) {
			ev, err := canonical(t, line, o)
			if err != nil {
				t.Fatalf("%s:%d: %v", f, i+1, err)
			}
			if ev.Source.RawEvent == "" || ev.Session == nil || ev.Session.ID == "" {
				t.Errorf("%s:%d: source/session lost: %+v %+v", f, i+1, ev.Source, ev.Session)
			}
			if ev.Actor.ID != "sarah@acme.example" {
				t.Errorf("%s:%d: actor %+v, want the token's user", f, i+1, ev.Actor)
			}
			if ev.Session.ToolUseID != "" {
				if byToolUse[ev.Session.ToolUseID] == nil {
					byToolUse[ev.Session.ToolUseID] = map[string]*event.Event{}
				}
				byToolUse[ev.Session.ToolUseID][ev.Source.RawEvent] = ev
				if want := event.IdempotencyKey("claude_code", ev.Session.ID, ev.Source.RawEvent, ev.Session.ToolUseID); ev.IdempotencyKey != want {
					t.Errorf("%s:%d: idempotency key %q, want %q", f, i+1, ev.IdempotencyKey, want)
				}
			}
		}
	}
	same := byToolUse["toolu_01QzT4nR8wLp2e"]
	if same["PreToolUse"].Approval.ApprovedParamsDigest != same["PostToolUse"].Approval.ExecutedParamsDigest {
		t.Errorf("Edit: approved and executed digests differ for identical tool_input")
	}
	drift := byToolUse["toolu_03Drf1tA2b3c4d"]
	if drift["PreToolUse"].Approval.ApprovedParamsDigest == drift["PostToolUse"].Approval.ExecutedParamsDigest {
		t.Errorf("param drift: digests equal although the command changed")
	}
	if got := drift["PostToolUse"].Metadata["tool_input"]; got != `{"command":"npm run migrate -- --env production"}` {
		t.Errorf("executed tool_input = %v", got)
	}
	if d := drift["PostToolUse"].Result; d == nil || d.Status != "success" || d.DurationMS == nil || *d.DurationMS != 5120 {
		t.Errorf("result %+v", d)
	}
}

func TestMappingDetails(t *testing.T) {
	o := Options{Redactor: redactor(t)}
	cases := []struct {
		name, payload string
		check         func(t *testing.T, ev *event.Event)
	}{
		{"prompt kept as digest", `{"session_id":"s1","hook_event_name":"UserPromptSubmit","prompt_id":"p1","prompt":"deploy with AKIAZ7QW3RT5YU2PLK4M"}`,
			func(t *testing.T, ev *event.Event) {
				if _, ok := ev.Metadata["prompt"]; ok {
					t.Error("prompt text stored without opt-in")
				}
				if ev.Metadata["prompt_length"] != float64(32) || !strings.HasPrefix(ev.Metadata["prompt_sha256"].(string), "sha256:") {
					t.Errorf("metadata %v", ev.Metadata)
				}
				if ev.Action != "prompt.submitted" || ev.Resource.ID != "p1" {
					t.Errorf("%s %+v", ev.Action, ev.Resource)
				}
			}},
		{"secret in tool_input redacted, digest over the original", `{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t1","tool_input":{"command":"psql postgres://app:Sup3rS3cretPw@db/pay"}}`,
			func(t *testing.T, ev *event.Event) {
				ti := ev.Metadata["tool_input"].(string)
				if strings.Contains(ti, "Sup3rS3cretPw") || !strings.Contains(ti, "[REDACTED:trailkeep-url-password]") {
					t.Errorf("tool_input %s", ti)
				}
				if len(ev.Redactions) != 1 || ev.Redactions[0].Field != "/metadata/tool_input" {
					t.Errorf("redactions %+v", ev.Redactions)
				}
				if ev.Approval.ApprovedParamsDigest != sourcetext.Digest([]byte(`{"command":"psql postgres://app:Sup3rS3cretPw@db/pay"}`)) {
					t.Errorf("digest %s", ev.Approval.ApprovedParamsDigest)
				}
			}},
		{"unknown event kept", `{"session_id":"s1","hook_event_name":"FutureThing","new_field":{"a":1},"flag":true}`,
			func(t *testing.T, ev *event.Event) {
				if ev.Action != "hook.future_thing" || ev.Source.RawEvent != "FutureThing" || ev.Resource.Type != "session" {
					t.Errorf("%s %+v %+v", ev.Action, ev.Source, ev.Resource)
				}
				if ev.Metadata["x.new_field"] != `{"a":1}` || ev.Metadata["x.flag"] != true {
					t.Errorf("metadata %v", ev.Metadata)
				}
			}},
		{"mcp tool", `{"session_id":"s1","hook_event_name":"PostToolUseFailure","tool_name":"mcp__github__create_issue","tool_use_id":"t2","tool_input":{},"error":"boom\u0007"}`,
			func(t *testing.T, ev *event.Event) {
				if ev.Resource.Type != "mcp_tool" || ev.Metadata["mcp_server"] != "github" || ev.Result.Status != "failure" || ev.Result.Reason != "boom" {
					t.Errorf("%+v %v %+v", ev.Resource, ev.Metadata, ev.Result)
				}
			}},
		{"subagent without user token", `{"session_id":"s1","hook_event_name":"SubagentStart","agent_id":"agent_1","agent_type":"reviewer"}`,
			func(t *testing.T, ev *event.Event) {
				if ev.Actor.Type != "subagent" || ev.Actor.ID != "agent_1" || ev.Resource.ID != "agent_1" {
					t.Errorf("%+v %+v", ev.Actor, ev.Resource)
				}
			}},
		{"huge tool_input truncated", `{"session_id":"s1","hook_event_name":"PreToolUse","tool_name":"Write","tool_use_id":"t3","tool_input":{"content":"` + strings.Repeat("x", 20000) + `"}}`,
			func(t *testing.T, ev *event.Event) {
				if ev.Metadata["tool_input_truncated"] != true || len(ev.Metadata["tool_input"].(string)) > 8192 {
					t.Errorf("not truncated: %d", len(ev.Metadata["tool_input"].(string)))
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := canonical(t, []byte(c.payload), o)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, ev)
		})
	}
}

func TestPromptOptIn(t *testing.T) {
	ev, err := canonical(t, []byte(`{"session_id":"s1","hook_event_name":"UserPromptSubmit","prompt":"use token ghp_R9xq2Lm7Vb4Tz8Yk1Wc6Nd3Fp5Hs0Ja2Ue7Q"}`), Options{Redactor: redactor(t), PromptText: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := ev.Metadata["prompt"].(string); p != "use token [REDACTED:github-pat]" {
		t.Errorf("prompt %q", p)
	}
}

func TestBadPayloads(t *testing.T) {
	cases := map[string]string{
		`{"session_id": "s", "cwd": "/"}`:                                                     "/hook_event_name required",
		`{"session_id":"s","hook_event_name":"PreToolUse","tool_name":42}`:                    "/tool_name type",
		`{"hook_event_name":"Stop"}`:                                                          "/session_id required",
		`{"session_id":"s","hook_event_name":"PostToolUse","tool_name":"x","duration_ms":-1}`: "/duration_ms type",
		`{"session_id":"s","hook_event_name":7}`:                                              "/hook_event_name type",
	}
	for payload, want := range cases {
		_, err := canonical(t, []byte(payload), Options{Redactor: redactor(t)})
		var ve *event.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%s: %v", payload, err)
		}
		found := false
		for _, fe := range ve.Errors {
			found = found || fe.Field+" "+fe.Rule == want
		}
		if !found {
			t.Errorf("%s: %v, want %s", payload, ve, want)
		}
	}
	for _, b := range fixtures.BadInputs(t) {
		if _, err := canonical(t, b.Body, Options{Redactor: redactor(t)}); err == nil {
			t.Errorf("bad fixture %s accepted", b.Name)
		}
	}
}

// TestModelTextIsDigestOnly: every field that carries prompt or model text — the
// modelText table, the Agent tool's prompt, PostToolBatch responses, long unknown
// strings — is stored as a digest by default and as (redacted) text only on opt-in.
func TestModelTextIsDigestOnly(t *testing.T) {
	const secretText = "the model said: refactor payments with care, token ZZTOPSECRETPROSE"
	long := strings.Repeat("prose ", 60) + "ZZTOPSECRETPROSE"
	for _, tc := range []struct {
		name, payload string
		optInKeeps    bool // the text is stored when the tenant opted in
	}{
		{"UserPromptSubmit prompt", `{"session_id":"s","hook_event_name":"UserPromptSubmit","prompt":"` + secretText + `"}`, true},
		{"UserPromptExpansion command_args", `{"session_id":"s","hook_event_name":"UserPromptExpansion","command_name":"review","command_args":"` + secretText + `"}`, true},
		{"Stop last_assistant_message", `{"session_id":"s","hook_event_name":"Stop","last_assistant_message":"` + secretText + `"}`, true},
		{"SubagentStop last_assistant_message", `{"session_id":"s","hook_event_name":"SubagentStop","agent_id":"a1","last_assistant_message":"` + secretText + `"}`, true},
		{"MessageDisplay delta", `{"session_id":"s","hook_event_name":"MessageDisplay","delta":"` + secretText + `"}`, true},
		{"PostCompact compact_summary", `{"session_id":"s","hook_event_name":"PostCompact","trigger":"auto","compact_summary":"` + secretText + `"}`, true},
		{"PreCompact custom_instructions", `{"session_id":"s","hook_event_name":"PreCompact","trigger":"manual","custom_instructions":"` + secretText + `"}`, true},
		{"Agent tool prompt", `{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Agent","tool_use_id":"t1","tool_input":{"description":"d","prompt":"` + secretText + `"}}`, true},
		{"PostToolBatch responses", `{"session_id":"s","hook_event_name":"PostToolBatch","tool_calls":[{"tool_name":"Read","tool_use_id":"t1","tool_input":{"file_path":"/a"},"tool_response":"` + secretText + `"},{"tool_name":"Bash","tool_use_id":"t2","tool_input":{"command":"ls"},"tool_response":"second"}]}`, false},
		{"unknown long string", `{"session_id":"s","hook_event_name":"TaskCreated","task_id":"k1","task_description":"` + long + `"}`, false},
		{"unknown object with long text", `{"session_id":"s","hook_event_name":"TaskCreated","task_id":"k1","schedule":{"prompt":"` + long + `","cron":"0 9 * * 1"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, optIn := range []bool{false, true} {
				p, err := event.Decode([]byte(tc.payload), Limits)
				if err != nil {
					t.Fatal(err)
				}
				doc, err := Map(p, Options{Redactor: redactor(t), PromptText: optIn})
				if err != nil {
					t.Fatal(err)
				}
				canon, err := event.AppendCanonical(nil, doc)
				if err != nil {
					t.Fatal(err)
				}
				kept := strings.Contains(string(canon), "ZZTOPSECRETPROSE")
				if want := optIn && tc.optInKeeps; kept != want {
					t.Errorf("opt-in %v: text kept %v, want %v: %s", optIn, kept, want, canon)
				}
				if !strings.Contains(string(canon), "sha256:") {
					t.Errorf("opt-in %v: no digest stored: %s", optIn, canon)
				}
			}
		})
	}
}

func TestPostToolBatchKeepsEveryCall(t *testing.T) {
	calls := make([]string, 20)
	for i := range calls {
		calls[i] = fmt.Sprintf(`{"tool_name":"Bash","tool_use_id":"toolu_%02d","tool_input":{"command":"echo %d"},"tool_response":"%s"}`, i, i, strings.Repeat("r", 2000))
	}
	ev, err := canonical(t, []byte(`{"session_id":"s","hook_event_name":"PostToolBatch","tool_calls":[`+strings.Join(calls, ",")+`]}`), Options{Redactor: redactor(t)})
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(ev.Metadata["tool_calls"].(string)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || ev.Metadata["tool_calls_count"] != 20.0 {
		t.Fatalf("%d calls kept, count %v; want 20", len(got), ev.Metadata["tool_calls_count"])
	}
	for i, c := range got {
		if c["tool_use_id"] != fmt.Sprintf("toolu_%02d", i) || c["tool_response_sha256"] == nil || c["tool_input_sha256"] == nil || c["tool_response_bytes"] != 2002.0 {
			t.Errorf("call %d: %v", i, c)
		}
	}
}
