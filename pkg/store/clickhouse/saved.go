package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// SavedQuery is a named filter-language query of one tenant.
type SavedQuery struct {
	Tenant      string    `json:"tenant"`
	Name        string    `json:"name"`
	Query       string    `json:"query"`
	Description string    `json:"description,omitempty"`
	SavedBy     string    `json:"saved_by"`
	SavedAt     time.Time `json:"saved_at"`
}

// SaveQuery stores q, replacing an earlier query of the same tenant and name. The
// caller validates q.Query (query.Parse) first.
func (s *Store) SaveQuery(ctx context.Context, q SavedQuery) error {
	return s.putSaved(ctx, q, 0)
}

// DeleteQuery removes a saved query; ErrNotFound when there is none.
func (s *Store) DeleteQuery(ctx context.Context, tenant, name, by string) error {
	if _, err := s.SavedQuery(ctx, tenant, name); err != nil {
		return err
	}
	return s.putSaved(ctx, SavedQuery{Tenant: tenant, Name: name, SavedBy: by, SavedAt: time.Now()}, 1)
}

func (s *Store) putSaved(ctx context.Context, q SavedQuery, deleted uint8) error {
	b, err := s.prepareBatch(ctx, "INSERT INTO "+s.db+".saved_queries (tenant, name, query, description, saved_by, saved_at, version, deleted)")
	if err != nil {
		return fmt.Errorf("clickhouse: save query: %w", err)
	}
	if err := b.Append(q.Tenant, q.Name, q.Query, q.Description, q.SavedBy, q.SavedAt.UTC(), uint64(time.Now().UnixNano()), deleted); err != nil {
		b.Abort()
		return fmt.Errorf("clickhouse: save query: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: save query %s/%s: %w", q.Tenant, q.Name, err)
	}
	return nil
}

func savedQueriesQuery(db string, tenant, name string) Query {
	sql := "SELECT tenant, name, argMax(query, version), argMax(description, version), argMax(saved_by, version), argMax(saved_at, version) FROM " +
		db + ".saved_queries WHERE tenant = ?"
	args := []any{tenant}
	if name != "" {
		sql += " AND name = ?"
		args = append(args, name)
	}
	return Query{"saved_queries", sql + " GROUP BY tenant, name HAVING argMax(deleted, version) = 0 ORDER BY name", args}
}

// SavedQueries lists a tenant's saved queries by name.
func (s *Store) SavedQueries(ctx context.Context, tenant string) ([]SavedQuery, error) {
	return s.saved(ctx, tenant, "")
}

// SavedQuery returns one saved query, or ErrNotFound.
func (s *Store) SavedQuery(ctx context.Context, tenant, name string) (SavedQuery, error) {
	qs, err := s.saved(ctx, tenant, name)
	if err != nil {
		return SavedQuery{}, err
	}
	if len(qs) == 0 {
		return SavedQuery{}, fmt.Errorf("saved query %q of tenant %s: %w", name, tenant, ErrNotFound)
	}
	return qs[0], nil
}

func (s *Store) saved(ctx context.Context, tenant, name string) ([]SavedQuery, error) {
	q := savedQueriesQuery(s.db, tenant, name)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: saved queries: %w", err)
	}
	defer rows.Close()
	var out []SavedQuery
	for rows.Next() {
		var sq SavedQuery
		if err := rows.Scan(&sq.Tenant, &sq.Name, &sq.Query, &sq.Description, &sq.SavedBy, &sq.SavedAt); err != nil {
			return nil, err
		}
		out = append(out, sq)
	}
	return out, rows.Err()
}
