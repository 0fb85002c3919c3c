package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailkeep/trailkeep/pkg/query"
)

// ApprovalsRequest selects the tool calls to report on: every call (tool_use_id) that
// has at least one event matching Filter, with all of that call's events.
type ApprovalsRequest struct {
	Filter  query.Filter
	Tenants []string // empty: every tenant
	Limit   int      // default 100, at most MaxSearchLimit
}

// Verdicts of an approvals report, one per tool call.
const (
	// VerdictMatched: what ran is what was requested, and a decision was recorded.
	VerdictMatched = "matched"
	// VerdictChangedByAgent: what ran differs from every requested version.
	VerdictChangedByAgent = "changed_by_agent"
	// VerdictRewrittenByHook: what ran differs from what was requested, and the call
	// was decided by a hook — which may rewrite the input (updatedInput).
	VerdictRewrittenByHook = "rewritten_by_hook"
	// VerdictNoDecision: it ran, and no decision (telemetry tool_decision or a
	// permission denial) was recorded for it.
	VerdictNoDecision = "executed_without_decision"
	// VerdictDenied: the call was denied (and, if it ran anyway, Executions says so).
	VerdictDenied = "denied"
	// VerdictNotExecuted: requested or approved, but nothing ran (yet).
	VerdictNotExecuted = "not_executed"
)

// Approval is one tool call: what was requested, who decided and how, what ran.
type Approval struct {
	Tenant    string `json:"tenant"`
	ToolUseID string `json:"tool_use_id"`
	SessionID string `json:"session_id"`
	Tool      string `json:"tool"`
	// RequestedBy is the actor of the request (PreToolUse); DecidedBy who decided:
	// the user, "config" or "hook" (telemetry tool_decision), and DecisionSource how
	// (config, hook, user_permanent, user_temporary, user_abort, user_reject).
	RequestedBy    string   `json:"requested_by"`
	Decision       string   `json:"decision"`
	DecidedBy      string   `json:"decided_by"`
	DecisionSource string   `json:"decision_source"`
	Approved       []string `json:"approved_digests"` // parameter digests requested
	Executed       []string `json:"executed_digests"` // parameter digests that ran
	// Executions counts the call's tool.executed, tool.failed and tool.result events.
	Executions uint64    `json:"executions"`
	Result     string    `json:"result"` // result.status of the execution
	Verdict    string    `json:"verdict"`
	First      time.Time `json:"first_chained_at"`
	Last       time.Time `json:"last_chained_at"`
}

// ApprovalColumns are the CSV and table columns of an approvals report, in order.
var ApprovalColumns = []string{"last_chained_at", "tenant", "session_id", "tool_use_id", "tool", "requested_by", "decision", "decided_by",
	"decision_source", "executions", "result", "verdict", "approved_digests", "executed_digests"}

// Row is the approval as ApprovalColumns.
func (a Approval) Row() []string {
	return []string{a.Last.Format(time.RFC3339Nano), a.Tenant, a.SessionID, a.ToolUseID, a.Tool, a.RequestedBy, a.Decision, a.DecidedBy,
		a.DecisionSource, strconv.FormatUint(a.Executions, 10), a.Result, a.Verdict, strings.Join(a.Approved, " "), strings.Join(a.Executed, " ")}
}

// approvalsQuery groups the tool-call events of every tool_use_id that has an event
// matching the filter. The decision comes from the telemetry tool_decision event, or
// from a PermissionDenied hook event.
func approvalsQuery(db string, req ApprovalsRequest) Query {
	terms, args := matching(req.Filter, req.Tenants)
	scope := whereClause(append(terms, "tool_use_id != ''"))
	var tenantTerm []string
	var targs []any
	if len(req.Tenants) > 0 {
		in, a := tenantIn(req.Tenants)
		tenantTerm, targs = []string{in}, a
	}
	outer := whereClause(append(tenantTerm, "tool_use_id IN (SELECT tool_use_id FROM "+db+".audit_events WHERE "+scope+")",
		"action IN ('tool.requested', 'tool.permission_requested', 'tool.permission_denied', 'tool.decided', 'tool.executed', 'tool.failed', 'tool.result')"))
	approval := "visitParamExtractRaw(event, 'approval')"
	sql := "SELECT tenant, tool_use_id, any(session_id), anyIf(resource_id, resource_id != ''), anyIf(actor_id, action = 'tool.requested')," +
		" anyIf(visitParamExtractString(" + approval + ", 'decision'), action IN ('tool.decided', 'tool.permission_denied')) AS decision," +
		" anyIf(visitParamExtractString(" + approval + ", 'decided_by'), action = 'tool.decided')," +
		" anyIf(visitParamExtractString(visitParamExtractRaw(event, 'metadata'), 'decision_source'), action = 'tool.decided')," +
		" arraySort(groupUniqArrayIf(approved_digest, approved_digest != ''))," +
		" arraySort(groupUniqArrayIf(executed_digest, executed_digest != ''))," +
		" countIf(action IN ('tool.executed', 'tool.failed', 'tool.result'))," +
		" anyIf(result_status, action IN ('tool.executed', 'tool.failed', 'tool.result') AND result_status != '')," +
		" min(chained_at_ns), max(chained_at_ns) AS last" +
		" FROM " + db + ".audit_events WHERE " + outer +
		" GROUP BY tenant, tool_use_id ORDER BY last DESC, tenant, tool_use_id LIMIT " + fmt.Sprint(pageSize(req.Limit))
	return Query{Name: "approvals", SQL: sql, Args: append(targs, args...)}
}

// Approvals returns the approvals report, most recent call first.
func (s *Store) Approvals(ctx context.Context, req ApprovalsRequest) ([]Approval, error) {
	q := approvalsQuery(s.db, req)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: approvals: %w", err)
	}
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		var a Approval
		var first, last int64
		if err := rows.Scan(&a.Tenant, &a.ToolUseID, &a.SessionID, &a.Tool, &a.RequestedBy, &a.Decision, &a.DecidedBy, &a.DecisionSource,
			&a.Approved, &a.Executed, &a.Executions, &a.Result, &first, &last); err != nil {
			return nil, fmt.Errorf("clickhouse: approvals: %w", err)
		}
		a.First, a.Last = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		a.Verdict = verdict(a)
		out = append(out, a)
	}
	return out, rows.Err()
}

// verdict judges one call from what was recorded of it.
func verdict(a Approval) string {
	drifted := false
	for _, e := range a.Executed {
		drifted = drifted || (len(a.Approved) > 0 && !slices.Contains(a.Approved, e))
	}
	switch {
	case a.Decision == "denied":
		return VerdictDenied
	case a.Executions == 0:
		return VerdictNotExecuted
	case drifted && a.DecisionSource == "hook":
		return VerdictRewrittenByHook
	case drifted:
		return VerdictChangedByAgent
	case a.Decision == "":
		return VerdictNoDecision
	default:
		return VerdictMatched
	}
}

// ApprovalsQuery returns the statement Approvals sends, for cross-generation tests.
func ApprovalsQuery(db string, req ApprovalsRequest) Query { return approvalsQuery(db, req) }
