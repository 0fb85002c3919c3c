package clickhouse

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
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

// matching returns the WHERE terms, and their arguments, that select the events
// filter f matches within tenants (none: every tenant). Every read that takes a
// filter and a tenant scope builds its condition here, so none can drop the scope.
func matching(f query.Filter, tenants []string) ([]string, []any) {
	var where []string
	var args []any
	if f.Where != "" {
		where = append(where, "("+f.Where+")")
		args = append(args, f.Args...)
	}
	if len(tenants) > 0 {
		in, targs := tenantIn(tenants)
		where = append(where, in)
		args = append(args, targs...)
	}
	return where, args
}

// whereClause joins terms with AND; no terms selects every row.
func whereClause(terms []string) string {
	if len(terms) == 0 {
		return "1"
	}
	return strings.Join(terms, " AND ")
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

// searchQuery builds the first statement of one search page: the positions of the
// page's events, read from the small columns only. Reading the event column in the
// same statement would make the server decompress it for every matching row before
// the ORDER BY ... LIMIT keeps a page of them (18.16 has no lazy materialisation),
// which over millions of matches costs seconds; fetchQuery reads it for the page.
func searchQuery(db string, req SearchRequest) Query {
	return windowQuery(db, req, nil, req.pageSize())
}

// windowQuery is searchQuery restricted to the chain days of w (nil: every day),
// returning at most limit positions.
func windowQuery(db string, req SearchRequest, w *dayWindow, limit int) Query {
	where, args := matching(req.Filter, req.Tenants)
	if c := req.After; c != nil {
		where = append(where, "(chained_at_ns < ? OR (chained_at_ns = ? AND (chain_partition < ? OR (chain_partition = ? AND seq < ?))))")
		args = append(args, c.ChainedAtNS, c.ChainedAtNS, c.Partition, c.Partition, c.Seq)
	}
	if w != nil {
		// The table's partition key itself: the server skips the day partitions
		// outside the window.
		where = append(where, "toYYYYMMDD(chained_at) >= ? AND toYYYYMMDD(chained_at) <= ?")
		args = append(args, w.first, w.last)
	}
	return Query{Name: "search", SQL: "SELECT chain_partition, seq, chained_at_ns, tenant, toUInt32(toUnixTimestamp(occurred_at)) FROM " + db + ".audit_events WHERE " +
		whereClause(where) + " ORDER BY chained_at_ns DESC, chain_partition DESC, seq DESC LIMIT " + strconv.Itoa(limit), Args: args}
}

// pageKey is one hit of the first statement.
type pageKey struct {
	Partition   uint32
	Seq         uint64
	ChainedAtNS int64
	Tenant      string
	OccurredSec uint32
}

// fetchChunk bounds the positions one fetch statement names, keeping it well under
// the server's max_query_size.
const fetchChunk = 1000

// fetchQuery reads the leaf hash and event of the given positions. The tenant and
// occurred_at bounds are the table's sort key, so the server reads only the granules
// that hold the page.
func fetchQuery(db string, keys []pageKey) Query {
	var tenants []string
	lo, hi := keys[0].OccurredSec, keys[0].OccurredSec
	pos := make([]string, len(keys))
	var args []any
	for i, k := range keys {
		if !slices.Contains(tenants, k.Tenant) {
			tenants = append(tenants, k.Tenant)
		}
		lo, hi = min(lo, k.OccurredSec), max(hi, k.OccurredSec)
		pos[i] = "(?, ?)"
	}
	in, targs := tenantIn(tenants)
	args = append(args, targs...)
	args = append(args, lo, hi+1)
	for _, k := range keys {
		args = append(args, k.Partition, k.Seq)
	}
	return Query{Name: "search_fetch", SQL: "SELECT chain_partition, seq, leaf_hash, event FROM " + db + ".audit_events WHERE " + in +
		" AND toUnixTimestamp(occurred_at) >= ? AND toUnixTimestamp(occurred_at) < ? AND (chain_partition, seq) IN (" + strings.Join(pos, ", ") + ")", Args: args}
}

// FetchQuery returns the second statement of a search page whose first statement
// returned keys (partition, seq, chained_at_ns, tenant, occurred_at seconds), for
// tests that run it on every ClickHouse generation.
func FetchQuery(db string, partitions []uint32, seqs []uint64, tenants []string, occurred []uint32) Query {
	keys := make([]pageKey, len(partitions))
	for i := range keys {
		keys[i] = pageKey{Partition: partitions[i], Seq: seqs[i], Tenant: tenants[i], OccurredSec: occurred[i]}
	}
	return fetchQuery(db, keys)
}

// Search returns one page of events matching req, newest first, and the cursor of
// the next page (nil when this page is the last).
//
// The page's positions are read newest chain days first: the day that can hold the
// newest match, then the next seven, then the rest, each window a range of day
// partitions (see pageKeys). Only days whose stored occurred_at span meets the
// filter's after:/before: bounds are read at all.
func (s *Store) Search(ctx context.Context, req SearchRequest) ([]Hit, *Cursor, error) {
	keys, err := s.pageKeys(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("clickhouse: search: %w", err)
	}
	type body struct{ leaf, event string }
	found := make(map[[2]uint64]body, len(keys))
	for lo := 0; lo < len(keys); lo += fetchChunk {
		fq := fetchQuery(s.db, keys[lo:min(lo+fetchChunk, len(keys))])
		rows, err := s.conn.Query(ctx, fq.SQL, fq.Args...)
		if err != nil {
			return nil, nil, fmt.Errorf("clickhouse: search fetch: %w", err)
		}
		for rows.Next() {
			var p uint32
			var seq uint64
			var b body
			if err := rows.Scan(&p, &seq, &b.leaf, &b.event); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("clickhouse: search fetch: %w", err)
			}
			found[[2]uint64{uint64(p), seq}] = b
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("clickhouse: search fetch: %w", err)
		}
	}
	hits := make([]Hit, 0, len(keys))
	for _, k := range keys {
		b, ok := found[[2]uint64{uint64(k.Partition), k.Seq}]
		if !ok {
			// Rows are never updated or deleted inside the hot window; a missing
			// row means the table changed under us (a dropped day partition).
			return nil, nil, fmt.Errorf("clickhouse: search: event %d/%d vanished between the two reads of one page; retry", k.Partition, k.Seq)
		}
		hits = append(hits, Hit{Partition: int32(k.Partition), Seq: k.Seq, ChainedAt: time.Unix(0, k.ChainedAtNS).UTC(), LeafHash: b.leaf, Event: []byte(b.event)})
	}
	if len(hits) < req.pageSize() {
		return hits, nil, nil
	}
	last := hits[len(hits)-1]
	return hits, &Cursor{ChainedAtNS: last.ChainedAt.UnixNano(), Partition: uint32(last.Partition), Seq: last.Seq}, nil
}

// pageKeys reads the positions of one page, window by window: windows are disjoint
// ranges of chain days in descending order and each is read in the page's order, so
// the first page-size positions of the windows in turn are exactly the page an
// unwindowed read returns.
func (s *Store) pageKeys(ctx context.Context, req SearchRequest) ([]pageKey, error) {
	windows, err := s.searchWindows(ctx, req)
	if err != nil {
		return nil, err
	}
	limit := req.pageSize()
	var keys []pageKey
	for _, w := range windows {
		q := windowQuery(s.db, req, w, limit-len(keys))
		got, err := s.readKeys(ctx, q)
		if err != nil {
			return nil, err
		}
		if keys = append(keys, got...); len(keys) == limit {
			break
		}
	}
	return keys, nil
}

// readKeys runs one statement of windowQuery's shape.
func (s *Store) readKeys(ctx context.Context, q Query) ([]pageKey, error) {
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []pageKey
	for rows.Next() {
		var k pageKey
		if err := rows.Scan(&k.Partition, &k.Seq, &k.ChainedAtNS, &k.Tenant, &k.OccurredSec); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// dayWindow is the day partitions [first, last] (YYYYMMDD ids) one statement reads.
type dayWindow struct{ first, last uint32 }

// searchWindows returns the windows a search reads, newest first (none: no stored
// event can match).
func (s *Store) searchWindows(ctx context.Context, req SearchRequest) ([]*dayWindow, error) {
	days, _, err := s.occurredDays(ctx, req.Filter.Occurred, req.After)
	if err != nil || len(days) == 0 {
		return nil, err
	}
	slices.Reverse(days)
	return windowsOf(days), nil
}

// occurredDays returns the day partitions that can hold an event whose occurred_at
// is in occ and, after a cursor, chained at or before it; and every day partition.
// Both are ascending. A day partition is left out only when audit_days shows, for
// exactly the rows the partition holds now, that none can match: its occurred_at
// span misses occ, or all its rows were chained after the cursor.
func (s *Store) occurredDays(ctx context.Context, occ query.Span, after *Cursor) (days, all []uint32, err error) {
	parts, err := s.dayParts(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("days: %w", err)
	}
	q := searchDaysQuery(s.db, occ, after)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, nil, fmt.Errorf("days: %w", err)
	}
	defer rows.Close()
	ruledOut := map[uint32]bool{}
	for rows.Next() {
		var day uint32
		var n uint64
		var may uint8
		if err := rows.Scan(&day, &n, &may); err != nil {
			return nil, nil, fmt.Errorf("days: %w", err)
		}
		// A count that differs from the partition's means rows the summary has not
		// seen (or has seen twice), a mutation rows it holds no longer: the day is
		// read.
		ruledOut[day] = may == 0 && parts[day].summarised(n)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("days: %w", err)
	}
	for day := range parts {
		all = append(all, day)
		if !ruledOut[day] {
			days = append(days, day)
		}
	}
	slices.Sort(days)
	slices.Sort(all)
	return days, all, nil
}

// windowsOf cuts days (descending) into the newest one, the next seven and the rest.
// A window spans the days between its ends, including days ruled out: they hold no
// match, and one range keeps the statement simple for the server.
func windowsOf(days []uint32) []*dayWindow {
	var out []*dayWindow
	start := 0
	for _, end := range []int{1, 8, len(days)} {
		if end = min(end, len(days)); end > start {
			out = append(out, &dayWindow{first: days[end-1], last: days[start]})
			start = end
		}
	}
	return out
}

// searchDaysQuery returns, per summarised day, its row count and whether its events
// may match: their occurred_at span meets occ, and (after a cursor) some were chained
// at or before it.
func searchDaysQuery(db string, occ query.Span, after *Cursor) Query {
	may := []string{"1"}
	var args []any
	if occ.HasFrom {
		may = append(may, "maxMerge(occurred_max) >= ?")
		args = append(args, occ.From)
	}
	if occ.HasTo {
		may = append(may, "minMerge(occurred_min) < ?")
		args = append(args, occ.To)
	}
	if after != nil {
		may = append(may, "minMerge(chained_min_ns) <= ?")
		args = append(args, after.ChainedAtNS)
	}
	return Query{Name: "search_days", SQL: "SELECT day, countMerge(rows), toUInt8(" + strings.Join(may, " AND ") + ") FROM " + db + ".audit_days GROUP BY day ORDER BY day", Args: args}
}

// SearchQuery returns the first statement Search sends for req, so tests can run
// exactly it on every supported ClickHouse generation.
func SearchQuery(db string, req SearchRequest) Query { return searchQuery(db, req) }
