package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
)

// SQLLimits bound one read-only statement.
type SQLLimits struct {
	// MaxRows is the most rows returned; one more is read to report truncation.
	MaxRows int
	// MaxTime is the server-side execution limit (max_execution_time).
	MaxTime time.Duration
	// MaxMemory is the server-side memory limit in bytes (max_memory_usage); 0 keeps
	// the server's.
	MaxMemory int64
	// MaxResultBytes bounds the uncompressed result (max_result_bytes). Default
	// 64 MiB.
	MaxResultBytes int64
}

// killGrace is how long after MaxTime the client gives up on a statement, cancels
// it and kills it on the server: the server checks max_execution_time only between
// blocks, and a statement of many slow blocks (sleep in each UNION ALL branch) can
// run far past it.
const killGrace = time.Second

// LimitError is a statement stopped by a limit: the client deadline, or the
// server's time, row, size or memory limit.
type LimitError struct {
	// Limit names the setting and its value, e.g. "max_execution_time=30s".
	Limit string
	Err   error
}

func (e *LimitError) Error() string {
	return "clickhouse: statement stopped by " + e.Limit + ": " + e.Err.Error()
}
func (e *LimitError) Unwrap() error { return e.Err }

// Column is one result column of a read-only statement.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// ReadOnly runs a statement already confined by sqlscope with readonly=1 on the
// server, so that it cannot write, change settings or call table functions whatever
// it contains, and with the row, time and memory limits. fn receives the columns
// once, then each row; truncated reports that the row limit cut the result.
func (s *Store) ReadOnly(ctx context.Context, stmt string, lim SQLLimits, columns func([]Column) error, row func([]any) error) (truncated bool, err error) {
	if lim.MaxRows <= 0 || lim.MaxTime <= 0 {
		return false, fmt.Errorf("clickhouse: read-only SQL needs a row and a time limit")
	}
	if lim.MaxResultBytes <= 0 {
		lim.MaxResultBytes = 64 << 20
	}
	qid := uuid.NewString()
	parent := ctx
	deadline := time.Now().Add(lim.MaxTime + killGrace)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	defer func() {
		if err == nil || parent.Err() != nil {
			return
		}
		// The driver turns the deadline into a socket deadline, so its error may be
		// an i/o timeout a moment before the context reports it: decide by the clock.
		if ctx.Err() == context.DeadlineExceeded || !time.Now().Before(deadline) {
			s.kill(qid)
			err, truncated = &LimitError{Limit: "max_execution_time=" + lim.MaxTime.String(), Err: err}, false
			return
		}
		if code, _, ok := QueryError(err); ok {
			if name, ok := limitSettings[code]; ok {
				err = &LimitError{Limit: name + "=" + lim.setting(name), Err: err}
			}
		}
	}()
	settings := ch.Settings{
		"readonly":           1,
		"max_execution_time": int(max(1, lim.MaxTime/time.Second)),
		"max_result_rows":    lim.MaxRows + 1,
		"max_result_bytes":   int(lim.MaxResultBytes),
		// Pushes the caller's WHERE into the tenant-scoping subquery on 18.16,
		// where it is off by default; later servers have it on.
		"enable_optimize_predicate_expression": 1,
	}
	if lim.MaxMemory > 0 {
		settings["max_memory_usage"] = int(lim.MaxMemory) // the driver takes int, not int64
	}
	ctx = withSettings(ctx, settings, qid)
	// The wrapper bounds the rows sent even when the statement has no LIMIT.
	rows, err := s.conn.Query(ctx, "SELECT * FROM ("+stmt+") LIMIT "+strconv.Itoa(lim.MaxRows+1))
	if err != nil {
		return false, fmt.Errorf("clickhouse: %w", err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	cols := make([]Column, len(types))
	for i, t := range types {
		cols[i] = Column{Name: t.Name(), Type: t.DatabaseTypeName()}
	}
	if err := columns(cols); err != nil {
		return false, err
	}
	n := 0
	for rows.Next() {
		if n++; n > lim.MaxRows {
			return true, nil
		}
		ptrs := make([]any, len(types))
		for i, t := range types {
			ptrs[i] = reflect.New(t.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return false, fmt.Errorf("clickhouse: %w", err)
		}
		vals := make([]any, len(ptrs))
		for i, p := range ptrs {
			vals[i] = reflect.ValueOf(p).Elem().Interface()
		}
		if err := row(vals); err != nil {
			return false, err
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("clickhouse: %w", err)
	}
	return false, nil
}

// limitSettings names the limit behind each server error code of an exceeded limit.
var limitSettings = map[int32]string{CodeTimeoutExceeded: "max_execution_time", CodeTooManyRows: "max_result_rows",
	CodeTooManyRowsOrBytes: "max_result_bytes", CodeMemoryLimit: "max_memory_usage"}

// setting is the value of one limit as the statement ran with it.
func (l SQLLimits) setting(name string) string {
	switch name {
	case "max_execution_time":
		return l.MaxTime.String()
	case "max_result_rows":
		return strconv.Itoa(l.MaxRows + 1)
	case "max_result_bytes":
		return strconv.FormatInt(l.MaxResultBytes, 10)
	}
	return strconv.FormatInt(l.MaxMemory, 10)
}

// kill stops a statement on the server after the client gave up on it: cancelling
// the context closes the connection, but the server may go on running the query.
func (s *Store) kill(qid string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.conn.Exec(ctx, "KILL QUERY WHERE query_id = '"+qid+"' ASYNC") // qid is a UUID: nothing to escape
}

// QueryError reports whether err is the server rejecting a statement (a syntax
// error, an unknown column, a limit), as opposed to the server being unreachable,
// and returns its code and message.
func QueryError(err error) (code int32, msg string, ok bool) {
	var exc *ch.Exception
	if errors.As(err, &exc) {
		return exc.Code, exc.Message, true
	}
	return 0, "", false
}

// Server error codes of exceeded limits.
const (
	CodeTimeoutExceeded    = 159
	CodeTooManyRows        = 396
	CodeMemoryLimit        = 241
	CodeReadonly           = 164
	CodeTooManyRowsOrBytes = 158
)
