package clickhouse_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/source/claudecode"
	"github.com/trailkeep/trailkeep/pkg/source/otlp"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"

	"github.com/trailkeep/trailkeep/internal/chtest"
)

// scriptedSession is one Claude Code session as trailkeep receives it: hook payloads
// and the telemetry records of the same tool calls, each call ending a different way.
func scriptedSession(t *testing.T) [][]byte {
	t.Helper()
	red, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	sarah := map[string]any{"type": "user", "id": "sarah@acme.example", "email": "sarah@acme.example"}
	var out [][]byte
	add := func(doc map[string]any) {
		if err := (event.Stamp{Tenant: "acme", Tool: "claude_code", ReceivedAt: time.Now(), Mapped: true}).Apply(doc); err != nil {
			t.Fatal(err)
		}
		_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, canon)
	}
	hook := func(name, tu, command string, extra map[string]any) {
		p := map[string]any{"session_id": "appr-s1", "hook_event_name": name, "tool_name": "Bash", "tool_use_id": tu,
			"tool_input": map[string]any{"command": command}, "cwd": "/w"}
		for k, v := range extra {
			p[k] = v
		}
		b, _ := json.Marshal(p)
		d, err := event.Decode(b, claudecode.Limits)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := claudecode.Map(d, claudecode.Options{Actor: sarah, Redactor: red})
		if err != nil {
			t.Fatal(err)
		}
		add(doc)
	}
	decision := func(tu, dec, source string) {
		logs := plog.NewLogs()
		lr := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.Body().SetStr("claude_code.tool_decision")
		lr.Attributes().FromRaw(map[string]any{"session.id": "appr-s1", "tool_name": "Bash", "tool_use_id": tu, "decision": dec,
			"source": source, "user.email": "sarah@acme.example"})
		it := otlp.Map(logs, otlp.Options{Actor: sarah, Redactor: red})[0]
		if it.Err != nil {
			t.Fatal(it.Err)
		}
		add(it.Doc)
	}
	hook("PreToolUse", "t-ok", "npm test", nil)
	decision("t-ok", "accept", "user_temporary")
	hook("PostToolUse", "t-ok", "npm test", nil)

	hook("PreToolUse", "t-deny", "rm -rf /", nil)
	decision("t-deny", "reject", "user_reject")
	hook("PermissionDenied", "t-deny", "rm -rf /", map[string]any{"reason": "denied by the user"})

	hook("PreToolUse", "t-drift", "deploy --env staging", nil)
	decision("t-drift", "accept", "config")
	hook("PostToolUse", "t-drift", "deploy --env production", nil)

	hook("PreToolUse", "t-hook", "git push", nil)
	decision("t-hook", "accept", "hook")
	hook("PostToolUse", "t-hook", "git push --no-verify", nil)

	hook("PreToolUse", "t-nodec", "ls", nil)
	hook("PostToolUse", "t-nodec", "ls", nil)

	hook("PreToolUse", "t-pending", "make release", nil)
	decision("t-pending", "accept", "user_permanent")
	return out
}

// TestApprovalsReportOnBothGenerations: every call of the scripted session gets its
// verdict, with who decided and how, and both server generations return the same rows.
func TestApprovalsReportOnBothGenerations(t *testing.T) {
	legacy := chtest.Store(t)
	db := legacy.Database()
	engine := modernEngine(t, db)
	ctx := context.Background()
	c := chain.New(0)
	var recs []chain.Record
	for i, ev := range scriptedSession(t) {
		rec, err := c.Append(ev, time.Now().Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if err := legacy.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	engineInsertRecords(t, engine, db, recs)

	f, err := query.Compile("session:appr-s1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req := clickhouse.ApprovalsRequest{Filter: f, Tenants: []string{"acme"}}
	got, err := legacy.Approvals(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ verdict, by, source string }{
		"t-ok":      {clickhouse.VerdictMatched, "sarah@acme.example", "user_temporary"},
		"t-deny":    {clickhouse.VerdictDenied, "sarah@acme.example", "user_reject"},
		"t-drift":   {clickhouse.VerdictChangedByAgent, "config", "config"},
		"t-hook":    {clickhouse.VerdictRewrittenByHook, "hook", "hook"},
		"t-nodec":   {clickhouse.VerdictNoDecision, "", ""},
		"t-pending": {clickhouse.VerdictNotExecuted, "sarah@acme.example", "user_permanent"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d calls, want %d: %+v", len(got), len(want), got)
	}
	for _, a := range got {
		w := want[a.ToolUseID]
		if a.Verdict != w.verdict || a.DecidedBy != w.by || a.DecisionSource != w.source || a.Tool != "Bash" || a.SessionID != "appr-s1" {
			t.Errorf("%s: %+v, want verdict %s decided by %q (%q)", a.ToolUseID, a, w.verdict, w.by, w.source)
		}
		if a.ToolUseID == "t-drift" && (len(a.Approved) != 1 || len(a.Executed) != 1 || a.Approved[0] == a.Executed[0] || a.RequestedBy != "sarah@acme.example") {
			t.Errorf("drifted call: %+v", a)
		}
	}
	q := clickhouse.ApprovalsQuery(db, req)
	sql := bindLiterals(q.SQL, q.Args)
	modern, err := engine.Query(sql, "TSV")
	if err != nil {
		t.Fatalf("approvals on ClickHouse 26: %v\n%s", err, sql)
	}
	if old := legacyTSV(t, "approvals", sql); modern != old {
		t.Errorf("approvals differ:\n26.x: %.600q\n18.16: %.600q", modern, old)
	}
}
