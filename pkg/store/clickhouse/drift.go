package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/trailkeep/trailkeep/pkg/query"
)

// DriftRequest selects the tool calls to check.
type DriftRequest struct {
	Filter  query.Filter
	Tenants []string // empty: every tenant
	// Unapproved also reports executions with no approval record at all (a tool
	// call whose PreToolUse/PermissionRequest never reached trailkeep).
	Unapproved bool
	Limit      int // default 100, at most MaxSearchLimit
}

// Drift is one tool call whose executed parameters are not among the approved ones.
type Drift struct {
	Tenant, SessionID, ToolUseID, Tool, Actor string
	Approved, Executed                        []string // digests, sha256:<hex>
	// ApprovedInput and ExecutedInput are the redacted tool_input texts as stored.
	ApprovedInput, ExecutedInput string
	FirstChained, LastChained    time.Time
}

// driftQuery groups tool-call events by (tenant, tool_use_id), which Claude Code
// shares between PreToolUse/PermissionRequest (approved digest) and
// PostToolUse(Failure) (executed digest), and keeps the calls where something ran
// that was not approved.
func driftQuery(db string, req DriftRequest) Query {
	terms, args := matching(req.Filter, req.Tenants)
	where := whereClause(append(terms, "tool_use_id != ''"))
	having := "length(executed) > 0 AND arrayExists(x -> NOT has(approved, x), executed)"
	if !req.Unapproved {
		having += " AND length(approved) > 0"
	}
	return Query{Name: "drift", SQL: "SELECT tenant, tool_use_id, any(session_id), any(resource_id), any(actor_id)," +
		" arraySort(groupUniqArrayIf(approved_digest, approved_digest != '')) AS approved," +
		" arraySort(groupUniqArrayIf(executed_digest, executed_digest != '')) AS executed," +
		" anyIf(visitParamExtractString(event, 'tool_input'), approved_digest != '')," +
		" anyIf(visitParamExtractString(event, 'tool_input'), executed_digest != '')," +
		" min(chained_at_ns), max(chained_at_ns) AS last" +
		" FROM " + db + ".audit_events WHERE " + where +
		" GROUP BY tenant, tool_use_id HAVING " + having +
		" ORDER BY last DESC, tenant, tool_use_id LIMIT " + fmt.Sprint(pageSize(req.Limit)), Args: args}
}

// DriftQuery returns the statement FindDrift sends, for cross-generation tests.
func DriftQuery(db string, req DriftRequest) Query { return driftQuery(db, req) }

// FindDrift returns the tool calls whose executed parameters differ from every
// approved version, most recent first.
func (s *Store) FindDrift(ctx context.Context, req DriftRequest) ([]Drift, error) {
	q := driftQuery(s.db, req)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: drift: %w", err)
	}
	defer rows.Close()
	var out []Drift
	for rows.Next() {
		var d Drift
		var first, last int64
		if err := rows.Scan(&d.Tenant, &d.ToolUseID, &d.SessionID, &d.Tool, &d.Actor, &d.Approved, &d.Executed,
			&d.ApprovedInput, &d.ExecutedInput, &first, &last); err != nil {
			return nil, fmt.Errorf("clickhouse: drift: %w", err)
		}
		d.FirstChained, d.LastChained = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
