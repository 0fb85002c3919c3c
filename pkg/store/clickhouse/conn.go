package clickhouse

import (
	"context"

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
	Send() error
	Abort() error
}

// nativeConn is a clickhouse-go connection.
type nativeConn struct{ c driver.Conn }

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
	return n.c.PrepareBatch(ctx, q)
}
func (n nativeConn) Ping(ctx context.Context) error { return n.c.Ping(ctx) }
func (n nativeConn) Close() error                   { return n.c.Close() }

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
