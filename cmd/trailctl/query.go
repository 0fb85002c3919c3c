package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// savedQueries is what the trailctl query subcommands share: the store or API
// flags and the tenant whose saved queries they manage.
type savedQueries struct {
	sf     storeFlags
	api    apiFlags
	tenant string
}

// savedStore keeps saved queries: the store (*clickhouse.Store) or the query API.
type savedStore interface {
	SavedQueries(ctx context.Context, tenant string) ([]clickhouse.SavedQuery, error)
	SaveQuery(ctx context.Context, q clickhouse.SavedQuery) error
	DeleteQuery(ctx context.Context, tenant, name, by string) error
}

// apiSaved keeps saved queries through the query API, which records the token's
// actor as saved_by.
type apiSaved struct{ cl *queryapi.Client }

func (a apiSaved) SavedQueries(ctx context.Context, tenant string) ([]clickhouse.SavedQuery, error) {
	qs, err := a.cl.SavedQueries(ctx, tenant)
	return qs, apiFailure(err)
}

func (a apiSaved) SaveQuery(ctx context.Context, q clickhouse.SavedQuery) error {
	return apiFailure(a.cl.SaveQuery(ctx, q))
}

func (a apiSaved) DeleteQuery(ctx context.Context, tenant, name, _ string) error {
	err := a.cl.DeleteQuery(ctx, tenant, name)
	var ae *queryapi.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return clickhouse.ErrNotFound
	}
	return apiFailure(err)
}

// savedQuery finds one saved query by name, or clickhouse.ErrNotFound.
func savedQuery(ctx context.Context, st savedStore, tenant, name string) (clickhouse.SavedQuery, error) {
	qs, err := st.SavedQueries(ctx, tenant)
	if err != nil {
		return clickhouse.SavedQuery{}, err
	}
	for _, q := range qs {
		if q.Name == name {
			return q, nil
		}
	}
	return clickhouse.SavedQuery{}, clickhouse.ErrNotFound
}

// withStore checks --tenant, then runs fn on the query API (--api) or an open store.
func (s *savedQueries) withStore(cmd *cobra.Command, fn func(savedStore) error) error {
	if !event.IsSlug(s.tenant) {
		return usageError(errors.New("--tenant is required (a tenant slug)"))
	}
	if s.api.url != "" {
		cl, err := s.api.client()
		if err != nil {
			return err
		}
		return fn(apiSaved{cl})
	}
	store, err := s.sf.open(cmd.Context())
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

func newQueryCmd() *cobra.Command {
	s := &savedQueries{}
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Saved searches: named filter-language queries stored per tenant",
	}
	s.sf.register(cmd)
	s.api.register(cmd)
	cmd.PersistentFlags().AddFlagSet(cmd.Flags())
	cmd.PersistentFlags().StringVar(&s.tenant, "tenant", "", "tenant the saved query belongs to (required)")
	cmd.AddCommand(newQuerySaveCmd(s), newQueryListCmd(s), newQueryRunCmd(s), newQueryDeleteCmd(s))
	return cmd
}

func newQuerySaveCmd(s *savedQueries) *cobra.Command {
	var description, by string
	save := &cobra.Command{
		Use:   "save NAME QUERY",
		Short: "Save (or replace) a named query",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !event.IsSlug(args[0]) {
				return usageError(fmt.Errorf("name %q must be a lower-case slug", args[0]))
			}
			q := strings.Join(args[1:], " ")
			if _, err := query.Compile(q, time.Now()); err != nil {
				return usageError(err)
			}
			return s.withStore(cmd, func(store savedStore) error {
				if err := store.SaveQuery(cmd.Context(), clickhouse.SavedQuery{Tenant: s.tenant, Name: args[0], Query: q, Description: description, SavedBy: by, SavedAt: time.Now()}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "saved %s/%s: %s\n", s.tenant, args[0], q)
				return nil
			})
		},
	}
	save.Flags().StringVar(&description, "description", "", "what the query is for")
	save.Flags().StringVar(&by, "by", defaultIdentity(), "who saves it")
	return save
}

func newQueryListCmd(s *savedQueries) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List a tenant's saved queries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.withStore(cmd, func(store savedStore) error {
				qs, err := store.SavedQueries(cmd.Context(), s.tenant)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tQUERY\tSAVED BY\tSAVED AT\tDESCRIPTION")
				for _, q := range qs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", q.Name, q.Query, q.SavedBy, q.SavedAt.UTC().Format(time.RFC3339), q.Description)
				}
				return tw.Flush()
			})
		},
	}
}

func newQueryRunCmd(s *savedQueries) *cobra.Command {
	var so searchOptions
	run := &cobra.Command{
		Use:   "run NAME",
		Short: "Run a saved query over the tenant's events (as trailctl search)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q clickhouse.SavedQuery
			err := s.withStore(cmd, func(store savedStore) (err error) {
				q, err = savedQuery(cmd.Context(), store, s.tenant, args[0])
				return err
			})
			if errors.Is(err, clickhouse.ErrNotFound) {
				return failed("tenant %s has no saved query %q (trailctl query list)", s.tenant, args[0])
			}
			if err != nil {
				return err
			}
			so.query, so.tenants, so.api = q.Query, []string{s.tenant}, s.api
			return doSearch(cmd, &s.sf, so)
		},
	}
	run.Flags().IntVar(&so.limit, "limit", 50, "events per page")
	run.Flags().StringVar(&so.cursor, "cursor", "", "continue after a previous page")
	run.Flags().StringVarP(&so.output, "output", "o", "table", "table, json or csv")
	run.Flags().BoolVar(&so.failEmpty, "fail-empty", false, "exit 1 when nothing matches")
	return run
}

func newQueryDeleteCmd(s *savedQueries) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a saved query",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := s.withStore(cmd, func(store savedStore) error {
				return store.DeleteQuery(cmd.Context(), s.tenant, args[0], defaultIdentity())
			})
			if errors.Is(err, clickhouse.ErrNotFound) {
				return failed("tenant %s has no saved query %q", s.tenant, args[0])
			}
			return err
		},
	}
}
