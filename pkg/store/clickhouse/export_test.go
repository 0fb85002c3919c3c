package clickhouse

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
)

// Faults wraps s's connection for a test, before anything uses s: Count counts the
// statements sent that start with a prefix, LoseAcks makes the next n inserts into
// a table be applied by ClickHouse but answered with an error, as when the
// acknowledgement is lost on the way back, and FailNext makes the next n statements
// with a prefix fail without reaching ClickHouse, as while it is down.
func Faults(s *Store) *FaultConn {
	f := &FaultConn{conn: s.conn}
	s.conn = f
	return f
}

// FaultConn is the wrapper Faults installs.
type FaultConn struct {
	conn
	prefixes atomic.Pointer[[]string]
	counts   [8]atomic.Int64
	lose     budget // inserts whose acknowledgement is lost
	fail     budget // statements that fail
}

// budget is a fault for the next n statements that match.
type budget struct {
	match atomic.Pointer[func(q string) bool]
	left  atomic.Int64
}

func (b *budget) set(match func(q string) bool, n int) {
	b.match.Store(&match)
	b.left.Store(int64(n))
}

// take reports whether q gets the fault, and counts it off.
func (b *budget) take(q string) bool {
	m := b.match.Load()
	return m != nil && (*m)(q) && b.left.Add(-1) >= 0
}

// FailNext makes the next n statements that start with prefix fail.
func (f *FaultConn) FailNext(prefix string, n int) {
	f.fail.set(func(q string) bool { return strings.HasPrefix(strings.TrimSpace(q), prefix) }, n)
}

// failing returns the error of a statement that is to fail.
func (f *FaultConn) failing(q string) error {
	if f.fail.take(q) {
		return errors.New("test: ClickHouse is unreachable")
	}
	return nil
}

// Count starts counting statements that start with each prefix (at most 8).
func (f *FaultConn) Count(prefixes ...string) { f.prefixes.Store(&prefixes) }

// Counted is how many statements started with prefixes[i] since Count.
func (f *FaultConn) Counted(i int) int64 { return f.counts[i].Load() }

// LoseAcks makes the next n inserts into table succeed on the server and fail here.
func (f *FaultConn) LoseAcks(table string, n int) {
	f.lose.set(func(q string) bool { return strings.Contains(q, "."+table+" ") }, n)
}

func (f *FaultConn) count(q string) {
	if ps := f.prefixes.Load(); ps != nil {
		for i, p := range *ps {
			if strings.HasPrefix(strings.TrimSpace(q), p) {
				f.counts[i].Add(1)
			}
		}
	}
}

func (f *FaultConn) Exec(ctx context.Context, q string, args ...any) error {
	f.count(q)
	if err := f.failing(q); err != nil {
		return err
	}
	return f.conn.Exec(ctx, q, args...)
}

func (f *FaultConn) Query(ctx context.Context, q string, args ...any) (rows, error) {
	f.count(q)
	if err := f.failing(q); err != nil {
		return nil, err
	}
	return f.conn.Query(ctx, q, args...)
}

func (f *FaultConn) QueryRow(ctx context.Context, q string, args ...any) row {
	f.count(q)
	if err := f.failing(q); err != nil {
		return failedRow{err}
	}
	return f.conn.QueryRow(ctx, q, args...)
}

// failedRow is the row of a statement that did not reach ClickHouse.
type failedRow struct{ err error }

func (r failedRow) Scan(...any) error { return r.err }
func (r failedRow) Err() error        { return r.err }

func (f *FaultConn) PrepareBatch(ctx context.Context, q string) (insertBatch, error) {
	f.count(q)
	if err := f.failing(q); err != nil {
		return nil, err
	}
	b, err := f.conn.PrepareBatch(ctx, q)
	if err != nil {
		return nil, err
	}
	if f.lose.take(q) {
		return lostAck{b}, nil
	}
	return b, nil
}

// lostAck is an insert ClickHouse applies whose answer never arrives.
type lostAck struct{ insertBatch }

func (l lostAck) Send() error {
	if err := l.insertBatch.Send(); err != nil {
		return err
	}
	return errors.New("test: the acknowledgement of an applied insert was lost")
}

// SetSeqWindow makes s read partitions in windows of n seqs.
func SetSeqWindow(s *Store, n uint64) { s.window = n }

// ScanSeqs is the oracle for partition p's stored seqs: one statement over every
// row of audit_events, as the store read them before audit_seq_days.
func ScanSeqs(ctx context.Context, s *Store, p int32) ([]uint64, error) {
	return column1[uint64](ctx, s.conn, Query{"scan", "SELECT seq FROM " + s.db + ".audit_events WHERE chain_partition = ? ORDER BY seq", []any{uint32(p)}})
}

// ScanTenantSeqs returns, for a test, every stored seq of tenant's rows in
// partition p, ascending, by reading every row.
func ScanTenantSeqs(ctx context.Context, s *Store, tenant string, p int32) ([]uint64, error) {
	return column1[uint64](ctx, s.conn, Query{"scan", "SELECT seq FROM " + s.db + ".audit_events WHERE tenant = ? AND chain_partition = ? ORDER BY seq", []any{tenant, uint32(p)}})
}

// RecordsRead is the start of every statement that reads whole records from
// audit_events (search, follow, export), for Count.
func RecordsRead(s *Store) string {
	return "SELECT " + recordColumns + " FROM " + s.db + ".audit_events"
}

// ScanOne runs a one-row statement for a test and scans its columns into dest.
func ScanOne(ctx context.Context, s *Store, sql string, dest ...any) error {
	return s.conn.QueryRow(ctx, sql).Scan(dest...)
}
