// Package claudecode maps Claude Code hook payloads (http hooks, or the curl command
// used for SessionStart/Setup) onto canonical trailkeep events.
//
// Mapping rules, in short:
//
//   - source: tool from the token (claude_code), channel "http_hook", raw_event = the
//     hook_event_name verbatim. Unknown hook events are kept: action
//     "hook.<snake_case name>", resource the session.
//   - session: session_id, prompt_id, tool_use_id, agent_id.
//   - Tool events: resource {type: tool | mcp_tool, id: tool_name}. PreToolUse and
//     PermissionRequest carry approval.approved_params_digest, PostToolUse and
//     PostToolUseFailure approval.executed_params_digest: "sha256:" + SHA-256 of the
//     RFC 8785 form of tool_input as the agent sent it (before redaction), so the
//     approved-vs-executed check compares exactly what ran. The redacted tool_input is
//     kept as canonical JSON text in metadata.tool_input (truncated past 8 KiB with
//     metadata.tool_input_truncated = true; the digest always covers the full input).
//   - PermissionRequest carries no tool_use_id. It is bound to its PreToolUse and
//     PostToolUse by session.id + session.prompt_id + approval.approved_params_digest:
//     the same tool_input in the same turn has the same digest.
//   - Events (events.go) lists every hook event of the reference with its action and
//     resource: tasks by task_id, worktrees by worktree_path, elicitations by MCP
//     server, model switches by requested_model; and which events an observe-only
//     hook must not be registered for.
//   - Prompt and model text (modelText) is stored as SHA-256 digest + length; the
//     text itself only when the tenant opted in (Options.PromptText), redacted.
//   - tool_response is never stored, only its digest and length: it can hold whole
//     files, and what ran is tool_input.
//   - Unknown top-level fields are kept in metadata (scalars as-is, objects as
//     canonical JSON, each at most 1 KiB, strings over 256 characters as digests) so a
//     newer Claude Code loses nothing silently; fields sent as null are listed in
//     metadata.null_fields; past the metadata limit unknown fields are counted in
//     x.dropped_fields instead of costing the event.
//
// The idempotency key is [event.IdempotencyKey] of session_id, hook_event_name and
// tool_use_id where the payload has a tool_use_id; other hook events have no natural
// key and get none.
package claudecode

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/source/sourcetext"
)

// Limits for hook payloads. They are larger than a canonical event's because
// tool_response may carry a whole file; only digests of it are kept.
var Limits = event.Limits{MaxEventBytes: 1 << 20, MaxDepth: 32}

// Options carry what the token and tenant settings decide about one payload.
type Options struct {
	// Actor is the identity bound to the sender's token ({"type":"user","id":...}).
	// Claude Code payloads carry no user identity, so per-user tokens are how a
	// human is attributed. Nil attributes the event to the agent session.
	Actor map[string]any
	// ClientIP is the sender's address; it becomes actor.ip and is replaced by its
	// per-tenant HMAC when the event is stamped. Empty leaves it out.
	ClientIP string
	// PromptText keeps (redacted) prompt text; otherwise only digest and length.
	PromptText bool
	// Redactor masks secrets in everything kept as text. Required.
	Redactor *redact.Redactor
}

// actions maps hook event names to their action and resource (from Events); anything
// else is kept as hook.<name>.
var actions = func() map[string]struct{ action, resource string } {
	m := make(map[string]struct{ action, resource string }, len(Events))
	for _, e := range Events {
		m[e.Name] = struct{ action, resource string }{e.Action, e.Resource}
	}
	return m
}()

// Fields the mapping consumes; everything else is an unknown field kept in metadata.
var consumed = func() map[string]bool {
	m := map[string]bool{
		"session_id": true, "hook_event_name": true, "prompt_id": true, "tool_use_id": true,
		"agent_id": true, "tool_name": true, "tool_input": true, "tool_response": true,
		"duration_ms": true, "error": true, "reason": true, "effort": true, "tool_calls": true,
		"mcp_server": true,
	}
	for _, k := range modelText {
		m[k] = true
	}
	return m
}()

// modelText lists the payload fields that carry prompt or model text, from the hooks
// reference (https://code.claude.com/docs/en/hooks, checked 2026-12-01, recorded in
// SOURCES.md): the user's prompt (UserPromptSubmit), the arguments typed after a
// /command (UserPromptExpansion), Claude's last message (Stop, SubagentStop), streamed
// assistant text (MessageDisplay), the compaction summary and the instructions given
// for it (PostCompact, PreCompact). They are stored as SHA-256 + length only, unless
// the tenant opted in to prompt text (then redacted text). Unknown fields longer than
// maxUnknownText get the same treatment, so a field added by a newer Claude Code
// cannot bring model text in under the default.
var modelText = []string{"prompt", "command_args", "last_assistant_message", "delta", "compact_summary", "custom_instructions"}

// promptTools are tools whose input carries a prompt written by or for the model (the
// Agent tool, formerly Task): their tool_input.prompt is digest-only like modelText.
var promptTools = map[string]bool{"Agent": true, "Task": true}

// maxUnknownText is the longest string of an unknown field kept as text; longer ones
// are likely prose (model output, prompts) and are kept as digest + length.
const maxUnknownText = 256

// Metadata keys copied verbatim (after redaction) when present as scalars.
var passthrough = []string{
	"cwd", "transcript_path", "permission_mode", "model", "agent_type", "source",
	"notification_type", "message", "expansion_type", "command_name",
	"command_source", "file_path", "is_interrupt", "stop_hook_active",
	"agent_transcript_path", "title",
}

const (
	maxText      = sourcetext.MaxText
	maxUnknown   = 1024 // per unknown field, so many of them still fit one event
	maxReason    = 1024 // result.reason limit (text1k)
	maxMetaKeys  = sourcetext.MaxMetaKeys
	toolInputKey = "tool_input"
)

// Map converts one decoded hook payload into a canonical event document, ready for
// event.Stamp. Errors are *event.ValidationError naming the payload field.
func Map(p map[string]any, o Options) (map[string]any, error) {
	m := &mapper{p: p, o: o, doc: map[string]any{}, meta: map[string]any{}}
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.identity()
	m.actionAndResource()
	if err := m.toolInput(); err != nil {
		return nil, err
	}
	m.result()
	m.texts()
	m.unknownFields()
	m.nullFields()
	m.mcpServer()
	fitMetadata(m.meta)
	if len(m.meta) > 0 {
		m.doc["metadata"] = m.meta
	}
	redact.Record(m.doc, m.applied)
	if m.toolUseID != "" {
		m.doc["idempotency_key"] = event.IdempotencyKey("claude_code", m.sessionID, m.name, m.toolUseID)
	}
	return m.doc, nil
}

// mapper is one payload's mapping in progress: Map runs its steps in order.
type mapper struct {
	p       map[string]any
	o       Options
	doc     map[string]any
	meta    map[string]any
	applied []redact.Applied

	name, sessionID, promptID, toolUseID, agentID, toolName string
	act                                                     struct{ action, resource string }
	known                                                   bool
}

// validate reads the identifying fields and rejects a payload whose fields have the
// wrong type, naming every bad field.
func (m *mapper) validate() error {
	p := m.p
	var errs []event.FieldError
	str := func(key string, required bool) string {
		v, ok := p[key]
		if !ok || v == nil {
			if required {
				errs = append(errs, event.FieldError{Field: "/" + key, Rule: "required", Message: "missing; every Claude Code hook payload has " + key})
			}
			return ""
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, event.FieldError{Field: "/" + key, Rule: "type", Limit: "string", Message: "must be a string"})
			return ""
		}
		if required && s == "" {
			errs = append(errs, event.FieldError{Field: "/" + key, Rule: "minLength", Limit: "1", Message: "must not be empty"})
		}
		return s
	}
	m.name = str("hook_event_name", true)
	m.sessionID = str("session_id", true)
	m.promptID = str("prompt_id", false)
	m.toolUseID = str("tool_use_id", false)
	m.agentID = str("agent_id", false)
	m.act, m.known = actions[m.name]
	m.toolName = str("tool_name", m.known && m.act.resource == "")
	for _, k := range passthrough {
		if v, ok := p[k]; ok {
			switch v.(type) {
			case string, bool, float64:
			default:
				errs = append(errs, event.FieldError{Field: "/" + k, Rule: "type", Limit: "string", Message: "must be a string, number or boolean"})
			}
		}
	}
	if d, ok := p["duration_ms"]; ok {
		if f, isNum := d.(float64); !isNum || f < 0 || f != float64(int64(f)) {
			errs = append(errs, event.FieldError{Field: "/duration_ms", Rule: "type", Limit: "integer", Message: "must be a non-negative integer"})
		}
	}
	if len(errs) > 0 {
		return &event.ValidationError{Errors: errs}
	}
	return nil
}

// keep redacts text bound for field ptr. Every string is redacted before it is cut
// to its limit: cutting first could leave the head of a secret that no rule matches
// any more.
func (m *mapper) keep(ptr, v string) string {
	red, rules := m.o.Redactor.String(v)
	for _, r := range rules {
		m.applied = append(m.applied, redact.Applied{Field: ptr, Rule: r})
	}
	return red
}

// text stores redacted, truncated text under metadata key.
func (m *mapper) text(key string, v string, limit int) {
	m.meta[key] = sourcetext.Truncate(m.keep("/metadata/"+key, v), limit)
}

// identity sets source, session and actor.
func (m *mapper) identity() {
	m.doc["source"] = map[string]any{"channel": "http_hook", "raw_event": sourcetext.Clip(m.name, 256)}
	session := map[string]any{"id": m.sessionID}
	if m.promptID != "" {
		session["prompt_id"] = m.promptID
	}
	if m.toolUseID != "" {
		session["tool_use_id"] = m.toolUseID
	}
	if m.agentID != "" {
		session["agent_id"] = m.agentID
	}
	m.doc["session"] = session
	var actor map[string]any
	switch {
	case m.o.Actor != nil:
		actor = make(map[string]any, len(m.o.Actor)+1)
		for k, v := range m.o.Actor {
			actor[k] = v
		}
	case m.agentID != "":
		actor = map[string]any{"type": event.ActorSubagent, "id": m.agentID}
	default:
		actor = map[string]any{"type": event.ActorAgent, "id": "claude-code:" + m.sessionID}
	}
	if m.o.ClientIP != "" {
		actor["ip"] = m.o.ClientIP
	}
	m.doc["actor"] = actor
}

// actionAndResource names what happened and to what.
func (m *mapper) actionAndResource() {
	p, sessionID := m.p, m.sessionID
	if m.known {
		m.doc["action"] = m.act.action
	} else {
		m.doc["action"] = "hook." + snake(m.name)
	}
	resType, resID := m.act.resource, ""
	switch resType {
	case "":
		if m.known {
			resType, resID = "tool", m.toolName
			if strings.HasPrefix(m.toolName, "mcp__") {
				resType = "mcp_tool"
				if parts := strings.SplitN(m.toolName, "__", 3); len(parts) == 3 {
					m.meta["mcp_server"] = parts[1]
					m.meta["mcp_tool"] = parts[2]
				}
			}
		} else {
			resType, resID = "session", sessionID
		}
	case "session":
		resID = sessionID
	case "prompt":
		resID = cmp.Or(m.promptID, sessionID)
	case "command":
		resID = cmp.Or(stringOf(p["command_name"]), m.name)
	case "notification":
		resID = cmp.Or(stringOf(p["notification_type"]), "notification")
	case "subagent":
		resID = cmp.Or(m.agentID, stringOf(p["agent_type"]), sessionID)
	case "config", "instructions", "file":
		resID = cmp.Or(stringOf(p["file_path"]), stringOf(p["source"]), sessionID)
	case "task":
		resID = cmp.Or(stringOf(p["task_id"]), sessionID)
	case "worktree":
		resID = cmp.Or(stringOf(p["worktree_path"]), stringOf(p["base_path"]), sessionID)
	case "elicitation":
		resID = cmp.Or(stringOf(p["elicitation_id"]), stringOf(p["mcp_server_name"]), sessionID)
	case "model":
		resID = cmp.Or(stringOf(p["requested_model"]), stringOf(p["model"]), "unknown")
	case "directory":
		resID = cmp.Or(stringOf(p["directory"]), stringOf(p["path"]), sessionID)
	default:
		resID = sessionID
	}
	if !m.known && m.toolName != "" {
		m.meta["tool_name"] = m.toolName
	}
	m.doc["resource"] = map[string]any{"type": resType, "id": sourcetext.Clip(m.keep("/resource/id", resID), 256)}
}

// toolInput keeps the digest of what the agent sent (approved or executed, for the
// approvals report) and its redacted text for humans; of the response, its digest.
func (m *mapper) toolInput() error {
	p, meta := m.p, m.meta
	if ti, ok := p["tool_input"]; ok {
		canon, err := event.AppendCanonical(nil, ti)
		if err != nil {
			return &event.ValidationError{Errors: []event.FieldError{{Field: "/tool_input", Rule: event.RuleNumber, Message: err.Error()}}}
		}
		digest := sourcetext.Digest(canon)
		approval := map[string]any{}
		switch m.name {
		case "PreToolUse":
			approval["approved_params_digest"] = digest
		case "PermissionRequest":
			approval["approved_params_digest"] = digest
			approval["decision"] = "pending"
		case "PermissionDenied":
			approval["approved_params_digest"] = digest
			approval["decision"] = "denied"
		case "PostToolUse", "PostToolUseFailure":
			approval["executed_params_digest"] = digest
		default:
			meta["tool_input_sha256"] = digest
		}
		if len(approval) > 0 {
			m.doc["approval"] = approval
		}
		if promptTools[m.toolName] && !m.o.PromptText {
			ti = digestPrompt(ti, meta)
		}
		red, app := m.o.Redactor.Value(ti, "/metadata/"+toolInputKey)
		for i := range app {
			// Field pointers inside the JSON text are kept for the reader; the stored
			// field is the metadata string itself.
			app[i].Field = "/metadata/" + toolInputKey
		}
		m.applied = append(m.applied, app...)
		redCanon, _ := event.AppendCanonical(nil, red)
		if len(redCanon) > maxText {
			meta["tool_input_truncated"] = true
		}
		meta[toolInputKey] = sourcetext.Truncate(string(redCanon), maxText)
	}
	if tr, ok := p["tool_response"]; ok {
		canon, err := event.AppendCanonical(nil, tr)
		if err == nil {
			meta["tool_response_sha256"] = sourcetext.Digest(canon)
			meta["tool_response_bytes"] = float64(len(canon))
		}
	}
	return nil
}

// result records how a tool call or turn ended, with its duration.
func (m *mapper) result() {
	p, name := m.p, m.name
	switch name {
	case "PostToolUse":
		m.doc["result"] = map[string]any{"status": event.StatusSuccess}
	case "PostToolUseFailure", "StopFailure":
		r := map[string]any{"status": event.StatusFailure}
		if e := stringOf(p["error"]); e != "" {
			r["reason"] = sourcetext.Truncate(sourcetext.StripControl(m.keep("/result/reason", e)), maxReason)
		}
		m.doc["result"] = r
	case "PermissionDenied":
		r := map[string]any{"status": event.StatusDenied}
		if e := stringOf(p["reason"]); e != "" {
			r["reason"] = sourcetext.Truncate(sourcetext.StripControl(m.keep("/result/reason", e)), maxReason)
		}
		m.doc["result"] = r
	}
	if d, ok := p["duration_ms"].(float64); ok {
		r, _ := m.doc["result"].(map[string]any)
		if r == nil {
			m.meta["duration_ms"] = d
		} else {
			r["duration_ms"] = d
		}
	}
	if r := stringOf(p["reason"]); r != "" && name != "PermissionDenied" {
		m.text("reason", r, maxText)
	}
	if e := stringOf(p["error"]); e != "" && m.doc["result"] == nil {
		m.text("error", e, maxText)
	}
}

// texts keeps prompt and model text as digest and length unless opted in, and the
// known scalar fields.
func (m *mapper) texts() {
	p, meta := m.p, m.meta
	for _, k := range modelText {
		v, ok := p[k].(string)
		if !ok {
			continue
		}
		meta[k+"_sha256"] = sourcetext.Digest([]byte(v))
		meta[k+"_length"] = float64(utf8.RuneCountInString(v))
		if m.o.PromptText {
			m.text(k, v, maxText)
		}
	}
	if calls, ok := p["tool_calls"].([]any); ok {
		meta["tool_calls"] = summarizeCalls(calls)
		meta["tool_calls_count"] = float64(len(calls))
	}
	if eff, ok := p["effort"].(map[string]any); ok {
		if lvl, ok := eff["level"].(string); ok && lvl != "" {
			meta["effort_level"] = sourcetext.Clip(lvl, 256)
		}
	}
	for _, k := range passthrough {
		switch v := p[k].(type) {
		case string:
			if v != "" {
				key := k
				if k == "source" {
					key = "hook_source" // SessionStart/ConfigChange source, not the event source
				}
				m.text(key, v, maxText)
			}
		case bool, float64:
			meta[k] = v
		}
	}
}

// unknownFields keeps fields this mapper does not know, redacted and bounded, in a
// stable order so the output is deterministic; what does not fit is counted.
func (m *mapper) unknownFields() {
	p, meta := m.p, m.meta
	var unknown []string
	for k := range p {
		if !consumed[k] && !slices.Contains(passthrough, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	dropped := 0
	for _, k := range unknown {
		key := "x." + k
		if len(meta) >= maxMetaKeys-2 || !sourcetext.MetaKey.MatchString(key) {
			dropped++
			continue
		}
		switch v := p[k].(type) {
		case nil:
		case bool, float64:
			meta[key] = v
		case string:
			switch {
			case v == "":
			case utf8.RuneCountInString(v) > maxUnknownText:
				meta[key+"_sha256"] = sourcetext.Digest([]byte(v))
				meta[key+"_length"] = float64(utf8.RuneCountInString(v))
			default:
				m.text(key, v, maxUnknown)
			}
		default:
			red, app := m.o.Redactor.Value(digestLongText(v), "/metadata/"+key)
			for i := range app {
				app[i].Field = "/metadata/" + key
			}
			m.applied = append(m.applied, app...)
			canon, err := event.AppendCanonical(nil, red)
			if err != nil {
				dropped++
				continue
			}
			meta[key] = sourcetext.Truncate(string(canon), maxUnknown)
		}
	}
	if dropped > 0 {
		meta["x.dropped_fields"] = float64(dropped)
	}
}

// nullFields keeps the names of fields sent as null (the reference documents some,
// e.g. PreModelSwitch's requested_model): a null says something a missing field does
// not.
func (m *mapper) nullFields() {
	var nulls []string
	for k, v := range m.p {
		if v == nil {
			nulls = append(nulls, k)
		}
	}
	if len(nulls) > 0 {
		sort.Strings(nulls)
		m.meta["null_fields"] = sourcetext.Truncate(m.keep("/metadata/null_fields", strings.Join(nulls, ",")), maxUnknown)
	}
}

// mcpServer keeps the payload's mcp_server{name, source} (MCP tool calls) beside the
// server named by the tool (mcp__<server>__<tool>), never in its place.
func (m *mapper) mcpServer() {
	if srv, ok := m.p["mcp_server"].(map[string]any); ok {
		for _, k := range []string{"name", "source"} {
			if v, ok := srv[k].(string); ok && v != "" {
				m.meta["mcp_server_"+k] = sourcetext.Truncate(m.keep("/metadata/mcp_server_"+k, v), 256)
			}
		}
	}
}

// snake turns a CamelCase hook name into a valid action segment (lower snake case
// starting with a letter).
func snake(name string) string {
	var b strings.Builder
	for i, r := range name {
		switch {
		case unicode.IsUpper(r) && r < utf8.RuneSelf:
			if i > 0 && b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		case (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
				b.WriteByte('_')
			}
		}
	}
	s := strings.Trim(b.String(), "_")
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "event_" + s
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return strings.TrimRight(s, "_")
}

func stringOf(v any) string { s, _ := v.(string); return s }

// summarizeCalls is PostToolBatch's tool_calls as stored: per call its name, id and
// the digests of its input and response, never their text (the response is what the
// model saw). Canonical JSON; if it outgrows a metadata value the list is cut and
// tool_calls_count still says how many calls there were.
func summarizeCalls(calls []any) string {
	out := make([]any, 0, len(calls))
	for _, c := range calls {
		m, _ := c.(map[string]any)
		sum := map[string]any{}
		for _, k := range []string{"tool_name", "tool_use_id"} {
			if v, ok := m[k].(string); ok {
				sum[k] = sourcetext.Clip(v, 256)
			}
		}
		for _, k := range []string{"tool_input", "tool_response"} {
			if v, ok := m[k]; ok {
				if canon, err := event.AppendCanonical(nil, v); err == nil {
					sum[k+"_sha256"] = sourcetext.Digest(canon)
					sum[k+"_bytes"] = float64(len(canon))
				}
			}
		}
		out = append(out, sum)
	}
	for {
		canon, err := event.AppendCanonical(nil, out)
		if err == nil && len(canon) <= maxText {
			return string(canon)
		}
		if len(out) == 0 {
			return "[]"
		}
		out = out[:len(out)-1]
	}
}

// digestPrompt returns tool input with its prompt replaced by the prompt's digest
// (and records the prompt's length); the input's own digest is taken before.
func digestPrompt(ti any, meta map[string]any) any {
	m, ok := ti.(map[string]any)
	if !ok {
		return ti
	}
	pr, ok := m["prompt"].(string)
	if !ok {
		return ti
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	c["prompt"] = sourcetext.Digest([]byte(pr))
	meta["tool_input_prompt_length"] = float64(utf8.RuneCountInString(pr))
	return c
}

// digestLongText copies an unknown field's value with every string longer than
// maxUnknownText replaced by its digest, so prose inside unknown objects is not kept.
func digestLongText(v any) any {
	switch x := v.(type) {
	case string:
		if utf8.RuneCountInString(x) > maxUnknownText {
			return sourcetext.Digest([]byte(x))
		}
		return x
	case map[string]any:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = digestLongText(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = digestLongText(e)
		}
		return c
	default:
		return v
	}
}

// PayloadPointer maps a JSON pointer into the mapped event back to the hook payload
// field it came from (/session/id → /session_id), so that an error names the field
// as the sender wrote it. Pointers with no single source are returned unchanged.
func PayloadPointer(ptr string) string {
	for canon, payload := range payloadFields {
		if ptr == canon || strings.HasPrefix(ptr, canon+"/") {
			return payload + ptr[len(canon):]
		}
	}
	if k, ok := strings.CutPrefix(ptr, "/metadata/"); ok {
		k, _, _ = strings.Cut(k, "/")
		k = strings.TrimPrefix(k, "x.")
		for _, suffix := range []string{"_sha256", "_length", "_truncated"} {
			if base, ok := strings.CutSuffix(k, suffix); ok && consumed[base] {
				k = base
			}
		}
		return "/" + k
	}
	return ptr
}

var payloadFields = map[string]string{
	"/session/id":          "/session_id",
	"/session/tool_use_id": "/tool_use_id",
	"/session/prompt_id":   "/prompt_id",
	"/session/agent_id":    "/agent_id",
	"/source/raw_event":    "/hook_event_name",
	"/approval":            "/tool_input",
}

// fitMetadata keeps meta within the schema's maxMetaKeys by dropping unknown fields
// (x.*, last in key order first) and counting them in x.dropped_fields: an event is
// never refused for carrying many fields.
func fitMetadata(meta map[string]any) {
	if len(meta) <= maxMetaKeys {
		return
	}
	var unknown []string
	for k := range meta {
		if strings.HasPrefix(k, "x.") && k != "x.dropped_fields" {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	dropped, _ := meta["x.dropped_fields"].(float64)
	for len(meta) >= maxMetaKeys && len(unknown) > 0 {
		delete(meta, unknown[len(unknown)-1])
		unknown = unknown[:len(unknown)-1]
		dropped++
	}
	meta["x.dropped_fields"] = dropped
}
