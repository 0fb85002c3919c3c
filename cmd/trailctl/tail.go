package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// followWait is how long one follow call through the query API may wait on the
// server for new events: each call is one access event, so an idle tail -f costs
// one event per followWait rather than one per --interval.
const followWait = 20 * time.Second

func newTailCmd() *cobra.Command {
	var (
		sf       storeFlags
		api      apiFlags
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
so nothing is skipped or repeated. With --api it reads through the query API
instead (scoped to the token, every call audited; each follow call waits on the
server up to 20s for new events).

  trailctl tail -f 'result:denied OR result:failure'`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usageError(errors.New("-o must be table or json"))
			}
			q := strings.TrimSpace(strings.Join(args, " "))
			src, err := openTail(cmd.Context(), &sf, &api, q, tenants)
			if err != nil {
				return err
			}
			defer src.close()
			t := tailer{src: src, w: cmd.OutOrStdout(), output: output, interval: interval}
			return t.run(cmd.Context(), n, follow)
		},
	}
	sf.register(cmd)
	api.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&tenants, "tenant", nil, "only these tenants (default all)")
	fl.IntVarP(&n, "lines", "n", 10, "how many of the latest events to print first")
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	fl.DurationVar(&interval, "interval", time.Second, "poll interval with -f")
	fl.StringVarP(&output, "output", "o", "table", "table or json (one record per line)")
	return cmd
}

// tailSource is what tail reads: ClickHouse directly or the query API. Both keep
// the query and tenants they were opened with.
type tailSource interface {
	// head is the position from which follow reports only new events.
	head(ctx context.Context) (clickhouse.Position, error)
	// latest returns the newest n matching events, newest first.
	latest(ctx context.Context, n int) ([]clickhouse.Hit, error)
	// follow returns the matching records stored after pos and the new position.
	follow(ctx context.Context, pos clickhouse.Position) ([]chain.Record, clickhouse.Position, error)
	close()
}

func openTail(ctx context.Context, sf *storeFlags, api *apiFlags, q string, tenants []string) (tailSource, error) {
	if api.url != "" {
		cl, err := api.client()
		if err != nil {
			return nil, err
		}
		return &apiTail{cl: cl, q: q, tenants: tenants}, nil
	}
	var f query.Filter
	if q != "" {
		var err error
		if f, err = query.Compile(q, time.Now()); err != nil {
			return nil, usageError(err)
		}
	}
	store, err := sf.open(ctx)
	if err != nil {
		return nil, err
	}
	return &storeTail{store: store, f: f, tenants: tenants}, nil
}

// tailer prints what a tailSource reads.
type tailer struct {
	src      tailSource
	w        io.Writer
	output   string
	interval time.Duration
}

// run prints the latest n events, then with follow every new one until ctx ends.
func (t *tailer) run(ctx context.Context, n int, follow bool) error {
	// The head first, then the latest events: an event stored in between is after
	// the head, so the first follow prints it and the latest page must not.
	pos, err := t.src.head(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		hits, err := t.src.latest(ctx, n)
		if err != nil {
			return err
		}
		slices.Reverse(hits)
		for _, h := range hits {
			if top, ok := pos[h.Partition]; !ok || h.Seq > top {
				continue // stored after the head: the first follow prints it
			}
			if err := printTailLine(t.w, t.output, h); err != nil {
				return err
			}
		}
	}
	if !follow {
		return nil
	}
	return t.follow(ctx, pos)
}

// follow prints every record stored after pos until ctx ends.
func (t *tailer) follow(ctx context.Context, pos clickhouse.Position) error {
	for {
		recs, next, err := t.src.follow(ctx, pos)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		pos = next
		for _, r := range recs {
			h := clickhouse.Hit{Partition: r.Partition, Seq: r.Seq, ChainedAt: r.ChainedAt, LeafHash: r.LeafHash.String(), Event: r.Event}
			if err := printTailLine(t.w, t.output, h); err != nil {
				return err
			}
		}
		if len(recs) == clickhouse.MaxSearchLimit {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(t.interval):
		}
	}
}

// storeTail reads ClickHouse.
type storeTail struct {
	store   *clickhouse.Store
	f       query.Filter
	tenants []string
}

func (s *storeTail) head(ctx context.Context) (clickhouse.Position, error) {
	return s.store.Head(ctx, s.tenants)
}

func (s *storeTail) latest(ctx context.Context, n int) ([]clickhouse.Hit, error) {
	hits, _, err := s.store.Search(ctx, clickhouse.SearchRequest{Filter: s.f, Tenants: s.tenants, Limit: n})
	return hits, err
}

func (s *storeTail) follow(ctx context.Context, pos clickhouse.Position) ([]chain.Record, clickhouse.Position, error) {
	return s.store.Follow(ctx, clickhouse.ExportRequest{Filter: s.f, Tenants: s.tenants}, pos, clickhouse.MaxSearchLimit)
}

func (s *storeTail) close() { s.store.Close() }

// apiTail reads through the query API: the server compiles the query and scopes
// every call to the token.
type apiTail struct {
	cl      *queryapi.Client
	q       string
	tenants []string
}

func (a *apiTail) head(ctx context.Context) (clickhouse.Position, error) {
	_, pos, err := a.cl.Follow(ctx, a.q, a.tenants, nil, 1, 0)
	return pos, apiFailure(err)
}

func (a *apiTail) latest(ctx context.Context, n int) ([]clickhouse.Hit, error) {
	hits, _, err := a.cl.Search(ctx, a.q, a.tenants, min(n, clickhouse.MaxSearchLimit), "")
	return hits, apiFailure(err)
}

func (a *apiTail) follow(ctx context.Context, pos clickhouse.Position) ([]chain.Record, clickhouse.Position, error) {
	recs, next, err := a.cl.Follow(ctx, a.q, a.tenants, pos, clickhouse.MaxSearchLimit, followWait)
	return recs, next, apiFailure(err)
}

func (a *apiTail) close() {}

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
