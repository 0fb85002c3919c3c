package clickhouse

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trailkeep/trailkeep/pkg/query"
)

// SearchRequest is one page of a search.
type SearchRequest struct {
	Filter query.Filter
	// Tenants restricts the search to these tenants; empty searches every tenant
	// (operators only: the query API always sets the caller's tenants).
	Tenants []string
	// After continues from a previous page's cursor.
	After *Cursor
	// Limit is the page size: default 100, at most MaxSearchLimit.
	Limit int
}

func (r SearchRequest) pageSize() int { return pageSize(r.Limit) }

// pageSize applies the default (100) and the bound (MaxSearchLimit) to a limit.
func pageSize(limit int) int {
	if limit <= 0 {
		return 100
	}
	return min(limit, MaxSearchLimit)
}

// tenantIn returns "tenant IN (?, ...)" with one placeholder per tenant, and the
// tenants as arguments.
func tenantIn(tenants []string) (string, []any) {
	args := make([]any, len(tenants))
	for i, t := range tenants {
		args[i] = t
	}
	return "tenant IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(tenants)), ", ") + ")", args
}

// MaxSearchLimit bounds one page.
const MaxSearchLimit = 10000

// Hit is one matching event with its chain position.
type Hit struct {
	Partition int32
	Seq       uint64
	ChainedAt time.Time
	LeafHash  string
	Event     []byte // canonical bytes, verbatim
}

// Cursor is the position of the last hit of a page. Pages are ordered newest
// first by (chained_at_ns, chain_partition, seq): an exact integer order on every
// server generation, where occurred_at has only whole seconds on legacy servers.
type Cursor struct {
	ChainedAtNS int64
	Partition   uint32
	Seq         uint64
}

// String returns the opaque form handed to clients.
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "v1:%d:%d:%d", c.ChainedAtNS, c.Partition, c.Seq))
}

// ParseCursor reads a cursor made by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	var c Cursor
	raw, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.Split(string(raw), ":")
	if err != nil || len(parts) != 4 || parts[0] != "v1" {
		return c, fmt.Errorf("cursor %q is not one this server made; pass the next_cursor of the previous page", s)
	}
	ns, err1 := strconv.ParseInt(parts[1], 10, 64)
	p, err2 := strconv.ParseUint(parts[2], 10, 32)
	seq, err3 := strconv.ParseUint(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return c, fmt.Errorf("cursor %q is damaged; pass the next_cursor of the previous page", s)
	}
	return Cursor{ChainedAtNS: ns, Partition: uint32(p), Seq: seq}, nil
}

// searchQuery builds the statement of one search page.
func searchQuery(db string, req SearchRequest) Query {
	var where []string
	args := append([]any(nil), req.Filter.Args...)
	where = append(where, "("+req.Filter.Where+")")
	if len(req.Tenants) > 0 {
		in, targs := tenantIn(req.Tenants)
		where = append(where, in)
		args = append(args, targs...)
	}
	if c := req.After; c != nil {
		where = append(where, "(chained_at_ns < ? OR (chained_at_ns = ? AND (chain_partition < ? OR (chain_partition = ? AND seq < ?))))")
		args = append(args, c.ChainedAtNS, c.ChainedAtNS, c.Partition, c.Partition, c.Seq)
	}
	return Query{Name: "search", SQL: "SELECT chain_partition, seq, chained_at_ns, leaf_hash, event FROM " + db + ".audit_events WHERE " +
		strings.Join(where, " AND ") + " ORDER BY chained_at_ns DESC, chain_partition DESC, seq DESC LIMIT " + strconv.Itoa(req.pageSize()), Args: args}
}

// Search returns one page of events matching req, newest first, and the cursor of
// the next page (nil when this page is the last).
func (s *Store) Search(ctx context.Context, req SearchRequest) ([]Hit, *Cursor, error) {
	q := searchQuery(s.db, req)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, nil, fmt.Errorf("clickhouse: search: %w", err)
	}
	defer rows.Close()
	var hits []Hit
	for rows.Next() {
		var (
			p    uint32
			h    Hit
			ns   int64
			leaf string
			ev   string
		)
		if err := rows.Scan(&p, &h.Seq, &ns, &leaf, &ev); err != nil {
			return nil, nil, fmt.Errorf("clickhouse: search: %w", err)
		}
		h.Partition, h.ChainedAt, h.LeafHash, h.Event = int32(p), time.Unix(0, ns).UTC(), leaf, []byte(ev)
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("clickhouse: search: %w", err)
	}
	if len(hits) < req.pageSize() {
		return hits, nil, nil
	}
	last := hits[len(hits)-1]
	return hits, &Cursor{ChainedAtNS: last.ChainedAt.UnixNano(), Partition: uint32(last.Partition), Seq: last.Seq}, nil
}

// SearchQuery returns the statement Search sends for req, so tests can run exactly
// it on every supported ClickHouse generation.
func SearchQuery(db string, req SearchRequest) Query { return searchQuery(db, req) }
