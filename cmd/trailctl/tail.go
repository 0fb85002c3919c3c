package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

func newTailCmd() *cobra.Command {
	var (
		sf       storeFlags
		tenants  []string
		n        int
		follow   bool
		interval time.Duration
		output   string
	)
	cmd := &cobra.Command{
		Use:   "tail [QUERY]",
		Short: "Print the latest matching events; with -f, keep printing new ones as they are stored",
		Long: `Prints the last -n events matching QUERY (default: all), oldest first. With -f it
then polls ClickHouse every --interval and prints each newly stored match once: it
tracks the last seq per partition, and the writer stores each partition in order,
so nothing is skipped or repeated.

  trailctl tail -f 'result:denied OR result:failure'`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usageError(errors.New("-o must be table or json"))
			}
			var f query.Filter
			if q := strings.TrimSpace(strings.Join(args, " ")); q != "" {
				var err error
				if f, err = query.Compile(q, time.Now()); err != nil {
					return usageError(err)
				}
			}
			ctx := cmd.Context()
			store, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			w := cmd.OutOrStdout()
			pos, err := store.Head(ctx)
			if err != nil {
				return err
			}
			if n > 0 {
				hits, _, err := store.Search(ctx, clickhouse.SearchRequest{Filter: f, Tenants: tenants, Limit: n})
				if err != nil {
					return err
				}
				slices.Reverse(hits)
				for _, h := range hits {
					if head, ok := pos[h.Partition]; ok && h.Seq > head {
						continue // stored after Head: the first poll prints it
					}
					if err := printTailLine(w, output, h); err != nil {
						return err
					}
				}
			}
			if !follow {
				return nil
			}
			req := clickhouse.ExportRequest{Filter: f, Tenants: tenants}
			for {
				var recs []chain.Record
				recs, pos, err = store.Follow(ctx, req, pos, clickhouse.MaxSearchLimit)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				for _, r := range recs {
					h := clickhouse.Hit{Partition: r.Partition, Seq: r.Seq, ChainedAt: r.ChainedAt, LeafHash: r.LeafHash.String(), Event: r.Event}
					if err := printTailLine(w, output, h); err != nil {
						return err
					}
				}
				if len(recs) == clickhouse.MaxSearchLimit {
					continue // more are waiting
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&tenants, "tenant", nil, "only these tenants (default all)")
	fl.IntVarP(&n, "lines", "n", 10, "how many of the latest events to print first")
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	fl.DurationVar(&interval, "interval", time.Second, "poll interval with -f")
	fl.StringVarP(&output, "output", "o", "table", "table or json (one record per line)")
	return cmd
}

func printTailLine(w io.Writer, output string, h clickhouse.Hit) error {
	if output == "json" {
		return renderJSON(w, []clickhouse.Hit{h})
	}
	r, err := flatten(h)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s  %s  %s:%s  %s  %s:%s  %s  %d/%d\n", r.occurred, r.tenant, r.actorType, r.actorID, r.action, r.resType, r.resID, dash(r.result), h.Partition, h.Seq)
	return err
}
