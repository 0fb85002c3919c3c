package otlp

import (
	"cmp"
	"encoding/json"
	"strings"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/source/sourcetext"
)

// mcp maps a record of an MCP gateway (OpenTelemetry MCP and GenAI semantic
// conventions): tools/call becomes tool.executed on the mcp_tool gen_ai.tool.name with
// the digest of the call's arguments as approval.executed_params_digest, so a gateway
// in front of any MCP server is audited like Claude Code's own tool calls; other
// methods become mcp.<method>.
func (r *record) mcp() {
	method := r.str("mcp.method.name")
	r.use("mcp.method.name")
	server := cmp.Or(r.str("mcp.server.name"), r.str("server.address"), r.str("service.name"))
	if server != "" {
		r.meta["mcp_server"] = sourcetext.Clip(server, 256)
	}
	if method != "tools/call" {
		r.doc["action"] = "mcp." + snake(method)
		r.doc["resource"] = map[string]any{"type": "mcp_server", "id": sourcetext.Clip(cmp.Or(server, "unknown"), 256)}
		return
	}
	tool := cmp.Or(r.str("gen_ai.tool.name"), r.str("mcp.tool.name"))
	r.use("gen_ai.tool.name", "mcp.tool.name")
	r.doc["action"] = "tool.executed"
	r.doc["resource"] = map[string]any{"type": "mcp_tool", "id": sourcetext.Clip(cmp.Or(tool, "unknown"), 256)}
	if id := cmp.Or(r.str("gen_ai.tool.call.id"), r.str("mcp.request.id"), r.str("jsonrpc.request.id")); id != "" {
		s, _ := r.doc["session"].(map[string]any)
		if s == nil {
			s = map[string]any{}
			r.doc["session"] = s
		}
		s["tool_use_id"] = sourcetext.Clip(id, 256)
		r.use("gen_ai.tool.call.id", "mcp.request.id", "jsonrpc.request.id")
	}
	for _, k := range []string{"gen_ai.tool.call.arguments", "mcp.tool.arguments"} {
		if args := r.str(k); args != "" {
			r.use(k)
			r.doc["approval"] = map[string]any{"executed_params_digest": sourcetext.Digest(canonicalArgs(args))}
			r.text("tool_input", args, maxText)
			break
		}
	}
	if e := r.str("error.type"); e != "" {
		r.doc["result"] = map[string]any{"status": "failure", "reason": sourcetext.Truncate(sourcetext.StripControl(e), 1024)}
		r.use("error.type")
	} else if strings.EqualFold(r.str("mcp.tool.is_error"), "true") {
		r.doc["result"] = map[string]any{"status": "failure"}
	}
}

// canonicalArgs is the RFC 8785 form of the arguments when they are JSON (so the
// digest matches one taken from the same input elsewhere), else the text as sent.
func canonicalArgs(s string) []byte {
	doc, err := decodeJSON(s)
	if err != nil {
		return []byte(s)
	}
	canon, err := event.AppendCanonical(nil, doc)
	if err != nil {
		return []byte(s)
	}
	return canon
}

func decodeJSON(s string) (any, error) {
	var v any
	err := json.Unmarshal([]byte(s), &v)
	return v, err
}
