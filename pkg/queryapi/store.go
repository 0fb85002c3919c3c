package queryapi

import (
	"context"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/proof"
	"github.com/trailkeep/trailkeep/pkg/sqlscope"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
	"github.com/trailkeep/trailkeep/pkg/verify"
)

// Store is what the query API reads. *clickhouse.Store implements it; the API
// depends on no more of it than this, so authentication, roles and tenant scoping
// are the API's and the queries are the store's.
type Store interface {
	proof.Source
	// verify.Source: a partition's checkpoints and records, for GET /v1/partitions/{p}/...
	verify.Source
	// RecordByID returns the stored record of event id within tenants (nil: any),
	// or clickhouse.ErrNotFound.
	RecordByID(ctx context.Context, id string, tenants []string) (chain.Record, error)
	Search(ctx context.Context, req clickhouse.SearchRequest) ([]clickhouse.Hit, *clickhouse.Cursor, error)
	// Histogram counts the matching events per bucket of occurred_at.
	Histogram(ctx context.Context, req clickhouse.HistogramRequest) ([]clickhouse.Bucket, error)
	// LatestCheckpoints returns each partition's latest checkpoint and when it
	// was stored.
	LatestCheckpoints(ctx context.Context) (map[int32]clickhouse.LatestCheckpoint, error)
	// Partitions lists the partitions holding the tenants' events.
	Partitions(ctx context.Context, tenants []string) ([]int32, error)
	// SQLScope is what sqlscope confines the tenants' statements to.
	SQLScope(tenants []string) sqlscope.Scope
	ReadOnly(ctx context.Context, stmt string, lim clickhouse.SQLLimits, columns func([]clickhouse.Column) error, row func([]any) error) (truncated bool, err error)
	Export(ctx context.Context, req clickhouse.ExportRequest, fn func(chain.Record) error) error
	// Head returns the tenants' (nil: every tenant's) highest stored seq per
	// partition; Follow the matching records stored after a position.
	Head(ctx context.Context, tenants []string) (clickhouse.Position, error)
	Follow(ctx context.Context, req clickhouse.ExportRequest, pos clickhouse.Position, limit int) ([]chain.Record, clickhouse.Position, error)
	Approvals(ctx context.Context, req clickhouse.ApprovalsRequest) ([]clickhouse.Approval, error)
	FindDrift(ctx context.Context, req clickhouse.DriftRequest) ([]clickhouse.Drift, error)
	// SavedQueries, SaveQuery and DeleteQuery keep the tenants' saved queries (the
	// only writes the query API makes; its ClickHouse user needs INSERT on
	// saved_queries and nothing else).
	SavedQueries(ctx context.Context, tenant string) ([]clickhouse.SavedQuery, error)
	SaveQuery(ctx context.Context, q clickhouse.SavedQuery) error
	DeleteQuery(ctx context.Context, tenant, name, by string) error
	Ping(ctx context.Context) error
}

var _ Store = (*clickhouse.Store)(nil)
