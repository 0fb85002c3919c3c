package otlp

import (
	"cmp"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/source/sourcetext"
)

// claudeEvent is how one claude_code.* event maps: its action, the resource type and
// the attributes that name the resource, first present wins.
type claudeEvent struct {
	action, resource string
	ids              []string
}

// claudeEvents are the events of the monitoring reference
// (https://code.claude.com/docs/en/monitoring-usage, checked 2026-12-01, recorded in
// SOURCES.md). Others become claude_code.<name> on the session: kept, never dropped.
var claudeEvents = map[string]claudeEvent{
	"user_prompt":             {"prompt.submitted", "prompt", []string{"prompt.id", "session.id"}},
	"tool_decision":           {"tool.decided", "", nil},
	"tool_result":             {"tool.result", "", nil},
	"api_request":             {"model.api_request", "model", []string{"model"}},
	"api_error":               {"model.api_error", "model", []string{"model"}},
	"api_refusal":             {"model.api_refusal", "model", []string{"model"}},
	"api_retries_exhausted":   {"model.api_retries_exhausted", "model", []string{"model"}},
	"api_request_body":        {"model.api_request_body", "model", []string{"model"}},
	"api_response_body":       {"model.api_response_body", "model", []string{"model"}},
	"assistant_response":      {"model.response", "session", []string{"session.id"}},
	"permission_mode_changed": {"session.permission_mode_changed", "session", []string{"session.id"}},
	"auth":                    {"user.authenticated", "user", []string{"user.email", "user.account_uuid", "user.id"}},
	"mcp_server_connection":   {"mcp_server.connection_changed", "mcp_server", []string{"mcp_server_name", "server_name", "mcp.server.name"}},
	"plugin_installed":        {"plugin.installed", "plugin", []string{"plugin_name", "plugin.name", "name"}},
	"plugin_loaded":           {"plugin.loaded", "plugin", []string{"plugin_name", "plugin.name", "name"}},
	"skill_activated":         {"skill.activated", "skill", []string{"skill_name", "skill.name", "name"}},
	"hook_registered":         {"hook.registered", "hook", []string{"hook_event", "hook_event_name", "hook_name"}},
	"hook_execution_start":    {"hook.execution_started", "hook", []string{"hook_event", "hook_event_name", "hook_name"}},
	"hook_execution_complete": {"hook.execution_completed", "hook", []string{"hook_event", "hook_event_name", "hook_name"}},
	"subagent_completed":      {"subagent.completed", "subagent", []string{"agent_id", "agent_type"}},
	"compaction":              {"context.compacted", "session", []string{"session.id"}},
	"internal_error":          {"agent.internal_error", "session", []string{"session.id"}},
	"at_mention":              {"prompt.mentioned", "session", []string{"session.id"}},
}

// modelTextEvents carry prompt or model text in their string attributes: kept as
// digests unless the tenant opted in.
var modelTextEvents = map[string]bool{"user_prompt": true, "assistant_response": true, "api_request_body": true, "api_response_body": true}

// decisions maps tool_decision's decision onto approval.decision.
var decisions = map[string]string{"accept": "approved", "reject": "denied"}

func (r *record) claudeCode(name string) {
	r.use("event.name", "event.sequence")
	if seq := r.str("event.sequence"); seq != "" {
		if n, err := strconv.ParseFloat(seq, 64); err == nil {
			r.meta["event_sequence"] = n
		}
	}
	ce, known := claudeEvents[name]
	switch {
	case name == "tool_decision":
		r.toolResource()
		r.toolDecision()
	case name == "tool_result":
		r.toolResource()
		r.toolResult()
	case known:
		id := ""
		for _, a := range ce.ids {
			if id = r.str(a); id != "" {
				break
			}
		}
		r.doc["resource"] = map[string]any{"type": ce.resource, "id": sourcetext.Clip(cmp.Or(id, r.str("session.id"), "unknown"), 256)}
	default:
		ce.action = "claude_code." + snake(name)
		r.doc["resource"] = map[string]any{"type": "session", "id": sourcetext.Clip(cmp.Or(r.str("session.id"), "unknown"), 256)}
	}
	r.doc["action"] = ce.action
	r.numbers("cost_usd", "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "duration_ms", "prompt_length", "status_code", "attempt")
	if modelTextEvents[name] {
		r.modelText()
	}
}

// modelText keeps the text attributes of a prompt or model-text event as digests
// (or, opted in, as redacted text).
func (r *record) modelText() {
	r.attrs.Range(func(k string, v pcommon.Value) bool {
		if r.used[k] || v.Type() != pcommon.ValueTypeStr || isIdentity(k) {
			return true
		}
		s := v.Str()
		if r.o.PromptText {
			r.text(strings.ReplaceAll(k, "/", "_"), s, maxText)
		} else if len(s) > 32 || k == "prompt" {
			r.digest(k, s)
		} else {
			return true
		}
		r.use(k)
		return true
	})
}

func isIdentity(k string) bool {
	return strings.HasPrefix(k, "user.") || strings.HasPrefix(k, "session.") || strings.HasPrefix(k, "prompt.") ||
		strings.HasPrefix(k, "event.") || k == "organization.id" || k == "terminal.type" || k == "model"
}

func (r *record) toolResource() {
	name := r.str("tool_name")
	r.use("tool_name", "tool_use_id")
	typ := "tool"
	if strings.HasPrefix(name, "mcp__") {
		typ = "mcp_tool"
		if parts := strings.SplitN(name, "__", 3); len(parts) == 3 {
			r.meta["mcp_server"] = sourcetext.Clip(parts[1], 256)
			r.meta["mcp_tool"] = sourcetext.Clip(parts[2], 256)
		}
	}
	r.doc["resource"] = map[string]any{"type": typ, "id": sourcetext.Clip(cmp.Or(name, "unknown"), 256)}
	if ts := r.str("tool_source"); ts != "" {
		r.meta["tool_source"] = sourcetext.Clip(ts, 256)
		r.use("tool_source")
	}
}

// toolDecision: who decided (the user for user_* sources, else the configuration or
// a hook) and how.
func (r *record) toolDecision() {
	dec, src := r.str("decision"), r.str("source")
	r.use("decision", "source")
	a := map[string]any{}
	if d, ok := decisions[dec]; ok {
		a["decision"] = d
	} else if dec != "" {
		r.meta["decision"] = sourcetext.Clip(dec, 256)
	}
	if src != "" {
		r.meta["decision_source"] = sourcetext.Clip(src, 256)
		by := src
		if strings.HasPrefix(src, "user_") {
			by, _ = r.doc["actor"].(map[string]any)["id"].(string)
		}
		a["decided_by"] = sourcetext.Clip(cmp.Or(by, src), 256)
	}
	if len(a) > 0 {
		r.doc["approval"] = a
	}
	if p := r.str("tool_parameters"); p != "" {
		r.use("tool_parameters")
		r.meta["tool_parameters_sha256"] = sourcetext.Digest([]byte(p))
		r.text("tool_parameters", p, maxText)
	}
}

func (r *record) toolResult() {
	res := map[string]any{}
	switch strings.ToLower(r.str("success")) {
	case "true":
		res["status"] = "success"
	case "false":
		res["status"] = "failure"
	}
	r.use("success")
	if e := cmp.Or(r.str("error"), r.str("error_type")); e != "" && res["status"] == "failure" {
		red, rules := r.o.Redactor.String(e)
		for _, rule := range rules {
			r.applied = append(r.applied, redact.Applied{Field: "/result/reason", Rule: rule})
		}
		res["reason"] = sourcetext.Truncate(sourcetext.StripControl(red), 1024)
	}
	if d := r.str("duration_ms"); d != "" {
		if n, err := strconv.ParseUint(d, 10, 53); err == nil && res["status"] != nil {
			res["duration_ms"] = float64(n)
			r.use("duration_ms")
		}
	}
	if res["status"] != nil {
		r.doc["result"] = res
	}
	for _, k := range []string{"decision_type", "decision_source"} {
		if v := r.str(k); v != "" {
			r.meta[k] = sourcetext.Clip(v, 256)
			r.use(k)
		}
	}
}

// numbers keeps numeric attributes (sent as strings by Claude Code) as numbers.
func (r *record) numbers(keys ...string) {
	for _, k := range keys {
		s := r.str(k)
		if s == "" || r.used[k] {
			continue
		}
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			r.meta[k] = n
			r.use(k)
		}
	}
}
