package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// storeFlags locate the ClickHouse store. Defaults come from the same environment
// variables the chainer reads; the password is taken only from the environment, so
// it never shows in a process list or shell history.
type storeFlags struct {
	// ClickHouse native-protocol address(es), host:port (9440 with TLS).
	Addr []string `env:"TRAILKEEP_CLICKHOUSE_ADDR, default=127.0.0.1:9000"`
	// Database holding audit_events and audit_checkpoints (created by migrations).
	Database string `env:"TRAILKEEP_CLICKHOUSE_DATABASE, default=trailkeep"`
	// ClickHouse user.
	User string `env:"TRAILKEEP_CLICKHOUSE_USER, default=default"`
	// ClickHouse password (TRAILKEEP_CLICKHOUSE_PASSWORD_FILE wins).
	Password string `env:"TRAILKEEP_CLICKHOUSE_PASSWORD"`
	// Security is TLS and the password file (TRAILKEEP_CLICKHOUSE_TLS*, _PASSWORD_FILE).
	Security clickhouse.Security
}

func (s *storeFlags) register(cmd *cobra.Command) {
	if err := envconfig.Process(context.Background(), s); err != nil {
		panic(err) // only malformed defaults in this struct can fail
	}
	f := cmd.Flags()
	f.StringSliceVar(&s.Addr, "clickhouse", s.Addr, "ClickHouse native-protocol address(es) ($TRAILKEEP_CLICKHOUSE_ADDR)")
	f.StringVar(&s.Database, "database", s.Database, "ClickHouse database ($TRAILKEEP_CLICKHOUSE_DATABASE)")
	f.StringVar(&s.User, "ch-user", s.User, "ClickHouse user ($TRAILKEEP_CLICKHOUSE_USER; the password only from $TRAILKEEP_CLICKHOUSE_PASSWORD)")
}

func (s *storeFlags) open(ctx context.Context) (*clickhouse.Store, error) {
	o := clickhouse.Options{Addr: s.Addr, Database: s.Database, Username: s.User, Password: s.Password}
	if err := s.Security.Apply(&o); err != nil {
		return nil, err
	}
	st, err := clickhouse.Open(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("%w (set --clickhouse or $TRAILKEEP_CLICKHOUSE_ADDR)", err)
	}
	return st, nil
}

func newSearchCmd() *cobra.Command {
	var (
		sf        storeFlags
		api       apiFlags
		tenants   []string
		limit     int
		cursor    string
		output    string
		failEmpty bool
	)
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Search the audit log in ClickHouse with the filter language",
		Long: `Searches the stored audit log, newest first. The query is one argument (quote it)
or several, joined by spaces:

  trailctl search 'actor:any event:skill.* after:-30d'
  trailctl search 'actor:user:sarah@acme.example after:2026-01-01 before:2026-02-01'
  trailctl search 'event:team.* resource:team:acme-platform'
  trailctl search '(result:failure OR result:denied) after:-24h -actor:type:service'
  trailctl search 'session:7f3a-... tool_use:toolu_*' -o json

Keys: actor ([type:]id, or type:T), event (glob), resource ([type:]id), tenant,
session, tool_use, id, result (success|failure|denied|pending), source, after and
before (RFC 3339, a date, now, or -30d/-12h/-15m/-2w). Words without a key match the
event text, case-insensitively. Terms are ANDed; OR, NOT or a leading '-', and
parentheses combine them; '*' and '?' are globs.

A page holds --limit events; when more match, the cursor of the next page is printed
on standard error. This command reads ClickHouse directly and is meant for operators;
the query API serves and audits everyone else's searches.

Exit codes: 0 ok, 1 nothing matched with --fail-empty, 2 bad query or usage.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return doSearch(cmd, &sf, searchOptions{query: strings.Join(args, " "), tenants: tenants, limit: limit, cursor: cursor, output: output, failEmpty: failEmpty, api: api})
		},
	}
	sf.register(cmd)
	api.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&tenants, "tenant", nil, "only these tenants (repeatable or comma-separated; default all)")
	fl.IntVar(&limit, "limit", 50, "events per page")
	fl.StringVar(&cursor, "cursor", "", "continue after a previous page (its printed cursor)")
	fl.StringVarP(&output, "output", "o", "table", "table, json (one object per line) or csv")
	fl.BoolVar(&failEmpty, "fail-empty", false, "exit 1 when nothing matches")
	return cmd
}

type searchOptions struct {
	query, cursor, output string
	api                   apiFlags
	tenants               []string
	limit                 int
	failEmpty             bool
}

// doSearch runs one search page and prints it; search and query run share it.
func doSearch(cmd *cobra.Command, sf *storeFlags, o searchOptions) error {
	f, err := query.Compile(o.query, time.Now())
	if err != nil {
		return usageError(err)
	}
	req := clickhouse.SearchRequest{Filter: f, Tenants: o.tenants, Limit: o.limit}
	if o.cursor != "" {
		c, err := clickhouse.ParseCursor(o.cursor)
		if err != nil {
			return usageError(err)
		}
		req.After = &c
	}
	if o.limit < 1 || o.limit > clickhouse.MaxSearchLimit {
		return usageError(fmt.Errorf("--limit must be between 1 and %d", clickhouse.MaxSearchLimit))
	}
	render, ok := renderers[o.output]
	if !ok {
		return usageError(fmt.Errorf("-o must be table, json or csv"))
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	hits, next, err := searchPage(ctx, sf, o, req)
	if err != nil {
		return err
	}
	if err := render(cmd.OutOrStdout(), hits); err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more events match: add --cursor %s\n", next)
	}
	if o.failEmpty && len(hits) == 0 {
		return failed("no event matches %q", o.query)
	}
	return nil
}

// searchPage reads one page from the store, or through the query API with --api.
func searchPage(ctx context.Context, sf *storeFlags, o searchOptions, req clickhouse.SearchRequest) ([]clickhouse.Hit, string, error) {
	if o.api.url != "" {
		cl, err := o.api.client()
		if err != nil {
			return nil, "", err
		}
		hits, next, err := cl.Search(ctx, o.query, o.tenants, o.limit, o.cursor)
		if err != nil {
			return nil, "", apiFailure(err)
		}
		return hits, next, nil
	}
	store, err := sf.open(ctx)
	if err != nil {
		return nil, "", err
	}
	defer store.Close()
	hits, next, err := store.Search(ctx, req)
	if err != nil || next == nil {
		return hits, "", err
	}
	return hits, next.String(), nil
}

// apiFailure gives an answer of the query API its exit code: a request it refused
// as malformed (400) is a usage error (2), any other refusal a failure (1); a
// transport error stays as it is.
func apiFailure(err error) error {
	var ae *queryapi.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		return usageError(err)
	}
	if errors.As(err, &ae) {
		return failed("%v", err)
	}
	return err
}

// apiFlags send a command through the query API instead of reading ClickHouse.
type apiFlags struct{ url, tokenEnv string }

func (a *apiFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.url, "api", "", "read through the query API at this URL (scoped to the token, audited) instead of ClickHouse")
	f.StringVar(&a.tokenEnv, "token-env", "TRAILKEEP_QUERY_TOKEN", "with --api: the environment variable holding the query token")
}

func (a *apiFlags) client() (*queryapi.Client, error) {
	tok := os.Getenv(a.tokenEnv)
	if tok == "" {
		return nil, usageError(fmt.Errorf("--api needs a query token in $%s (trailctl tokens query creates one)", a.tokenEnv))
	}
	return &queryapi.Client{BaseURL: a.url, Token: tok}, nil
}

var renderers = map[string]func(io.Writer, []clickhouse.Hit) error{"table": renderTable, "json": renderJSON, "csv": renderCSV}

// hitRow is the flat view of a hit that the table and CSV show.
type hitRow struct {
	occurred, tenant, actorType, actorID, action, resType, resID, result, id string
}

func flatten(h clickhouse.Hit) (hitRow, error) {
	var ev event.Event
	if err := json.Unmarshal(h.Event, &ev); err != nil {
		return hitRow{}, fmt.Errorf("stored event %d/%d: %w", h.Partition, h.Seq, err)
	}
	r := hitRow{occurred: ev.OccurredAt.UTC().Format(time.RFC3339), tenant: ev.Tenant, actorType: ev.Actor.Type, actorID: ev.Actor.ID,
		action: ev.Action, resType: ev.Resource.Type, resID: ev.Resource.ID, id: ev.ID}
	if ev.Result != nil {
		r.result = ev.Result.Status
	}
	return r, nil
}

func renderTable(w io.Writer, hits []clickhouse.Hit) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OCCURRED\tTENANT\tACTOR\tEVENT\tRESOURCE\tRESULT\tPARTITION/SEQ")
	for _, h := range hits {
		r, err := flatten(h)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s:%s\t%s\t%s:%s\t%s\t%d/%d\n", r.occurred, r.tenant, r.actorType, r.actorID, r.action, r.resType, r.resID, r.result, h.Partition, h.Seq)
	}
	if len(hits) == 0 {
		fmt.Fprintln(tw, "(no matching events)")
	}
	return tw.Flush()
}

// renderJSON writes one object per hit: its chain position and the canonical event
// bytes verbatim, so the output can be hashed and checked against the chain.
func renderJSON(w io.Writer, hits []clickhouse.Hit) error {
	for _, h := range hits {
		line := fmt.Sprintf(`{"partition":%d,"seq":%d,"chained_at":%q,"leaf_hash":%q,"event":%s}`+"\n",
			h.Partition, h.Seq, event.FormatTime(h.ChainedAt), h.LeafHash, h.Event)
		if _, err := io.WriteString(w, line); err != nil {
			return err
		}
	}
	return nil
}

// renderCSV writes one row per hit. A cell that begins with = + - @ or a control
// character gets a leading ' so that a spreadsheet shows it instead of running it:
// actor ids, resource ids and the like come from agents and may hold anything. -o
// json keeps every value byte for byte.
func renderCSV(w io.Writer, hits []clickhouse.Hit) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"occurred_at", "tenant", "actor_type", "actor_id", "action", "resource_type", "resource_id", "result", "partition", "seq", "event_id", "leaf_hash"})
	for _, h := range hits {
		r, err := flatten(h)
		if err != nil {
			return err
		}
		row := []string{r.occurred, r.tenant, r.actorType, r.actorID, r.action, r.resType, r.resID, r.result,
			strconv.Itoa(int(h.Partition)), strconv.FormatUint(h.Seq, 10), r.id, h.LeafHash}
		for i, c := range row {
			row[i] = export.SafeCell(c)
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}
