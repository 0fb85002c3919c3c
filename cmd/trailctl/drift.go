package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

func newDriftCmd() *cobra.Command {
	var (
		sf         storeFlags
		api        apiFlags
		tenants    []string
		unapproved bool
		limit      int
		output     string
	)
	cmd := &cobra.Command{
		Use:   "drift [QUERY]",
		Short: "Tool calls whose executed parameters differ from the approved ones",
		Long: `Did the agent run exactly what was approved? Claude Code's PreToolUse and
PermissionRequest hooks record the SHA-256 of the tool input that was approved, and
PostToolUse(Failure) the digest of the input that ran, under the same tool_use_id.
drift lists every tool call whose executed digest is not among its approved ones,
newest first, with the (redacted) approved and executed inputs side by side.

An optional QUERY in the search filter language narrows the events considered
(e.g. 'session:7f3a... after:-7d'). --unapproved also lists executions that have no
approval record at all.

Exit codes: 0 no drift, 1 drift found, 2 usage.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := reportArgs(args, output, limit, "table", "json")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var found []clickhouse.Drift
			if api.url != "" {
				cl, err := api.client()
				if err != nil {
					return err
				}
				if found, err = cl.Drift(ctx, strings.Join(args, " "), tenants, unapproved, limit); err != nil {
					return apiFailure(err)
				}
			} else {
				store, err := sf.open(ctx)
				if err != nil {
					return err
				}
				defer store.Close()
				if found, err = store.FindDrift(ctx, clickhouse.DriftRequest{Filter: f, Tenants: tenants, Unapproved: unapproved, Limit: limit}); err != nil {
					return err
				}
			}
			if err := writeDrift(cmd.OutOrStdout(), output, found); err != nil {
				return err
			}
			if len(found) > 0 {
				return failed("%d tool call(s) ran parameters that were not approved", len(found))
			}
			return nil
		},
	}
	sf.register(cmd)
	api.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&tenants, "tenant", nil, "only these tenants (default all)")
	fl.BoolVar(&unapproved, "unapproved", false, "also list executions with no approval record")
	fl.IntVar(&limit, "limit", 100, "at most this many tool calls")
	fl.StringVarP(&output, "output", "o", "table", "table or json (one object per line)")
	return cmd
}

// writeDrift prints the drifted calls, one JSON object per line or a table.
func writeDrift(w io.Writer, output string, found []clickhouse.Drift) error {
	if output == "json" {
		for _, d := range found {
			b, err := json.Marshal(map[string]any{"tenant": d.Tenant, "session_id": d.SessionID, "tool_use_id": d.ToolUseID, "tool": d.Tool, "actor": d.Actor,
				"approved_digests": d.Approved, "executed_digests": d.Executed, "approved_input": d.ApprovedInput, "executed_input": d.ExecutedInput,
				"first_chained_at": event.FormatTime(d.FirstChained), "last_chained_at": event.FormatTime(d.LastChained)})
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(w, string(b)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHAINED\tTENANT\tSESSION\tTOOL_USE_ID\tTOOL\tACTOR\tAPPROVED\tEXECUTED")
	for _, d := range found {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.LastChained.Format(time.RFC3339), d.Tenant, d.SessionID, d.ToolUseID, d.Tool, d.Actor,
			cmpText(d.ApprovedInput, d.Approved, "(no approval recorded)"), cmpText(d.ExecutedInput, d.Executed, ""))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(found) == 0 {
		fmt.Fprintln(w, "no drift: every executed tool input matches an approved one")
	}
	return nil
}

// cmpText shows a stored input, or its digest when the input text was not kept.
func cmpText(input string, digests []string, none string) string {
	switch {
	case input != "":
		return input
	case len(digests) > 0:
		return strings.Join(digests, ",")
	}
	return none
}
