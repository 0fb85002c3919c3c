package claudecode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEventTableMatchesTheReference holds the observe-only safety of each event to the
// hooks reference's wording (quoted in Events' doc and SOURCES.md, checked 2026-12-01):
// exactly WorktreeCreate ("replaces git worktree creation and must return
// hookSpecificOutput.worktreePath"), WorktreeRemove (its counterpart, unconfirmed) and
// PreModelSwitch ("a hook that times out blocks the model switch") are unsafe.
func TestEventTableMatchesTheReference(t *testing.T) {
	unsafe := map[string]string{
		"WorktreeCreate": "worktreePath", "WorktreeRemove": "WorktreeCreate", "PreModelSwitch": "blocks the model switch",
	}
	seen := map[string]bool{}
	for _, e := range Events {
		if seen[e.Name] {
			t.Errorf("%s listed twice", e.Name)
		}
		seen[e.Name] = true
		want, isUnsafe := unsafe[e.Name]
		switch {
		case isUnsafe && !strings.Contains(e.Unsafe, want):
			t.Errorf("%s: Unsafe %q, want the reference's reason (%q)", e.Name, e.Unsafe, want)
		case !isUnsafe && e.Unsafe != "":
			t.Errorf("%s marked unsafe: %s", e.Name, e.Unsafe)
		}
		if e.Command != (e.Name == "SessionStart" || e.Name == "Setup") {
			t.Errorf("%s: Command %v; only SessionStart and Setup accept only command hooks", e.Name, e.Command)
		}
	}
	for name := range unsafe {
		if !seen[name] {
			t.Errorf("%s missing from Events", name)
		}
	}
}

// TestEveryEventHasAPayload maps the payload kept for each event of the table
// (testdata/events, built from the reference's field lists) and checks action,
// resource and that it is a valid canonical event.
func TestEveryEventHasAPayload(t *testing.T) {
	wantRes := map[string]string{
		"TaskCreated": "task-42", "TaskCompleted": "task-42",
		"WorktreeCreate": "/home/dev/payments-api/.worktrees/feature-x", "WorktreeRemove": "/home/dev/payments-api/.worktrees/feature-x",
		"Elicitation": "jira", "ElicitationResult": "jira", "PreModelSwitch": "unknown", "PostModelSwitch": "claude-opus-4",
		"PreToolUse": "Bash", "SubagentStart": "agent-1",
	}
	for _, e := range Events {
		t.Run(e.Name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "events", e.Name+".json"))
			if err != nil {
				t.Fatalf("no test payload for %s: %v", e.Name, err)
			}
			ev, err := canonical(t, raw, Options{Redactor: redactor(t)})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Action != e.Action || ev.Source.RawEvent != e.Name {
				t.Errorf("action %s raw %s, want %s", ev.Action, ev.Source.RawEvent, e.Action)
			}
			if want := e.Resource; want != "" && ev.Resource.Type != want {
				t.Errorf("resource type %s, want %s", ev.Resource.Type, want)
			}
			if want, ok := wantRes[e.Name]; ok && ev.Resource.ID != want {
				t.Errorf("resource id %q, want %q", ev.Resource.ID, want)
			}
		})
	}
}

// TestNullFieldsAreRecorded: a documented null (PreModelSwitch's requested_model) is
// not silently dropped.
func TestNullFieldsAreRecorded(t *testing.T) {
	ev, err := canonical(t, []byte(`{"session_id":"s","hook_event_name":"PreModelSwitch","requested_model":null,"other":null}`), Options{Redactor: redactor(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Metadata["null_fields"]; got != "other,requested_model" {
		t.Errorf("null_fields %v", got)
	}
}

// TestMCPServerFromPayload: the payload's mcp_server{name, source} is kept beside the
// server named by the tool, without overwriting it.
func TestMCPServerFromPayload(t *testing.T) {
	ev, err := canonical(t, []byte(`{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"mcp__jira__create_issue","tool_use_id":"t1","tool_input":{},"mcp_server":{"name":"jira-cloud","source":"project"}}`), Options{Redactor: redactor(t)})
	if err != nil {
		t.Fatal(err)
	}
	m := ev.Metadata
	if m["mcp_server"] != "jira" || m["mcp_tool"] != "create_issue" || m["mcp_server_name"] != "jira-cloud" || m["mcp_server_source"] != "project" {
		t.Errorf("metadata %v", m)
	}
}

// TestManyFieldsNeverCostTheEvent: a payload with more fields than metadata holds
// still maps to a valid event, counting what it dropped.
func TestManyFieldsNeverCostTheEvent(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"mcp__a__b","tool_use_id":"t","tool_input":{"p":"x"},"mcp_server":{"name":"n","source":"s"},"prompt":"q","n1":null,"n2":null`)
	for i := range 100 {
		b.WriteString(`,"f` + string(rune('a'+i/26)) + string(rune('a'+i%26)) + `":"v"`)
	}
	b.WriteString("}")
	ev, err := canonical(t, []byte(b.String()), Options{Redactor: redactor(t)})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Metadata["x.dropped_fields"] == nil || ev.Metadata["null_fields"] != "n1,n2" || ev.Metadata["mcp_server_name"] != "n" {
		t.Errorf("metadata: %d keys, dropped %v, nulls %v", len(ev.Metadata), ev.Metadata["x.dropped_fields"], ev.Metadata["null_fields"])
	}
}
