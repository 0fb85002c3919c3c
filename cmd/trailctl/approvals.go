package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

func newApprovalsCmd() *cobra.Command {
	var (
		sf      storeFlags
		api     apiFlags
		tenants []string
		limit   int
		output  string
	)
	cmd := &cobra.Command{
		Use:   "approvals [QUERY]",
		Short: "Per tool call: what was requested, who decided and how, what ran, and the verdict",
		Long: `The approvals report joins, per tool call (tool_use_id), the hook events (PreToolUse:
the approved parameter digest; PermissionDenied; PostToolUse(Failure): the executed
digest) and Claude Code's telemetry (tool_decision: the decision, who made it and how —
config, hook, user_permanent, user_temporary, user_abort, user_reject; tool_result).

Verdicts: matched (what ran is what was requested, and a decision was recorded),
changed_by_agent (what ran differs from every requested version), rewritten_by_hook
(it differs, and a hook decided the call: hooks may rewrite the input), denied,
executed_without_decision (no tool_decision or denial was recorded: telemetry off?),
not_executed.

An optional QUERY in the search filter language selects the calls (every call with a
matching event), e.g. 'actor:sarah@acme.example session:7f3a... after:-7d'.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := reportArgs(args, output, limit, "table", "json", "csv")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if api.url != "" {
				cl, err := api.client()
				if err != nil {
					return err
				}
				calls, err := cl.Approvals(ctx, strings.Join(args, " "), tenants, limit)
				if err != nil {
					return apiFailure(err)
				}
				return writeApprovals(cmd, output, calls)
			}
			store, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			calls, err := store.Approvals(ctx, clickhouse.ApprovalsRequest{Filter: f, Tenants: tenants, Limit: limit})
			if err != nil {
				return err
			}
			return writeApprovals(cmd, output, calls)
		},
	}
	sf.register(cmd)
	api.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&tenants, "tenant", nil, "only these tenants (default all; with --api, the token's)")
	fl.IntVar(&limit, "limit", 100, "at most this many tool calls")
	fl.StringVarP(&output, "output", "o", "table", "table, json (one object per line) or csv")
	return cmd
}

// reportArgs checks what a report command (approvals, drift) was given: the
// optional QUERY, -o among outputs, and --limit.
func reportArgs(args []string, output string, limit int, outputs ...string) (query.Filter, error) {
	f, err := query.Compile(strings.Join(args, " "), time.Now())
	if err != nil {
		return f, usageError(err)
	}
	if !slices.Contains(outputs, output) {
		return f, usageError(fmt.Errorf("-o must be %s or %s", strings.Join(outputs[:len(outputs)-1], ", "), outputs[len(outputs)-1]))
	}
	if limit < 1 || limit > clickhouse.MaxSearchLimit {
		return f, usageError(fmt.Errorf("--limit must be between 1 and %d", clickhouse.MaxSearchLimit))
	}
	return f, nil
}

func writeApprovals(cmd *cobra.Command, output string, calls []clickhouse.Approval) error {
	w := cmd.OutOrStdout()
	switch output {
	case "json":
		for _, a := range calls {
			b, _ := json.Marshal(a)
			fmt.Fprintln(w, string(b))
		}
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(clickhouse.ApprovalColumns)
		for _, a := range calls {
			row := a.Row()
			for i := range row {
				row[i] = export.SafeCell(row[i]) // agents write these fields: no formulas
			}
			cw.Write(row)
		}
		cw.Flush()
		return cw.Error()
	default:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LAST\tSESSION\tTOOL_USE_ID\tTOOL\tREQUESTED_BY\tDECISION\tDECIDED_BY\tSOURCE\tRAN\tVERDICT")
		for _, a := range calls {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Last.Format(time.RFC3339), a.SessionID, a.ToolUseID, a.Tool,
				a.RequestedBy, a.Decision, a.DecidedBy, a.DecisionSource, a.Executions, a.Verdict)
		}
		tw.Flush()
		if len(calls) == 0 {
			fmt.Fprintln(w, "no tool calls match")
		}
	}
	return nil
}
