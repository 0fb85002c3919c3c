package otlp

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/trailkeep/trailkeep/internal/fixtures"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/source/sourcetext"
)

var sharedRedactor = sync.OnceValues(redact.New)

func redactor(t testing.TB) *redact.Redactor {
	t.Helper()
	r, err := sharedRedactor()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fixtureLogs(t testing.TB) plog.Logs {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtures.Dir(t), "otlp", "claude-code-logs.json"))
	if err != nil {
		t.Fatal(err)
	}
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	return req.Logs()
}

// canonicalAll maps, stamps and canonicalises every record the way ingest does.
func canonicalAll(t testing.TB, logs plog.Logs, o Options) []*event.Event {
	t.Helper()
	var out []*event.Event
	for i, it := range Map(logs, o) {
		if it.Err != nil {
			t.Fatalf("record %d: %v", i, it.Err)
		}
		if it.Skipped {
			out = append(out, nil)
			continue
		}
		st := event.Stamp{Tenant: "acme", Tool: "claude_code", ReceivedAt: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), Mapped: true}
		if err := st.Apply(it.Doc); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		o.Redactor.Document(it.Doc)
		ev, _, err := event.Canonicalize(it.Doc, event.DefaultLimits)
		if err != nil {
			t.Fatalf("record %d: %v (%v)", i, err, it.Doc)
		}
		out = append(out, ev)
	}
	return out
}

func TestClaudeCodeFixture(t *testing.T) {
	evs := canonicalAll(t, fixtureLogs(t), Options{Redactor: redactor(t)})
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4", len(evs))
	}
	prompt, decision, result, cfg := evs[0], evs[1], evs[2], evs[3]
	if prompt.Action != "prompt.submitted" || prompt.Session.PromptID == "" || prompt.Metadata["prompt_length"] != 41.0 {
		t.Errorf("user_prompt: %+v", prompt)
	}
	if decision.Action != "tool.decided" || decision.Resource.ID != "Edit" || decision.Approval == nil ||
		decision.Approval.Decision != "approved" || decision.Approval.DecidedBy != "sarah@acme.example" ||
		decision.Session.ToolUseID != "toolu_01QzT4nR8wLp2e" || decision.Metadata["decision_source"] != "user_temporary" {
		t.Errorf("tool_decision: %+v %+v", decision, decision.Approval)
	}
	if decision.Actor.ID != "sarah@acme.example" || decision.Metadata["otel.organization.id"] != "org_5b2e7c" || decision.Source.Channel != "otlp_logs" ||
		decision.Source.RawEvent != "claude_code.tool_decision" || decision.Source.ToolVersion != "2.1.240" {
		t.Errorf("identity/source: %+v %+v", decision.Actor, decision.Source)
	}
	if result.Action != "tool.result" || result.Result == nil || result.Result.Status != "success" || result.Result.DurationMS == nil || *result.Result.DurationMS != 11 {
		t.Errorf("tool_result: %+v", result.Result)
	}
	if cfg.Approval == nil || cfg.Approval.DecidedBy != "config" {
		t.Errorf("config decision: %+v", cfg.Approval)
	}
	if got := decision.OccurredAt.UTC().Format(time.RFC3339); !strings.HasPrefix(got, "2026-11-20") {
		t.Errorf("occurred_at %s, want event.timestamp", got)
	}
}

// logRecord builds one Claude Code-shaped log record.
func logRecord(name string, attrs map[string]any) plog.Logs {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "claude-code")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("com.anthropic.claude_code.events")
	lr := sl.LogRecords().AppendEmpty()
	lr.Body().SetStr("claude_code." + name)
	lr.Attributes().PutStr("event.name", name)
	lr.Attributes().PutStr("session.id", "s1")
	lr.Attributes().FromRaw(merge(lr.Attributes().AsRaw(), attrs))
	return logs
}

func merge(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}

func TestEventsOfTheReference(t *testing.T) {
	for _, tc := range []struct {
		name, action, resType, resID string
		attrs                        map[string]any
	}{
		{"api_request", "model.api_request", "model", "claude-sonnet-4", map[string]any{"model": "claude-sonnet-4", "cost_usd": "0.0123", "input_tokens": "1200"}},
		{"api_error", "model.api_error", "model", "claude-sonnet-4", map[string]any{"model": "claude-sonnet-4", "error": "overloaded", "status_code": "529"}},
		{"permission_mode_changed", "session.permission_mode_changed", "session", "s1", map[string]any{"mode": "plan"}},
		{"auth", "user.authenticated", "user", "sarah@acme.example", map[string]any{"user.email": "sarah@acme.example"}},
		{"mcp_server_connection", "mcp_server.connection_changed", "mcp_server", "jira", map[string]any{"mcp_server_name": "jira", "status": "connected"}},
		{"plugin_installed", "plugin.installed", "plugin", "linter", map[string]any{"plugin_name": "linter"}},
		{"skill_activated", "skill.activated", "skill", "api-conventions", map[string]any{"skill_name": "api-conventions"}},
		{"hook_registered", "hook.registered", "hook", "PreToolUse", map[string]any{"hook_event": "PreToolUse"}},
		{"hook_execution_complete", "hook.execution_completed", "hook", "PreToolUse", map[string]any{"hook_event": "PreToolUse"}},
		{"subagent_completed", "subagent.completed", "subagent", "agent-1", map[string]any{"agent_id": "agent-1"}},
		{"feedback_survey", "claude_code.feedback_survey", "session", "s1", map[string]any{"rating": "good"}},
		{"a_new_event_of_2027", "claude_code.a_new_event_of_2027", "session", "s1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := canonicalAll(t, logRecord(tc.name, tc.attrs), Options{Redactor: redactor(t)})[0]
			if ev.Action != tc.action || ev.Resource.Type != tc.resType || ev.Resource.ID != tc.resID {
				t.Errorf("%s %s/%s, want %s %s/%s", ev.Action, ev.Resource.Type, ev.Resource.ID, tc.action, tc.resType, tc.resID)
			}
		})
	}
}

func TestPromptTextIsDigestOnly(t *testing.T) {
	const text = "refactor the refunds module and keep ZZPROSE intact"
	for _, optIn := range []bool{false, true} {
		for _, name := range []string{"user_prompt", "assistant_response", "api_request_body"} {
			ev := canonicalAll(t, logRecord(name, map[string]any{"prompt": text, "body": text, "response": text}), Options{Redactor: redactor(t), PromptText: optIn})[0]
			canon, _ := event.AppendCanonical(nil, ev.Metadata)
			if kept := strings.Contains(string(canon), "ZZPROSE"); kept != optIn {
				t.Errorf("%s opt-in %v: text kept %v: %s", name, optIn, kept, canon)
			}
		}
	}
}

func TestTokenActorIsAuthoritative(t *testing.T) {
	actor := map[string]any{"type": "user", "id": "sarah@acme.example", "email": "sarah@acme.example"}
	ev := canonicalAll(t, logRecord("tool_decision", map[string]any{"user.email": "mallory@evil.example", "organization.id": "org_other",
		"tool_name": "Bash", "tool_use_id": "t1", "decision": "accept", "source": "user_permanent"}), Options{Redactor: redactor(t), Actor: actor})[0]
	if ev.Actor.ID != "sarah@acme.example" || ev.Metadata["otel.user.email_mismatch"] != true || ev.Metadata["otel.user.email"] != "mallory@evil.example" ||
		ev.Metadata["otel.organization.id"] != "org_other" || ev.Tenant != "acme" {
		t.Errorf("actor %+v metadata %v", ev.Actor, ev.Metadata)
	}
}

func TestMCPGatewayToolCall(t *testing.T) {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "mcp-gateway")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Attributes().FromRaw(map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.name": "create_issue", "mcp.server.name": "jira",
		"mcp.session.id": "ms-1", "gen_ai.tool.call.id": "call-7", "gen_ai.tool.call.arguments": `{"project":"PAY","title":"x"}`})
	ev := canonicalAll(t, logs, Options{Redactor: redactor(t)})[0]
	want := "sha256:" + sha(`{"project":"PAY","title":"x"}`)
	if ev.Action != "tool.executed" || ev.Resource.Type != "mcp_tool" || ev.Resource.ID != "create_issue" || ev.Session.ID != "ms-1" ||
		ev.Session.ToolUseID != "call-7" || ev.Approval == nil || ev.Approval.ExecutedParamsDigest != want || ev.Metadata["mcp_server"] != "jira" {
		t.Errorf("%+v %+v %+v", ev, ev.Session, ev.Approval)
	}
}

func TestSampling(t *testing.T) {
	items := Map(logRecord("api_request", map[string]any{"model": "m"}), Options{Redactor: redactor(t),
		Keep: func(name string, _ plog.LogRecord) bool { return name != "api_request" }})
	if len(items) != 1 || !items[0].Skipped {
		t.Fatalf("%+v", items)
	}
}

func sha(s string) string { return strings.TrimPrefix(sourcetext.Digest([]byte(s)), "sha256:") }
