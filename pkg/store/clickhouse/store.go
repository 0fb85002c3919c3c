// Package clickhouse stores the chained audit log in ClickHouse: versioned migrations
// with DDL per server generation (modern ≥ 23.8, legacy for the 18.16 Debian package),
// idempotent batch inserts of chained records and checkpoints, and the reads that
// verification needs. The insert and query code is one path for both generations;
// only the DDL differs.
package clickhouse

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/trailkeep/trailkeep/internal/parallel"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/sqlscope"
	"github.com/trailkeep/trailkeep/schemas"
)

// Options configure Open.
type Options struct {
	// Addr of the native protocol (host:port). Default 127.0.0.1:9000.
	Addr     []string
	Database string // default "trailkeep"
	Username string // default "default"
	Password string
	// TLS, when set, encrypts the native protocol (the server's secure port, 9440 by
	// default); see Security.
	TLS *tls.Config
	// HotWindow is how long events stay in ClickHouse (checkpoints stay forever).
	// Default 90 days. On modern servers it is the table TTL; on legacy servers
	// DropExpired enforces it.
	HotWindow time.Duration
}

// Store is a ClickHouse-backed audit log store.
type Store struct {
	conn   conn
	db     string
	modern bool
	ttl    time.Duration
	ver    string
	window uint64 // seqs one partition read covers; 0: recordsWindow (tests shrink it)
}

// Open connects and checks the server; call Migrate before use.
func Open(ctx context.Context, o Options) (*Store, error) {
	if len(o.Addr) == 0 {
		o.Addr = []string{"127.0.0.1:9000"}
	}
	if o.Database == "" {
		o.Database = "trailkeep"
	}
	if o.Username == "" {
		o.Username = "default"
	}
	if o.HotWindow <= 0 {
		o.HotWindow = 90 * 24 * time.Hour
	}
	if !identRE.MatchString(o.Database) {
		return nil, fmt.Errorf("clickhouse: database name %q must match %s", o.Database, identRE)
	}
	opts := ch.Options{
		Addr: o.Addr,
		Auth: ch.Auth{Database: "default", Username: o.Username, Password: o.Password},
		TLS:  o.TLS,
		// No string-valued settings: 18.16 servers reject the client's defaults of
		// that kind; everything needed is in the DDL and the queries.
		DialTimeout:     5 * time.Second,
		ConnMaxLifetime: time.Hour,
	}
	conn, err := ch.Open(&opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open %v: %w", o.Addr, err)
	}
	insOpts := opts
	insOpts.MaxOpenConns, insOpts.MaxIdleConns = insertConns, insertConns
	ins, err := ch.Open(&insOpts)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse: open %v: %w", o.Addr, err)
	}
	s := &Store{conn: nativeConn{c: conn, ins: ins}, db: o.Database, ttl: o.HotWindow}
	if err := conn.Ping(ctx); err != nil {
		s.conn.Close()
		return nil, fmt.Errorf("clickhouse: ping %v: %w", o.Addr, err)
	}
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&s.ver); err != nil {
		s.conn.Close()
		return nil, fmt.Errorf("clickhouse: server version: %w", err)
	}
	s.modern = modernVersion(s.ver)
	return s, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// modernVersion reports whether a server version string is 23.8 or later.
func modernVersion(v string) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 23 || (major == 23 && minor >= 8)
}

// Version returns the server version and whether the modern DDL applies.
func (s *Store) Version() (string, bool) { return s.ver, s.modern }

// Close closes the connection.
func (s *Store) Close() error { return s.conn.Close() }

// Migrate creates the database and applies every migration not yet recorded in
// schema_migrations, in order, from the DDL directory for this server generation.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.db); err != nil {
		return fmt.Errorf("clickhouse: create database %s: %w", s.db, err)
	}
	if err := s.conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+s.db+".schema_migrations (version UInt32, name String, applied_at DateTime) ENGINE = MergeTree() ORDER BY version"); err != nil {
		return fmt.Errorf("clickhouse: create schema_migrations: %w", err)
	}
	applied := map[uint32]bool{}
	rows, err := s.conn.Query(ctx, "SELECT version FROM "+s.db+".schema_migrations")
	if err != nil {
		return fmt.Errorf("clickhouse: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	migs, err := Migrations(s.modern)
	if err != nil {
		return err
	}
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		for _, stmt := range m.Statements(s.db, s.ttl) {
			if err := s.conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("clickhouse: migration %04d %s: %w\n%s", m.Version, m.Name, err, stmt)
			}
		}
		// Inserts always go through the native batch API: an INSERT ... VALUES
		// statement with bound values hangs on 18.16 servers.
		b, err := s.prepareBatch(ctx, "INSERT INTO "+s.db+".schema_migrations (version, name, applied_at)")
		if err == nil {
			if err = b.Append(m.Version, m.Name, time.Now()); err == nil {
				err = b.Send()
			}
		}
		if err != nil {
			return fmt.Errorf("clickhouse: record migration %04d: %w", m.Version, err)
		}
	}
	return nil
}

// Migration is one numbered DDL file.
type Migration struct {
	Version uint32
	Name    string
	SQL     string
}

// Migrations returns the DDL files for a server generation, in order.
func Migrations(modern bool) ([]Migration, error) {
	dir := schemas.ClickHouseLegacy
	if modern {
		dir = schemas.ClickHouseModern
	}
	ents, err := fs.ReadDir(schemas.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: migrations: %w", err)
	}
	var out []Migration
	for _, e := range ents {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("clickhouse: migration file %s is not NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(schemas.FS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: uint32(v), Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Statements returns the migration's statements with {db} and {ttl_days} filled in
// and comments removed.
func (m Migration) Statements(db string, ttl time.Duration) []string {
	var lines []string
	for _, l := range strings.Split(m.SQL, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "--") || t == "" {
			continue
		}
		lines = append(lines, l)
	}
	sql := strings.NewReplacer("{db}", db, "{ttl_days}", strconv.Itoa(int(ttl/(24*time.Hour)))).Replace(strings.Join(lines, "\n"))
	var out []string
	for _, st := range strings.Split(sql, ";") {
		if st = strings.TrimSpace(st); st != "" {
			out = append(out, st)
		}
	}
	return out
}

// InsertRecords inserts chained records in one native batch, with their leaves and
// the subtrees they complete (see tree.go). The caller guarantees they are not stored
// yet (see Writer, which skips seq <= MaxSeq). Subtrees are kept for each partition
// whose records continue its stored tree without a gap; for others (tests storing a
// broken log on purpose) proofs read leaves instead.
func (s *Store) InsertRecords(ctx context.Context, recs []chain.Record) error {
	rows, err := rowsParallel(recs)
	if err != nil {
		return err
	}
	all := []chunk{{rows: rows}}
	eventsErr, treeErr := s.insertRows(ctx, all, append(all, s.subtreesOf(ctx, recs)...))
	return errors.Join(eventsErr, treeErr)
}

// subtreesOf returns the subtrees recs complete, per partition whose records
// continue its stored tree in seq order.
func (s *Store) subtreesOf(ctx context.Context, recs []chain.Record) []chunk {
	byPart := map[int32][]chain.Record{}
	var order []int32
	for _, r := range recs {
		if _, ok := byPart[r.Partition]; !ok {
			order = append(order, r.Partition)
		}
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	var out []chunk
	for _, p := range order {
		prs := byPart[p]
		b, filled, err := s.treeBuilder(ctx, p, prs[0].Seq)
		if err != nil {
			continue
		}
		done, err := extendTree(b, p, len(prs), func(i int) (uint64, chain.Hash) { return prs[i].Seq, prs[i].LeafHash }, filled)
		if err == nil {
			out = append(out, chunk{p: p, subtrees: done})
		}
	}
	return out
}

// insertRows inserts the events of events and, side by side on the store's second
// insert connection, the tree rows of tree (the leaves of its rows and its
// subtrees); either may be empty. It returns each one's error, so that a caller can
// retry only what failed.
func (s *Store) insertRows(ctx context.Context, events, tree []chunk) (eventsErr, treeErr error) {
	var wg sync.WaitGroup
	if len(tree) > 0 {
		wg.Go(func() { treeErr = s.insertTree(ctx, tree) })
	}
	eventsErr = s.insertEvents(ctx, rowsOf(events)...)
	wg.Wait()
	return eventsErr, treeErr
}

// insertEvents sends the rows of chunks to audit_events as one native batch, column
// by column: each column is appended as one typed slice, which the driver encodes
// without boxing every value.
func (s *Store) insertEvents(ctx context.Context, chunks ...[]eventRow) error {
	return s.insertColumns(ctx, "audit_events", eventColumnList, chunks)
}

// insertColumns inserts the rows of chunks (none: nothing) into table as the given
// columns, one native batch sent in blocks of insertBlockRows.
func (s *Store) insertColumns(ctx context.Context, table string, cols []eventColumn, chunks [][]eventRow) error {
	n := 0
	for _, rows := range chunks {
		n += len(rows)
	}
	if n == 0 {
		return nil
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	b, err := s.prepareBatch(ctx, "INSERT INTO "+s.db+"."+table+" ("+strings.Join(names, ", ")+")")
	if err != nil {
		return fmt.Errorf("clickhouse: prepare insert into %s: %w", table, err)
	}
	for blk := range blocks(chunks, insertBlockRows) {
		for i, c := range cols {
			if err := b.Column(i).Append(c.slice(blk)); err != nil {
				b.Abort()
				return fmt.Errorf("clickhouse: append column %s of %d rows to %s: %w", c.name, n, table, err)
			}
		}
		if err := b.Flush(); err != nil {
			b.Abort()
			return fmt.Errorf("clickhouse: insert %d rows into %s: %w", n, table, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d rows into %s: %w", n, table, err)
	}
	return nil
}

// insertBlockRows is how many rows one INSERT sends per block. The server squashes
// the blocks of an INSERT into one part (min_insert_block_size_rows, 1M by
// default), so this only bounds the client: its column and encode buffers hold one
// block and are reused for the next, where one block per insert grew them from
// nothing to the whole insert every time (the event column alone is ~450 bytes a
// row) — most of the writer's memory traffic.
const insertBlockRows = 8192

// blocks yields chunks re-cut into runs of at most max rows, in order.
func blocks(chunks [][]eventRow, max int) iter.Seq[[][]eventRow] {
	return func(yield func([][]eventRow) bool) {
		var blk [][]eventRow
		n := 0
		for _, rows := range chunks {
			for len(rows) > 0 {
				take := min(len(rows), max-n)
				blk = append(blk, rows[:take])
				rows, n = rows[take:], n+take
				if n == max {
					if !yield(blk) {
						return
					}
					blk, n = nil, 0
				}
			}
		}
		if n > 0 {
			yield(blk)
		}
	}
}

// rowsParallel builds the rows of a batch on all cores: decoding the events is most
// of the writer's own CPU.
func rowsParallel(recs []chain.Record) ([]eventRow, error) {
	out := make([]eventRow, len(recs))
	errs := make([]error, len(recs))
	parallel.For(len(recs), 256, func(i int) { errs[i] = out[i].fill(recs[i]) })
	return out, errors.Join(errs...)
}

// CheckpointColumns is the explicit column list of every insert into audit_checkpoints.
const CheckpointColumns = "chain_partition, tree_size, origin, root_hash, signed_at, note, checkpoint"

// CheckpointValues returns the audit_checkpoints values of one checkpoint.
func CheckpointValues(cp StoredCheckpoint, signedAt time.Time) ([]any, error) {
	parsed, err := cp.Unverified()
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(cp.SignedCheckpoint)
	if err != nil {
		return nil, err
	}
	return []any{uint32(cp.Partition), parsed.Size, parsed.Origin, parsed.Root.String(), signedAt.UTC(), string(cp.Note), string(raw)}, nil
}

// StoredCheckpoint is a checkpoint with the partition it belongs to.
type StoredCheckpoint struct {
	Partition int32
	chain.SignedCheckpoint
}

// InsertCheckpoints inserts signed checkpoints in one batch, stored now.
func (s *Store) InsertCheckpoints(ctx context.Context, cps []StoredCheckpoint) error {
	return s.InsertCheckpointsAt(ctx, cps, time.Now())
}

// InsertCheckpointsAt inserts signed checkpoints with signedAt as their stored time
// (tests that compare two stores need the same one in both).
func (s *Store) InsertCheckpointsAt(ctx context.Context, cps []StoredCheckpoint, signedAt time.Time) error {
	if len(cps) == 0 {
		return nil
	}
	b, err := s.prepareBatch(ctx, "INSERT INTO "+s.db+".audit_checkpoints ("+CheckpointColumns+")")
	if err != nil {
		return fmt.Errorf("clickhouse: prepare checkpoint insert: %w", err)
	}
	for _, cp := range cps {
		vals, err := CheckpointValues(cp, signedAt)
		if err != nil {
			b.Abort()
			return err
		}
		if err := b.Append(vals...); err != nil {
			b.Abort()
			return fmt.Errorf("clickhouse: append checkpoint: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d checkpoints: %w", len(cps), err)
	}
	return nil
}

// MaxSeq returns the highest stored seq of partition p, or ok=false when none is.
// It reads audit_seq_days and the part list, and audit_events only on the days
// whose summary does not match the stored rows (see maxSeqs): a question about
// one chain partition does not scan every row the hot window holds.
func (s *Store) MaxSeq(ctx context.Context, p int32) (seq uint64, ok bool, err error) {
	heads, err := s.maxSeqs(ctx, nil)
	seq, ok = heads[p]
	return seq, ok, err
}

// HasRecord reports whether partition p's record at seq is in audit_events. The
// writer stores a partition's rows in seq order and never past a hole, so it also
// says every earlier row is stored. Unlike MaxSeq it does not scan the partition's
// history: it reads the record's leaf by audit_leaves' sort key, then the event row
// within the leaf's chained_at second only (its day partition, and the parts whose
// time range holds it). A record whose leaf is not stored yet counts as not stored
// (the tree's insert is retried until it lands).
func (s *Store) HasRecord(ctx context.Context, p int32, seq uint64) (bool, error) {
	var leaves uint64
	var sec, day uint32
	q := leafSecondQuery(s.db, p, seq)
	if err := s.conn.QueryRow(ctx, q.SQL, q.Args...).Scan(&leaves, &sec, &day); err != nil {
		return false, fmt.Errorf("clickhouse: leaf of partition %d seq %d: %w", p, seq, err)
	}
	if leaves == 0 {
		return false, nil
	}
	var n uint64
	q = recordAtQuery(s.db, p, seq, day, sec)
	if err := s.conn.QueryRow(ctx, q.SQL, q.Args...).Scan(&n); err != nil {
		return false, fmt.Errorf("clickhouse: record of partition %d seq %d: %w", p, seq, err)
	}
	return n > 0, nil
}

// MaxCheckpoint returns the largest stored checkpoint tree size of partition p (0: none).
func (s *Store) MaxCheckpoint(ctx context.Context, p int32) (uint64, error) {
	return s.MaxCheckpointFrom(ctx, p, 0)
}

// MaxCheckpointFrom returns the largest stored checkpoint tree size of partition p
// that is at least from (0: none). Checkpoints are kept forever, one or more a
// second per partition; bounded below, the read is a range of the table's sort key
// (chain_partition, tree_size) rather than every checkpoint the partition ever had.
func (s *Store) MaxCheckpointFrom(ctx context.Context, p int32, from uint64) (uint64, error) {
	var m uint64
	q := maxCheckpointQuery(s.db, p, from)
	if err := s.conn.QueryRow(ctx, q.SQL, q.Args...).Scan(&m); err != nil {
		return 0, fmt.Errorf("clickhouse: max checkpoint of partition %d: %w", p, err)
	}
	return m, nil
}

// Records streams partition p's records with seq >= from in seq order to fn.
func (s *Store) Records(ctx context.Context, p int32, from uint64, fn func(chain.Record) error) error {
	return s.RecordsBetween(ctx, p, from, math.MaxUint64, fn)
}

// recordsWindow bounds how many records one read sorts on the server: a partition is
// read in seq windows, so server memory stays bounded however long the chain is.
const recordsWindow = 1 << 20

// seqWindow is the seq window of the store's partition reads.
func (s *Store) seqWindow() uint64 {
	if s.window == 0 {
		return recordsWindow
	}
	return s.window
}

// RecordsBetween streams partition p's records with from <= seq < to, in seq order,
// to fn. A gap shows up to fn as a jump in seq, for the verifier to report.
//
// It first learns, in one statement over the partition's chain_partition, seq and
// chained_at columns, which days hold its seqs; each window then reads only those
// day partitions. Verifying a partition so reads its history once plus each day a
// bounded number of times, not all of it once per window. The days come from the
// rows themselves, not from audit_seq_days: a verification trusts no summary.
func (s *Store) RecordsBetween(ctx context.Context, p int32, from, to uint64, fn func(chain.Record) error) error {
	sd, err := s.scanSeqDays(ctx, p, from, to)
	if err != nil || len(sd.known) == 0 {
		return err
	}
	return sd.eachWindow(from, min(to, sd.maxSeq()+1), s.seqWindow(), func(lo, hi uint64, days []uint32) error {
		return s.recordsWindow(ctx, p, lo, hi, days, sd.all, fn)
	})
}

func (s *Store) recordsWindow(ctx context.Context, p int32, from, to uint64, days, all []uint32, fn func(chain.Record) error) error {
	q := recordsQuery(s.db, p, from, to, days, all)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return fmt.Errorf("clickhouse: read partition %d: %w", p, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq        uint64
			ns         int64
			prev, leaf string
			ev         string
		)
		if err := rows.Scan(&seq, &ns, &prev, &leaf, &ev); err != nil {
			return err
		}
		r := chain.Record{Partition: p, Seq: seq, ChainedAt: time.Unix(0, ns).UTC(), Event: []byte(ev)}
		if err := r.PrevHash.UnmarshalText([]byte(prev)); err != nil {
			return fmt.Errorf("clickhouse: partition %d seq %d prev_hash: %w", p, seq, err)
		}
		if err := r.LeafHash.UnmarshalText([]byte(leaf)); err != nil {
			return fmt.Errorf("clickhouse: partition %d seq %d leaf_hash: %w", p, seq, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Checkpoints returns partition p's checkpoints in tree-size order.
func (s *Store) Checkpoints(ctx context.Context, p int32) ([]chain.SignedCheckpoint, error) {
	q := checkpointsQuery(s.db, p)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read checkpoints of partition %d: %w", p, err)
	}
	defer rows.Close()
	var out []chain.SignedCheckpoint
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var cp chain.SignedCheckpoint
		if err := json.Unmarshal([]byte(raw), &cp); err != nil {
			return nil, fmt.Errorf("clickhouse: stored checkpoint of partition %d: %w", p, err)
		}
		out = append(out, cp)
	}
	return out, rows.Err()
}

// DropExpired enforces the hot window on legacy servers (no TTL) by dropping whole
// day partitions older than it, of audit_events and of audit_leaves (the tree's
// subtrees and the checkpoints are kept); on modern servers the TTL does this and
// DropExpired does nothing. Run it daily.
func (s *Store) DropExpired(ctx context.Context, now time.Time) (dropped []string, err error) {
	if s.modern {
		return nil, nil
	}
	cutoff, _ := strconv.Atoi(now.Add(-s.ttl).UTC().Format("20060102"))
	for _, table := range []string{"audit_events", "audit_leaves"} {
		parts, err := s.dayPartitions(ctx, table)
		if err != nil {
			return dropped, err
		}
		for _, p := range parts {
			day, err := strconv.Atoi(p)
			if err != nil || day >= cutoff {
				continue
			}
			if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %d", s.db, table, day)); err != nil {
				return dropped, fmt.Errorf("clickhouse: drop partition %d of %s: %w", day, table, err)
			}
			if table == "audit_events" {
				dropped = append(dropped, p)
			}
		}
	}
	return dropped, nil
}

// dayPartitions lists the active partitions of a table.
func (s *Store) dayPartitions(ctx context.Context, table string) ([]string, error) {
	parts, err := column1[string](ctx, s.conn, Query{"day_partitions", "SELECT DISTINCT partition FROM system.parts WHERE database = ? AND table = ? AND active", []any{s.db, table}})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: list partitions of %s: %w", table, err)
	}
	return parts, nil
}

// column1 runs q and returns its one column.
func column1[T any](ctx context.Context, c conn, q Query) ([]T, error) {
	rows, err := c.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Exec runs one statement in the store's database context (administration and
// tests; the audit path never builds SQL from input).
func (s *Store) Exec(ctx context.Context, sql string, args ...any) error {
	return s.conn.Exec(ctx, sql, args...)
}

// Database returns the database name.
func (s *Store) Database() string { return s.db }

// SQLScope is the scope sqlscope confines a caller's statements to on this
// store: its database, the tenants (nil: every tenant), and on a legacy server
// the joins that server cannot run safely (sqlscope.Scope.Legacy).
func (s *Store) SQLScope(tenants []string) sqlscope.Scope {
	return sqlscope.Scope{Database: s.db, Tenants: tenants, Legacy: !s.modern}
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse: ping: %w", err)
	}
	return nil
}

// PendingMutations counts unfinished ALTER ... UPDATE/DELETE mutations on the store's
// tables (tests wait for them; on 18.16 they are always asynchronous).
func (s *Store) PendingMutations(ctx context.Context) (uint64, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", s.db).Scan(&n)
	return n, err
}

// Query is one read statement the store sends, with its arguments (bound by the
// client; values never become part of the SQL text).
type Query struct {
	Name string
	SQL  string
	Args []any
}

// leafSecondQuery reads the second and the day partition id of a record's leaf:
// audit_leaves' chained_at has audit_events' type on each server generation, so
// toYYYYMMDD gives the events table's partition id, in its time zone.
func leafSecondQuery(db string, p int32, seq uint64) Query {
	return Query{"leaf_second", "SELECT count(), min(toUnixTimestamp(chained_at)), min(toYYYYMMDD(chained_at)) FROM " + db + ".audit_leaves WHERE chain_partition = ? AND seq = ?", []any{uint32(p), seq}}
}

// recordAtQuery counts a record's event rows within its day partition and second.
// Both bounds are functions of the column compared with integers: ClickHouse 26.5
// answers a DateTime64(9) column compared with toDateTime(...) wrongly (a record
// alone in its part was never found; see query.timeTerm).
func recordAtQuery(db string, p int32, seq uint64, day, sec uint32) Query {
	return Query{"record_at", "SELECT count() FROM " + db + ".audit_events WHERE chain_partition = ? AND seq = ? AND toYYYYMMDD(chained_at) = ? AND toUnixTimestamp(chained_at) = ?",
		[]any{uint32(p), seq, day, sec}}
}

func maxCheckpointQuery(db string, p int32, from uint64) Query {
	return Query{"max_checkpoint", "SELECT max(tree_size) FROM " + db + ".audit_checkpoints WHERE chain_partition = ? AND tree_size >= ?", []any{uint32(p), from}}
}

func recordsQuery(db string, p int32, from, to uint64, days, all []uint32) Query {
	cond, dargs := dayFilter(days, all)
	return Query{"records", "SELECT seq, chained_at_ns, prev_hash, leaf_hash, event FROM " + db + ".audit_events WHERE chain_partition = ? AND seq >= ? AND seq < ? AND " + cond + " ORDER BY seq", append([]any{uint32(p), from, to}, dargs...)}
}

func partitionsQuery(db string, tenants []string) Query {
	if len(tenants) == 0 {
		return Query{"partitions", "SELECT DISTINCT chain_partition FROM " + db + ".audit_checkpoints ORDER BY chain_partition", nil}
	}
	in, args := tenantIn(tenants)
	return Query{"partitions", "SELECT DISTINCT chain_partition FROM " + db + ".audit_events WHERE " + in + " ORDER BY chain_partition", args}
}

func seqRangeQuery(db string, p int32, fromNS, toNS int64) Query {
	return Query{"seq_range", "SELECT count(), min(seq), max(seq) FROM " + db + ".audit_events WHERE chain_partition = ? AND chained_at_ns >= ? AND chained_at_ns < ?", []any{uint32(p), fromNS, toNS}}
}

// Partitions lists the chain partitions that have checkpoints, or, given tenants, the
// partitions holding those tenants' events (records are keyed by tenant, so a tenant's
// events live in the chain of the partition its key maps to).
func (s *Store) Partitions(ctx context.Context, tenants []string) ([]int32, error) {
	ps, err := column1[uint32](ctx, s.conn, partitionsQuery(s.db, tenants))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: list partitions: %w", err)
	}
	out := make([]int32, len(ps))
	for i, p := range ps {
		out[i] = int32(p)
	}
	return out, nil
}

// SeqRange returns the lowest and highest seq of partition p chained in [from, to),
// and ok=false when no record was.
func (s *Store) SeqRange(ctx context.Context, p int32, from, to time.Time) (lo, hi uint64, ok bool, err error) {
	var n uint64
	q := seqRangeQuery(s.db, p, from.UnixNano(), to.UnixNano())
	if err := s.conn.QueryRow(ctx, q.SQL, q.Args...).Scan(&n, &lo, &hi); err != nil {
		return 0, 0, false, fmt.Errorf("clickhouse: seq range of partition %d: %w", p, err)
	}
	return lo, hi, n > 0, nil
}

func checkpointsQuery(db string, p int32) Query {
	return Query{"checkpoints", "SELECT checkpoint FROM " + db + ".audit_checkpoints WHERE chain_partition = ? ORDER BY tree_size", []any{uint32(p)}}
}

// Queries lists every read statement the store issues for partition p, so tests can
// run exactly these against each supported ClickHouse generation.
func Queries(db string, p int32, from uint64) []Query {
	today, yesterday, before := dayID(time.Now()), dayID(time.Now().Add(-24*time.Hour)), dayID(time.Now().Add(-72*time.Hour))
	days, all := []uint32{before, today}, []uint32{before, yesterday, today}
	return []Query{allSeqDaysQuery(db), headInDaysQuery(db, days, all, nil), headInDaysQuery(db, days, all, []string{"acme", "globex"}), tenantSeqDaysQuery(db, []string{"acme"}), seqDaysScanQuery(db, p, from, from+recordsWindow), leafSecondQuery(db, p, from), recordAtQuery(db, p, from, dayID(time.Now()), uint32(time.Now().Unix())), maxCheckpointQuery(db, p, 0), maxCheckpointQuery(db, p, from), recordsQuery(db, p, from, from+recordsWindow, days, all), checkpointsQuery(db, p),
		partitionsQuery(db, nil), partitionsQuery(db, []string{"acme", "globex"}),
		seqRangeQuery(db, p, time.Now().Add(-25*time.Hour).UnixNano(), time.Now().Add(-23*time.Hour).UnixNano()),
		leafHashesQuery(db, p, from, from+5, days, all), treeLeavesQuery(db, p, from, from+5),
		subtreesQuery(db, p, chain.TileHeight, []chain.IndexRange{{Begin: 0, End: 3}, {Begin: 7, End: 9}}), latestCheckpointsQuery(db),
		searchDaysQuery(db, query.Span{}, nil), searchDaysQuery(db, query.Span{HasFrom: true, From: time.Now().Add(-30 * time.Hour).Unix(), HasTo: true, To: time.Now().Unix()}, &Cursor{ChainedAtNS: time.Now().UnixNano()}),
		windowQuery(db, SearchRequest{Tenants: []string{"acme"}}, &dayWindow{first: dayID(time.Now().Add(-48 * time.Hour)), last: dayID(time.Now())}, 10), coveringCheckpointQuery(db, p, from),
		eventPartitionsQuery(db, nil), eventPartitionsQuery(db, []string{"acme"}),
		exportWindowQuery(db, ExportRequest{Filter: query.Filter{Where: "action LIKE ?", Args: []any{"skill.%"}}, Tenants: []string{"acme"}}, p, from, from+recordsWindow, days, all),
		savedQueriesQuery(db, "acme", ""), savedQueriesQuery(db, "acme", "weekly"),
		recordByIDQuery(db, "0190b8a2-6f1c-7cc3-9a51-0b8d2c4e5f60", []string{"acme"}, 7*24*time.Hour), recordByIDQuery(db, "not-a-uuid", nil, 0)}
}

// dayID is the YYYYMMDD partition id of t's UTC day.
func dayID(t time.Time) uint32 {
	y, m, d := t.UTC().Date()
	return uint32(y*10000 + int(m)*100 + d)
}

// WaitInserts waits until every INSERT into the audit tables that is running now has
// finished. A writer calls it before reading the stored maxima of newly assigned
// partitions: the previous owner may have died (kill -9) while its last insert was
// still being applied by the server, and reading the maxima before that insert is
// visible would make the new owner store the same rows again.
func (s *Store) WaitInserts(ctx context.Context) error {
	q := "SELECT query_id FROM system.processes WHERE startsWith(query, ?) OR startsWith(query, ?)"
	prefixes := []any{"INSERT INTO " + s.db + ".audit_events ", "INSERT INTO " + s.db + ".audit_checkpoints "}
	running := func() (map[string]bool, error) {
		rows, err := s.conn.Query(ctx, q, prefixes...)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: list running inserts: %w", err)
		}
		defer rows.Close()
		ids := map[string]bool{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			ids[id] = true
		}
		return ids, rows.Err()
	}
	before, err := running()
	if err != nil {
		return err
	}
	for len(before) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		now, err := running()
		if err != nil {
			return err
		}
		for id := range before {
			if !now[id] {
				delete(before, id)
			}
		}
	}
	return nil
}

// CountByMetadata counts stored events by the value of a string metadata key (found
// by name in the canonical JSON). Benchmarks use it to see when a batch is visible.
func (s *Store) CountByMetadata(ctx context.Context, key string) (map[string]uint64, error) {
	rows, err := s.conn.Query(ctx, "SELECT visitParamExtractString(event, ?) AS v, count() FROM "+s.db+".audit_events GROUP BY v", key)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: count by %s: %w", key, err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var v string
		var n uint64
		if err := rows.Scan(&v, &n); err != nil {
			return nil, err
		}
		out[v] = n
	}
	return out, rows.Err()
}

// prepareBatch prepares a native insert. The driver closes a batch's connection when
// the batch's context ends, from a goroutine that can still fire after Send returned
// and the connection went back to the pool (clickhouse-go v2.50 contextWatchdog: its
// select sees both "done" and "cancelled" ready and may pick either). The next query
// on that connection then fails with "use of closed network connection"; tests hit
// it right after Migrate, whose context ends when setup returns. So a batch gets a
// context that is never cancelled: an insert, once started, completes or fails on
// its own, and a hung server is bounded by the connection's read timeout.
func (s *Store) prepareBatch(ctx context.Context, sql string) (insertBatch, error) {
	return s.conn.PrepareBatch(context.WithoutCancel(ctx), sql)
}
