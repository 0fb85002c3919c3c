package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/sqlscope"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

func newSQLCmd() *cobra.Command {
	var (
		sf      storeFlags
		api     apiFlags
		tenants []string
		maxRows int
		timeout time.Duration
		output  string
	)
	cmd := &cobra.Command{
		Use:   "sql STATEMENT",
		Short: "Run one read-only SELECT over the audit tables",
		Long: `Runs one SELECT (or WITH ... SELECT) over audit_events and audit_checkpoints,
under the same rules as the query API's POST /v1/sql: no other tables, table
functions, dictionaries, SETTINGS, INTO or FORMAT; readonly=1 and the row and time
limits enforced by ClickHouse; with --tenant, every read of audit_events is
restricted to those tenants.

  trailctl sql "SELECT actor_id, count() AS n FROM audit_events WHERE result_status = 'denied' GROUP BY actor_id HAVING n > 5"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" && output != "csv" {
				return usageError(errors.New("-o must be table, json or csv"))
			}
			if api.url != "" {
				return sqlThroughAPI(cmd, &api, strings.Join(args, " "), maxRows, output)
			}
			sql := strings.Join(args, " ")
			// Refuse what is outside the subset before connecting; the store then
			// adds what its server generation cannot run safely.
			if _, err := (sqlscope.Scope{Database: sf.Database, Tenants: tenants}).Rewrite(sql); err != nil {
				return usageError(err)
			}
			ctx := cmd.Context()
			store, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			stmt, err := store.SQLScope(tenants).Rewrite(sql)
			if err != nil {
				return usageError(err)
			}
			var cols []clickhouse.Column
			var rows [][]any
			truncated, err := store.ReadOnly(ctx, stmt, clickhouse.SQLLimits{MaxRows: maxRows, MaxTime: timeout},
				func(c []clickhouse.Column) error { cols = c; return nil },
				func(r []any) error { rows = append(rows, r); return nil })
			if err != nil {
				return failed("%v", err)
			}
			return printSQL(cmd, output, cols, rows, truncated, maxRows)
		},
	}
	sf.register(cmd)
	api.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&tenants, "tenant", nil, "restrict audit_events to these tenants (default all; with --api the token's tenants apply)")
	fl.IntVar(&maxRows, "max-rows", 10000, "most rows returned")
	fl.DurationVar(&timeout, "timeout", 60*time.Second, "server-side execution limit")
	fl.StringVarP(&output, "output", "o", "table", "table, json (one object per row) or csv")
	return cmd
}

// sqlThroughAPI runs the statement through POST /v1/sql: the API scopes it to the
// token's tenants and enforces its own time limit, so --tenant and --timeout do not
// apply and are refused rather than silently ignored.
func sqlThroughAPI(cmd *cobra.Command, api *apiFlags, stmt string, maxRows int, output string) error {
	for _, f := range []string{"tenant", "timeout"} {
		if cmd.Flags().Changed(f) {
			return usageError(fmt.Errorf("--%s does not apply with --api: the token's tenants and the API's limits do", f))
		}
	}
	cl, err := api.client()
	if err != nil {
		return err
	}
	res, err := cl.SQL(cmd.Context(), stmt, maxRows)
	if err != nil {
		return apiFailure(err)
	}
	return printSQL(cmd, output, res.Columns, res.Rows, res.Truncated, maxRows)
}

func printSQL(cmd *cobra.Command, output string, cols []clickhouse.Column, rows [][]any, truncated bool, maxRows int) error {
	if err := printRows(cmd.OutOrStdout(), output, cols, rows); err != nil {
		return err
	}
	if truncated {
		fmt.Fprintf(cmd.ErrOrStderr(), "result cut at %d rows (--max-rows)\n", maxRows)
	}
	return nil
}

func printRows(w io.Writer, output string, cols []clickhouse.Column, rows [][]any) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		for _, r := range rows {
			obj := make(map[string]any, len(cols))
			for i, c := range cols {
				obj[c.Name] = r[i]
			}
			if err := enc.Encode(obj); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		head := make([]string, len(cols))
		for i, c := range cols {
			head[i] = c.Name
		}
		cw.Write(head)
		for _, r := range rows {
			rec := make([]string, len(r))
			for i, v := range r {
				rec[i] = sqlCell(v)
			}
			cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, strings.ToUpper(c.Name))
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, strings.ReplaceAll(fmt.Sprint(v), "\t", " "))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func sqlCell(v any) string {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return export.SafeCell(fmt.Sprint(v))
}
