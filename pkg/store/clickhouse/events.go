package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/query"
)

// ErrNotFound is returned when no stored event has the requested id in the caller's
// tenants. It does not say whether the id exists in another tenant.
var ErrNotFound = errors.New("clickhouse: no such event")

// recordColumns are the columns a chain.Record is read from.
const recordColumns = "chain_partition, seq, chained_at_ns, prev_hash, leaf_hash, event"

func scanRecord(rows interface{ Scan(...any) error }) (chain.Record, error) {
	var (
		p          uint32
		r          chain.Record
		ns         int64
		prev, leaf string
		ev         string
	)
	if err := rows.Scan(&p, &r.Seq, &ns, &prev, &leaf, &ev); err != nil {
		return r, err
	}
	r.Partition, r.ChainedAt, r.Event = int32(p), time.Unix(0, ns).UTC(), []byte(ev)
	if err := r.PrevHash.UnmarshalText([]byte(prev)); err != nil {
		return r, fmt.Errorf("clickhouse: partition %d seq %d prev_hash: %w", p, r.Seq, err)
	}
	if err := r.LeafHash.UnmarshalText([]byte(leaf)); err != nil {
		return r, fmt.Errorf("clickhouse: partition %d seq %d leaf_hash: %w", p, r.Seq, err)
	}
	return r, nil
}

// recordByIDQuery finds one event by id. Ingest assigns UUIDv7 ids, whose first 48
// bits are the receive time in milliseconds; the record was chained soon after, so
// the day partitions around that time are searched first (window != 0) instead of
// every day of the hot window.
func recordByIDQuery(db, id string, tenants []string, window time.Duration) Query {
	where := []string{"event_id = ?"}
	args := []any{id}
	if len(tenants) > 0 {
		in, targs := tenantIn(tenants)
		where = append(where, in)
		args = append(args, targs...)
	}
	if u, err := uuid.Parse(id); err == nil && u.Version() == 7 && window > 0 {
		sec, nsec := u.Time().UnixTime()
		at := time.Unix(sec, nsec).UTC()
		where = append(where, "toUnixTimestamp(chained_at) >= ? AND toUnixTimestamp(chained_at) < ?") // see query: after:/before:
		args = append(args, at.Add(-time.Hour).Unix(), at.Add(window).Unix())
	}
	return Query{"record_by_id", "SELECT " + recordColumns + " FROM " + db + ".audit_events WHERE " + strings.Join(where, " AND ") + " LIMIT 1", args}
}

// RecordByID returns the stored record of event id within tenants (empty: any).
func (s *Store) RecordByID(ctx context.Context, id string, tenants []string) (chain.Record, error) {
	// A stalled pipeline can chain an event days after ingest received it; the
	// narrow read is tried first and the full one only when it finds nothing.
	for _, window := range []time.Duration{7 * 24 * time.Hour, 0} {
		q := recordByIDQuery(s.db, id, tenants, window)
		rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
		if err != nil {
			return chain.Record{}, fmt.Errorf("clickhouse: event %s: %w", id, err)
		}
		found := rows.Next()
		var rec chain.Record
		if found {
			rec, err = scanRecord(rows)
		}
		if err == nil {
			err = rows.Err()
		}
		rows.Close()
		if err != nil {
			return chain.Record{}, fmt.Errorf("clickhouse: event %s: %w", id, err)
		}
		if found {
			return rec, nil
		}
		if _, perr := uuid.Parse(id); perr != nil {
			break // not a UUID: the first read was already the full one
		}
	}
	return chain.Record{}, ErrNotFound
}

func latestCheckpointsQuery(db string) Query {
	// signed_at as Unix seconds: DateTime on legacy servers, DateTime64 on modern
	// ones, the same integer on both.
	return Query{"latest_checkpoints", "SELECT chain_partition, argMax(checkpoint, tree_size), toUnixTimestamp(argMax(signed_at, tree_size)) FROM " + db +
		".audit_checkpoints GROUP BY chain_partition ORDER BY chain_partition", nil}
}

// LatestCheckpoint is a partition's largest signed checkpoint and when it was
// stored (the signed_at column, whole seconds): how old the newest anchor is. The
// time is the writer's clock, not part of what is signed.
type LatestCheckpoint struct {
	chain.SignedCheckpoint
	StoredAt time.Time
}

// LatestCheckpoints returns the largest signed checkpoint of every partition.
func (s *Store) LatestCheckpoints(ctx context.Context) (map[int32]LatestCheckpoint, error) {
	q := latestCheckpointsQuery(s.db)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: latest checkpoints: %w", err)
	}
	defer rows.Close()
	out := map[int32]LatestCheckpoint{}
	for rows.Next() {
		var p uint32
		var raw string
		var at uint32
		if err := rows.Scan(&p, &raw, &at); err != nil {
			return nil, fmt.Errorf("clickhouse: latest checkpoints: %w", err)
		}
		var cp chain.SignedCheckpoint
		if err := json.Unmarshal([]byte(raw), &cp); err != nil {
			return nil, fmt.Errorf("clickhouse: stored checkpoint of partition %d: %w", p, err)
		}
		out[int32(p)] = LatestCheckpoint{SignedCheckpoint: cp, StoredAt: time.Unix(int64(at), 0).UTC()}
	}
	return out, rows.Err()
}

// CoveringCheckpoint returns the smallest signed checkpoint of partition p whose tree
// contains seq, and ok=false when none has been signed yet.
func (s *Store) CoveringCheckpoint(ctx context.Context, p int32, seq uint64) (cp chain.SignedCheckpoint, ok bool, err error) {
	q := coveringCheckpointQuery(s.db, p, seq)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return cp, false, fmt.Errorf("clickhouse: checkpoint covering partition %d seq %d: %w", p, seq, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return cp, false, rows.Err()
	}
	var raw string
	if err := rows.Scan(&raw); err != nil {
		return cp, false, err
	}
	if err := json.Unmarshal([]byte(raw), &cp); err != nil {
		return cp, false, fmt.Errorf("clickhouse: stored checkpoint of partition %d: %w", p, err)
	}
	return cp, true, nil
}

// ProofCheckpoint returns the checkpoint a proof of partition p's seq is made
// against: the first one covering seq (the same proof every time), or with latest
// the partition's newest one. ok is false when no signed checkpoint covers seq yet.
func (s *Store) ProofCheckpoint(ctx context.Context, p int32, seq uint64, latest bool) (cp chain.SignedCheckpoint, ok bool, err error) {
	if !latest {
		return s.CoveringCheckpoint(ctx, p, seq)
	}
	all, err := s.LatestCheckpoints(ctx)
	if err != nil {
		return cp, false, err
	}
	latestCP, ok := all[p]
	cp = latestCP.SignedCheckpoint
	if c, uerr := cp.Unverified(); ok && (uerr != nil || c.Size <= seq) {
		ok = false
	}
	return cp, ok, nil
}

func coveringCheckpointQuery(db string, p int32, seq uint64) Query {
	return Query{"covering_checkpoint", "SELECT checkpoint FROM " + db + ".audit_checkpoints WHERE chain_partition = ? AND tree_size > ? ORDER BY tree_size LIMIT 1", []any{uint32(p), seq}}
}

// ExportRequest selects the records an export streams.
type ExportRequest struct {
	Filter query.Filter
	// Tenants restricts the export; empty exports every tenant.
	Tenants []string
}

func eventPartitionsQuery(db string, tenants []string) Query {
	where, args := tenantWhere(tenants)
	return Query{"event_partitions", "SELECT chain_partition, toYYYYMMDD(chained_at) AS day, count(), min(seq), max(seq) FROM " + db + ".audit_events" + where + " GROUP BY chain_partition, day ORDER BY chain_partition, day", args}
}

// partitionDays is where one partition's exported records are.
type partitionDays struct {
	p      int32
	days   seqDays // every day known, at least one
	lo, hi uint64  // the smallest and highest seq
}

// exportDays reads, in one statement, the days that hold each partition's records
// of tenants (none: every tenant), so each export window reads only those days.
func (s *Store) exportDays(ctx context.Context, tenants []string) ([]partitionDays, error) {
	q := eventPartitionsQuery(s.db, tenants)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []partitionDays
	for rows.Next() {
		var p uint32
		var d seqDay
		if err := rows.Scan(&p, &d.day, &d.rows, &d.lo, &d.hi); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].p != int32(p) {
			out = append(out, partitionDays{p: int32(p), lo: d.lo})
		}
		pd := &out[len(out)-1]
		pd.days.known = append(pd.days.known, d)
		pd.days.all = append(pd.days.all, d.day)
		pd.lo, pd.hi = min(pd.lo, d.lo), max(pd.hi, d.hi)
	}
	return out, rows.Err()
}

// tenantWhere is the WHERE clause (with a leading space) confining a statement to
// tenants, or "" for every tenant.
func tenantWhere(tenants []string) (string, []any) {
	if len(tenants) == 0 {
		return "", nil
	}
	in, args := tenantIn(tenants)
	return " WHERE " + in, args
}

func exportWindowQuery(db string, req ExportRequest, p int32, from, to uint64, days, all []uint32) Query {
	terms, margs := matching(req.Filter, req.Tenants)
	cond, dargs := dayFilter(days, all)
	where := append([]string{"chain_partition = ?", "seq >= ?", "seq < ?", cond}, terms...)
	args := append(append([]any{uint32(p), from, to}, dargs...), margs...)
	return Query{"export_window", "SELECT " + recordColumns + " FROM " + db + ".audit_events WHERE " + whereClause(where) + " ORDER BY seq", args}
}

// Export streams every record matching req to fn, partition by partition in seq
// order. It reads in seq windows, so neither this process nor the server ever holds
// more than one window, however many records match.
func (s *Store) Export(ctx context.Context, req ExportRequest, fn func(chain.Record) error) error {
	parts, err := s.exportDays(ctx, req.Tenants)
	if err != nil {
		return fmt.Errorf("clickhouse: export: %w", err)
	}
	// Smaller blocks than the server's default (65536 rows, tens of MB of events)
	// keep what the driver holds at once small; the rate barely changes.
	ctx = withSettings(ctx, ch.Settings{"max_block_size": 8192}, "")
	for _, pd := range parts {
		err := pd.days.eachWindow(pd.lo, pd.hi+1, s.seqWindow(), func(lo, hi uint64, days []uint32) error {
			return s.exportWindow(ctx, exportWindowQuery(s.db, req, pd.p, lo, hi, days, pd.days.all), pd.p, fn)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// exportWindow streams one window's records (q, an exportWindowQuery) to fn.
func (s *Store) exportWindow(ctx context.Context, q Query, p int32, fn func(chain.Record) error) error {
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return fmt.Errorf("clickhouse: export partition %d: %w", p, err)
	}
	defer rows.Close()
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("clickhouse: export partition %d: %w", p, err)
	}
	return nil
}

// Position is, per partition, the last seq a reader has seen. A partition that is
// absent has not been seen at all: all of its records are after the position.
type Position map[int32]uint64

// maxPositionPartitions bounds a parsed Position (a partition count far above any
// deployment's, so a crafted one cannot make a statement of unbounded size).
const maxPositionPartitions = 4096

// String is the position's text form, "P:SEQ,P:SEQ" in partition order ("" when no
// partition has been seen), which ParsePosition reads back.
func (pos Position) String() string {
	ps := make([]int32, 0, len(pos))
	for p := range pos {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%d", p, pos[p])
	}
	return b.String()
}

// ParsePosition reads Position.String's form. Each partition appears once.
func ParsePosition(text string) (Position, error) {
	pos := Position{}
	if text == "" {
		return pos, nil
	}
	for item := range strings.SplitSeq(text, ",") {
		ps, ss, ok := strings.Cut(item, ":")
		p, perr := strconv.ParseInt(ps, 10, 32)
		seq, serr := strconv.ParseUint(ss, 10, 64)
		if !ok || perr != nil || serr != nil || p < 0 {
			return nil, fmt.Errorf("position item %q: want PARTITION:SEQ with a partition from 0 and a seq from 0", item)
		}
		if _, dup := pos[int32(p)]; dup {
			return nil, fmt.Errorf("position names partition %d twice", p)
		}
		if len(pos) == maxPositionPartitions {
			return nil, fmt.Errorf("position names more than %d partitions", maxPositionPartitions)
		}
		pos[int32(p)] = seq
	}
	return pos, nil
}

func (pos Position) condition() (string, []any) {
	if len(pos) == 0 {
		return "1", nil
	}
	var ors []string
	var args []any
	var seen []string
	for p, seq := range pos {
		ors = append(ors, "(chain_partition = ? AND seq > ?)")
		args = append(args, uint32(p), seq)
		seen = append(seen, "?")
	}
	for p := range pos {
		args = append(args, uint32(p))
	}
	ors = append(ors, "chain_partition NOT IN ("+strings.Join(seen, ", ")+")")
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// Head returns, per partition, the highest stored seq of the tenants' events (nil:
// every tenant's): the position from which Follow reports only new records. Scoped
// to the tenants so a tenant's reader does not learn how many events others have.
//
// It reads the part list and audit_seq_days (with tenants, their rows of
// audit_tenant_seq_days), and audit_events only on the days whose summary does not
// match their rows, as MaxSeq does for one partition: a follower's start does not
// scan the hot window, nor a tenant's follower the tenant's whole history.
func (s *Store) Head(ctx context.Context, tenants []string) (Position, error) {
	return s.maxSeqs(ctx, tenants)
}

// Follow returns the records matching req stored after pos (at most limit, in
// partition and seq order: a page cut by the limit resumes exactly where it
// stopped) and the advanced position. The writer stores each partition in seq order
// with one insert in flight, so a record newer than pos never becomes visible
// before an older one: polling Follow misses nothing. It reads only the day
// partitions that audit_seq_days shows can hold a record after pos, and every day
// whose summary does not match its rows (followDays), so a poll costs the new rows,
// not the hot window.
func (s *Store) Follow(ctx context.Context, req ExportRequest, pos Position, limit int) ([]chain.Record, Position, error) {
	next := maps.Clone(pos)
	if next == nil {
		next = Position{}
	}
	// Followers poll every second: only the days that can hold a newer record are
	// read, not the whole hot window each time.
	days, all, err := s.followDays(ctx, pos, req.Tenants)
	if err != nil || len(days) == 0 {
		return nil, next, err
	}
	cond, args := pos.condition()
	dcond, dargs := dayFilter(days, all)
	terms, margs := matching(req.Filter, req.Tenants)
	where := append([]string{cond, dcond}, terms...)
	args = append(append(args, dargs...), margs...)
	sql := "SELECT " + recordColumns + " FROM " + s.db + ".audit_events WHERE " + whereClause(where) +
		" ORDER BY chain_partition, seq LIMIT " + fmt.Sprint(pageSize(limit))
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, pos, fmt.Errorf("clickhouse: follow: %w", err)
	}
	defer rows.Close()
	var out []chain.Record
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, pos, err
		}
		out = append(out, rec)
		if cur, ok := next[rec.Partition]; !ok || rec.Seq > cur {
			next[rec.Partition] = rec.Seq
		}
	}
	if err := rows.Err(); err != nil {
		return nil, pos, fmt.Errorf("clickhouse: follow: %w", err)
	}
	return out, next, nil
}

// Count returns how many records match req.
func (s *Store) Count(ctx context.Context, req ExportRequest) (uint64, error) {
	where, args := matching(req.Filter, req.Tenants)
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".audit_events WHERE "+whereClause(where), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("clickhouse: count: %w", err)
	}
	return n, nil
}
