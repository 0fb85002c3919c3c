package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
	"github.com/trailkeep/trailkeep/pkg/versions"
)

func newTimelineCmd() *cobra.Command {
	var (
		sf       storeFlags
		api      apiFlags
		resource string
		atFlag   string
		tenants  []string
		output   string
	)
	cmd := &cobra.Command{
		Use:   "timeline --resource TYPE:ID",
		Short: "Version history of a rule or skill, and the version in force at a time",
		Long: `Prints every version change of one resource, oldest first: when, which event,
from and to which version, who made it, who approved it and the change summary.
TYPE:ID matches the resource's id or its name (skill:api-conventions).

With --at T it also answers which version was in force at T: the last change at or
before T that took effect (a denied or failed change did not), and exits 1 when no
version had been recorded by then.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := versions.Query(resource)
			if err != nil {
				return usageError(fmt.Errorf("--%w", err))
			}
			var at time.Time
			if atFlag != "" {
				t, err := query.ParseTime(atFlag, time.Now())
				if err != nil {
					return usageError(fmt.Errorf("--at: %w", err))
				}
				at = t
			}
			if output != "table" && output != "json" {
				return usageError(fmt.Errorf("-o must be table or json"))
			}
			f, err := query.Compile(q, time.Now())
			if err != nil {
				return usageError(err)
			}
			entries, err := timelineEntries(cmd.Context(), &sf, api, q, f, resource, tenants)
			if err != nil {
				return err
			}
			history := versions.History(entries)
			inForce, known := versions.InForce(history, at)
			if err := printHistory(cmd.OutOrStdout(), output, resource, history, at, inForce, known); err != nil {
				return err
			}
			if !at.IsZero() && !known {
				return failed("no version of %s had taken effect by %s", resource, at.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	sf.register(cmd)
	api.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&resource, "resource", "", "the resource, TYPE:ID or TYPE:NAME (required)")
	fl.StringVar(&atFlag, "at", "", "also print the version in force at this time (RFC 3339, date, -30d)")
	fl.StringSliceVar(&tenants, "tenant", nil, "only these tenants' events")
	fl.StringVarP(&output, "output", "o", "table", "table or json")
	cmd.MarkFlagRequired("resource")
	return cmd
}

// timelineEntries reads every event of the resource (filter f, query text q) from
// the query API (api set) or the store.
func timelineEntries(ctx context.Context, sf *storeFlags, api apiFlags, q string, f query.Filter, resource string, tenants []string) ([]versions.Entry, error) {
	var page versions.Page
	if api.url != "" {
		cl, err := api.client()
		if err != nil {
			return nil, err
		}
		page = apiPager(ctx, cl, q, tenants)
	} else {
		store, err := sf.open(ctx)
		if err != nil {
			return nil, err
		}
		defer store.Close()
		page = storePager(ctx, store, clickhouse.SearchRequest{Filter: f, Tenants: tenants, Limit: clickhouse.MaxSearchLimit})
	}
	entries, err := versions.Read(page, resource)
	var tm *versions.TooManyError
	if errors.As(err, &tm) {
		return nil, failed("%v with --tenant", err)
	}
	return entries, err
}

// storePager pages through req in the store.
func storePager(ctx context.Context, store *clickhouse.Store, req clickhouse.SearchRequest) versions.Page {
	return func() ([]clickhouse.Hit, bool, error) {
		hits, next, err := store.Search(ctx, req)
		if err != nil || next == nil {
			return hits, false, err
		}
		req.After = next
		return hits, true, nil
	}
}

// apiPager pages through q with the query API (GET /v1/events, its largest page).
func apiPager(ctx context.Context, cl *queryapi.Client, q string, tenants []string) versions.Page {
	cursor := ""
	return func() ([]clickhouse.Hit, bool, error) {
		hits, next, err := cl.Search(ctx, q, tenants, clickhouse.MaxSearchLimit, cursor)
		if err != nil {
			return nil, false, apiFailure(err)
		}
		cursor = next
		return hits, next != "", nil
	}
}

// printHistory prints the changes and, with at, the version in force then.
func printHistory(w io.Writer, output, resource string, history []versions.Change, at time.Time, inForce versions.Change, known bool) error {
	if output == "json" {
		doc := map[string]any{"resource": resource, "changes": history}
		if !at.IsZero() {
			doc["at"] = event.FormatTime(at)
			if known {
				doc["in_force"] = inForce
			}
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	printTimeline(w, resource, history)
	if !at.IsZero() && known {
		fmt.Fprintf(w, "\nin force at %s: version %s, since %s (%s by %s%s)\n", at.UTC().Format(time.RFC3339), inForce.ToVersion,
			inForce.At.Format(time.RFC3339), inForce.Action, inForce.Actor, approvedBy(inForce))
	}
	return nil
}

func approvedBy(c versions.Change) string {
	switch {
	case c.DecidedBy != "" && c.Decision != "":
		return fmt.Sprintf(", %s by %s", c.Decision, c.DecidedBy)
	case c.DecidedBy != "":
		return ", approved by " + c.DecidedBy
	}
	return ", no approval recorded"
}

func printTimeline(w io.Writer, resource string, history []versions.Change) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "OCCURRED\tEVENT\tVERSION\tACTOR\tAPPROVAL\tRESULT\tSUMMARY\n")
	for _, c := range history {
		approval := "-"
		if c.DecidedBy != "" {
			approval = strings.TrimSpace(c.Decision + " " + c.DecidedBy)
		}
		who := c.Actor
		if c.ActorEmail != "" {
			who += " (" + c.ActorEmail + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s -> %s\t%s\t%s\t%s\t%s\n", c.At.Format(time.RFC3339), c.Action,
			dash(c.FromVersion), dash(c.ToVersion), who, approval, dash(c.Result), c.Summary)
	}
	tw.Flush()
	if len(history) == 0 {
		fmt.Fprintf(w, "(no version changes recorded for %s)\n", resource)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
