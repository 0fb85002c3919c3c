// Package otlp maps OpenTelemetry log records (OTLP, decoded into the collector's pdata
// types) onto canonical trailkeep events. Two kinds of sender are understood:
//
//   - Claude Code (https://code.claude.com/docs/en/monitoring-usage): records whose
//     body is "claude_code.<name>" or whose event.name attribute names one of its
//     events. tool_decision is the one record of who approved a tool call and how
//     (decision accept|reject, source config|hook|user_permanent|user_temporary|
//     user_abort|user_reject); it joins the hook events on tool_use_id.
//   - MCP gateways that follow the OpenTelemetry MCP and GenAI semantic conventions:
//     records with mcp.method.name (tools/call with gen_ai.tool.name and the call's
//     arguments) become tool events with parameter digests, like Claude Code's own.
//
// Any other record is kept as telemetry.<name>, never dropped. Identity: the token's
// actor, when it has one, is authoritative (a per-user token); otherwise user.email,
// user.account_uuid or user.id of the record. The token's tenant is authoritative too:
// a record's organization.id is kept in metadata (otel.organization.id) and never
// changes the tenant. Prompt and model text (user_prompt's prompt,
// assistant_response, api_request_body, api_response_body) is kept as digest and
// length unless the tenant opted in to prompt text.
package otlp

import (
	"cmp"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/source/sourcetext"
)

// Options configure a mapping.
type Options struct {
	// Actor is the token's actor; when set it is the actor of every event.
	Actor map[string]any
	// PromptText: the tenant opted in to storing (redacted) prompt and model text.
	PromptText bool
	// Redactor masks secrets in text kept before it is cut. Required.
	Redactor *redact.Redactor
	// Keep decides, per record, whether a high-volume event is stored (sampling,
	// per tenant); nil keeps everything. name is the bare event name.
	Keep func(name string, r plog.LogRecord) bool
}

// Item is the outcome for one log record, in the order of the request.
type Item struct {
	Doc map[string]any
	Err error
	// Skipped: the tenant's sampling chose not to store it; it counts as accepted.
	Skipped bool
}

// Map maps every log record of logs.
func Map(logs plog.Logs, o Options) []Item {
	var out []Item
	rls := logs.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				ptr := fmt.Sprintf("/resourceLogs/%d/scopeLogs/%d/logRecords/%d", i, j, k)
				out = append(out, mapRecord(res, sl.Scope(), lrs.At(k), ptr, o))
			}
		}
	}
	return out
}

// record is one log record being mapped.
type record struct {
	o       Options
	attrs   pcommon.Map
	ptr     string
	doc     map[string]any
	meta    map[string]any
	applied []redact.Applied
	used    map[string]bool // attributes consumed by the mapping
}

func mapRecord(res pcommon.Map, scope pcommon.InstrumentationScope, lr plog.LogRecord, ptr string, o Options) Item {
	r := &record{o: o, attrs: lr.Attributes(), ptr: ptr, doc: map[string]any{}, meta: map[string]any{}, used: map[string]bool{}}
	name, kind := eventName(lr, scope)
	if o.Keep != nil && !o.Keep(name, lr) {
		return Item{Skipped: true}
	}
	r.doc["source"] = r.source(res, kind, name)
	r.doc["actor"] = r.actor()
	if t, err := r.occurredAt(lr); err != nil {
		return Item{Err: err}
	} else if !t.IsZero() {
		r.doc["occurred_at"] = event.FormatTime(t)
	}
	r.session()
	switch kind {
	case kindClaudeCode:
		r.claudeCode(name)
	case kindMCP:
		r.mcp()
	default:
		r.doc["action"] = "telemetry." + snake(name)
		r.doc["resource"] = map[string]any{"type": "telemetry", "id": sourcetext.Clip(cmp.Or(r.str("service.name"), name), 256)}
	}
	r.rest()
	if len(r.meta) > 0 {
		r.doc["metadata"] = r.meta
	}
	redact.Record(r.doc, r.applied)
	return Item{Doc: r.doc}
}

const (
	kindOther = iota
	kindClaudeCode
	kindMCP
)

// eventName is the record's event name and the kind of sender: body
// "claude_code.<name>" or event.name under Claude Code's scope; mcp.method.name for
// MCP gateways; otherwise event.name, the body or "log".
func eventName(lr plog.LogRecord, scope pcommon.InstrumentationScope) (string, int) {
	attr := func(k string) string {
		v, ok := lr.Attributes().Get(k)
		if !ok {
			return ""
		}
		return v.AsString()
	}
	body := ""
	if lr.Body().Type() == pcommon.ValueTypeStr {
		body = lr.Body().Str()
	}
	if n, ok := strings.CutPrefix(body, "claude_code."); ok && n != "" {
		return n, kindClaudeCode
	}
	if n := attr("event.name"); n != "" {
		if bare, ok := strings.CutPrefix(n, "claude_code."); ok {
			return bare, kindClaudeCode
		}
		if strings.Contains(scope.Name(), "claude_code") {
			return n, kindClaudeCode
		}
	}
	if m := attr("mcp.method.name"); m != "" {
		return m, kindMCP
	}
	return cmp.Or(attr("event.name"), sourcetext.Clip(body, 64), "log"), kindOther
}

func (r *record) source(res pcommon.Map, kind int, name string) map[string]any {
	src := map[string]any{"channel": "otlp_logs"}
	switch kind {
	case kindClaudeCode:
		src["raw_event"] = "claude_code." + name
	default:
		src["raw_event"] = sourcetext.Clip(name, 256)
	}
	if v, ok := res.Get("service.version"); ok && v.AsString() != "" {
		src["tool_version"] = sourcetext.Clip(v.AsString(), 256)
	}
	if v, ok := res.Get("service.name"); ok {
		r.meta["otel.service.name"] = sourcetext.Clip(v.AsString(), 256)
	}
	return src
}

// actor is the token's actor, else the record's user.
func (r *record) actor() map[string]any {
	email, uuid, uid := r.str("user.email"), r.str("user.account_uuid"), r.str("user.id")
	for k, v := range map[string]string{"otel.user.email": email, "otel.user.account_uuid": uuid, "otel.user.id": uid} {
		if v != "" {
			r.meta[k] = sourcetext.Clip(v, 256)
		}
	}
	r.use("user.email", "user.account_uuid", "user.id")
	if org := r.str("organization.id"); org != "" {
		r.meta["otel.organization.id"] = sourcetext.Clip(org, 256)
		r.use("organization.id")
	}
	if r.o.Actor != nil {
		a := make(map[string]any, len(r.o.Actor))
		for k, v := range r.o.Actor {
			a[k] = v
		}
		if e, _ := a["email"].(string); email != "" && e != "" && !strings.EqualFold(e, email) {
			r.meta["otel.user.email_mismatch"] = true // the record names another user than the token
		}
		return a
	}
	switch {
	case email != "":
		return map[string]any{"type": event.ActorUser, "id": sourcetext.Clip(email, 256), "email": email}
	case uuid != "":
		return map[string]any{"type": event.ActorUser, "id": sourcetext.Clip(uuid, 256)}
	case uid != "":
		return map[string]any{"type": event.ActorUser, "id": sourcetext.Clip("claude-code-user:"+uid, 256)}
	default:
		return map[string]any{"type": event.ActorAgent, "id": sourcetext.Clip("otel:"+cmp.Or(r.str("session.id"), r.str("service.name"), "unknown"), 256)}
	}
}

// occurredAt: event.timestamp (RFC 3339, Claude Code), else the record's time.
func (r *record) occurredAt(lr plog.LogRecord) (time.Time, error) {
	if ts := r.str("event.timestamp"); ts != "" {
		r.use("event.timestamp")
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return time.Time{}, &event.ValidationError{Errors: []event.FieldError{{Field: r.ptr + "/attributes/event.timestamp", Rule: "format", Limit: "date-time", Message: "must be an RFC 3339 time"}}}
		}
		return t, nil
	}
	if lr.Timestamp() != 0 {
		return lr.Timestamp().AsTime(), nil
	}
	if lr.ObservedTimestamp() != 0 {
		return lr.ObservedTimestamp().AsTime(), nil
	}
	return time.Time{}, nil
}

func (r *record) session() {
	s := map[string]any{}
	for k, a := range map[string]string{"id": "session.id", "prompt_id": "prompt.id", "tool_use_id": "tool_use_id"} {
		if v := r.str(a); v != "" {
			s[k] = sourcetext.Clip(v, 256)
			r.use(a)
		}
	}
	if v := r.str("mcp.session.id"); v != "" && s["id"] == nil {
		s["id"] = sourcetext.Clip(v, 256)
		r.use("mcp.session.id")
	}
	if len(s) > 0 {
		r.doc["session"] = s
	}
}

// rest keeps every attribute the mapping did not consume, as otel.<key>.
func (r *record) rest() {
	keys := make([]string, 0, r.attrs.Len())
	r.attrs.Range(func(k string, _ pcommon.Value) bool {
		if !r.used[k] {
			keys = append(keys, k)
		}
		return true
	})
	sort.Strings(keys)
	dropped := 0
	for _, k := range keys {
		key := "otel." + k
		if len(r.meta) >= maxMetaKeys-1 || !sourcetext.MetaKey.MatchString(key) {
			dropped++
			continue
		}
		v, _ := r.attrs.Get(k)
		r.putValue(key, v)
	}
	if dropped > 0 {
		r.meta["otel.dropped_attributes"] = float64(dropped)
	}
}

// putValue stores an attribute value: scalars as they are, long strings as digests,
// maps and slices as canonical JSON text.
func (r *record) putValue(key string, v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		r.meta[key] = v.Bool()
	case pcommon.ValueTypeInt:
		if n := v.Int(); n >= -(1<<53) && n <= 1<<53 {
			r.meta[key] = float64(n)
		} else {
			r.meta[key] = strconv.FormatInt(n, 10)
		}
	case pcommon.ValueTypeDouble:
		r.meta[key] = v.Double()
	case pcommon.ValueTypeStr:
		s := v.Str()
		if utf8.RuneCountInString(s) > maxKeptText {
			r.digest(key, s)
			return
		}
		r.text(key, s, maxKeptText)
	case pcommon.ValueTypeEmpty:
		r.meta[key] = "null"
	default:
		canon, err := event.AppendCanonical(nil, v.AsRaw())
		if err != nil {
			return
		}
		r.text(key, string(canon), maxText)
	}
}

// text keeps s redacted, then cut to limit.
func (r *record) text(key, s string, limit int) {
	red, rules := r.o.Redactor.String(s)
	for _, rule := range rules {
		r.applied = append(r.applied, redact.Applied{Field: "/metadata/" + key, Rule: rule})
	}
	r.meta[key] = sourcetext.Truncate(red, limit)
}

// digest keeps the SHA-256 and length of s instead of s.
func (r *record) digest(key, s string) {
	r.meta[key+"_sha256"] = sourcetext.Digest([]byte(s))
	r.meta[key+"_length"] = float64(utf8.RuneCountInString(s))
}

func (r *record) str(k string) string {
	v, ok := r.attrs.Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

func (r *record) use(keys ...string) {
	for _, k := range keys {
		r.used[k] = true
	}
}

const (
	maxMetaKeys = sourcetext.MaxMetaKeys
	maxText     = sourcetext.MaxText
	maxKeptText = 1024
)

// snake makes an action segment: lower case, [a-z0-9_], starting with a letter.
func snake(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "_")
	if out == "" || out[0] < 'a' || out[0] > 'z' {
		out = "event_" + out
	}
	return sourcetext.Clip(out, 100)
}
