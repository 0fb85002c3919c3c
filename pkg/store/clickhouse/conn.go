package clickhouse

import (
	"context"
	"errors"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// conn is what the store needs of a connection. The native protocol (clickhouse-go,
// nativeConn) and the in-process engine (chDB, embeddedConn) implement it, so every
// insert and query the store makes is one code path on a server and in `trailkeep dev`.
type conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (rows, error)
	QueryRow(ctx context.Context, query string, args ...any) row
	PrepareBatch(ctx context.Context, query string) (insertBatch, error)
	Ping(ctx context.Context) error
	Close() error
}

// rows is a result set, as driver.Rows reads it.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	ColumnTypes() []driver.ColumnType
	Err() error
	Close() error
}

// row is the first row of a result, as driver.Row reads it.
type row interface {
	Scan(dest ...any) error
	Err() error
}

// insertBatch is one INSERT's rows, appended row by row or column by column.
type insertBatch interface {
	Append(v ...any) error
	Column(i int) driver.BatchColumn
	// Flush sends the rows appended so far as one block of the same INSERT and
	// reuses the column buffers for the next.
	Flush() error
	Send() error
	Abort() error
}

// nativeConn is a clickhouse-go connection pool for queries, and a second pool of
// at most insertConns connections for batch inserts.
//
// Why two: each pooled connection keeps its own encode buffer, grown to the largest
// column it ever sent (the event column of a 50k-row insert is ~25 MB), and the
// pool hands out idle connections round-robin. Sharing one pool with the queries
// that run beside the writer (stored maxima, checkpoint waits) put consecutive
// inserts on different connections, each growing a buffer from nothing: 0.5 GB more
// allocated per 300k rows, a third of the writer's throughput (BENCHMARKS.md), and
// up to five such buffers kept. Inserts on their own small pool reuse warm buffers.
type nativeConn struct{ c, ins driver.Conn }

// insertConns bounds the insert pool: the writer inserts one group at a time, and
// a checkpoint insert may run beside it.
const insertConns = 2

func (n nativeConn) Exec(ctx context.Context, q string, args ...any) error {
	return n.c.Exec(ctx, q, args...)
}
func (n nativeConn) Query(ctx context.Context, q string, args ...any) (rows, error) {
	return n.c.Query(ctx, q, args...)
}
func (n nativeConn) QueryRow(ctx context.Context, q string, args ...any) row {
	return n.c.QueryRow(ctx, q, args...)
}
func (n nativeConn) PrepareBatch(ctx context.Context, q string) (insertBatch, error) {
	return n.ins.PrepareBatch(ctx, q)
}
func (n nativeConn) Ping(ctx context.Context) error { return n.c.Ping(ctx) }
func (n nativeConn) Close() error                   { return errors.Join(n.c.Close(), n.ins.Close()) }

// settingsKey carries a statement's settings for the embedded engine, which takes
// them as a SETTINGS clause (clickhouse-go keeps its own copy private).
type settingsKey struct{}

// withSettings gives a statement settings (and a query id, when not empty) on both
// kinds of connection.
func withSettings(ctx context.Context, s ch.Settings, queryID string) context.Context {
	opts := []ch.QueryOption{ch.WithSettings(s)}
	if queryID != "" {
		opts = append(opts, ch.WithQueryID(queryID))
	}
	return context.WithValue(ch.Context(ctx, opts...), settingsKey{}, s)
}

func settingsFrom(ctx context.Context) ch.Settings {
	s, _ := ctx.Value(settingsKey{}).(ch.Settings)
	return s
}
