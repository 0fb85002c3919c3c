package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Engine is an in-process ClickHouse: internal/chdb.Engine. An interface, so that
// only the binary that embeds the engine (trailkeep) links its loader; the services'
// static binaries do not.
type Engine interface {
	// QueryBytes runs one statement and returns its output in format. A rejected
	// statement's error has an Exception() (code int32, message string) method.
	QueryBytes(sql, format string) ([]byte, error)
}

// EmbeddedOptions configure OpenEmbedded.
type EmbeddedOptions struct {
	Database string // default "trailkeep"
	// HotWindow is the events' TTL, as in Options. Default 90 days.
	HotWindow time.Duration
}

// OpenEmbedded returns a store on the in-process ClickHouse engine (trailkeep dev).
// It runs the modern DDL and the same statements as a server: only the transport
// differs (statements as text, results as RowBinaryWithNamesAndTypes). Call Migrate
// before use. Closing the store leaves the engine open: it belongs to the process.
func OpenEmbedded(e Engine, o EmbeddedOptions) (*Store, error) {
	if o.Database == "" {
		o.Database = "trailkeep"
	}
	if o.HotWindow <= 0 {
		o.HotWindow = 90 * 24 * time.Hour
	}
	if !identRE.MatchString(o.Database) {
		return nil, fmt.Errorf("clickhouse: database name %q must match %s", o.Database, identRE)
	}
	s := &Store{conn: embeddedConn{e}, db: o.Database, ttl: o.HotWindow}
	if err := s.conn.QueryRow(context.Background(), "SELECT version()").Scan(&s.ver); err != nil {
		return nil, fmt.Errorf("clickhouse: engine version: %w", err)
	}
	s.modern = modernVersion(s.ver)
	if !s.modern {
		return nil, fmt.Errorf("clickhouse: the in-process engine is %s; the modern DDL needs 23.8 or later", s.ver)
	}
	return s, nil
}

// embeddedConn runs statements on the in-process engine. Every statement runs with
// session_timezone UTC, so times parse and print the same on every machine.
type embeddedConn struct{ e Engine }

func (c embeddedConn) run(ctx context.Context, query string, args []any, format string) ([]byte, error) {
	q, err := bindPositional(query, args)
	if err != nil {
		return nil, err
	}
	settings := settingsFrom(ctx)
	if _, ro := settings["readonly"]; ro && overridesSettings(q) {
		return nil, &ch.Exception{Code: CodeReadonly, Message: "Cannot modify settings in readonly mode: the statement has a SETTINGS clause"}
	}
	clause, err := settingsClause(settings)
	if err != nil {
		return nil, err
	}
	return c.exec(ctx, q+clause, format)
}

// exec runs a complete statement.
func (c embeddedConn) exec(ctx context.Context, q, format string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := c.e.QueryBytes(q, format)
	var ce interface{ Exception() (int32, string) }
	if errors.As(err, &ce) {
		// The same error type as the native protocol's, so QueryError and the
		// limit mapping see one thing.
		code, msg := ce.Exception()
		return nil, &ch.Exception{Code: code, Message: msg}
	}
	return out, err
}

// settingsClause renders settings (plus session_timezone) as a trailing SETTINGS
// clause, in a stable order.
func settingsClause(s ch.Settings) (string, error) {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{"session_timezone = 'UTC'"}
	for _, k := range keys {
		v, err := literal(s[k], false)
		if err != nil || !identRE.MatchString(k) {
			// Never dropped: a lost readonly or limit would run the statement unbounded.
			return "", fmt.Errorf("clickhouse: setting %q = %v cannot be sent to the embedded engine (a setting name must match %s): %v", k, s[k], identRE, err)
		}
		parts = append(parts, k+" = "+v)
	}
	return " SETTINGS " + strings.Join(parts, ", "), nil
}

func (c embeddedConn) Exec(ctx context.Context, query string, args ...any) error {
	_, err := c.run(ctx, query, args, "TSV")
	return err
}

func (c embeddedConn) Query(ctx context.Context, query string, args ...any) (rows, error) {
	out, err := c.run(ctx, query, args, "RowBinaryWithNamesAndTypes")
	if err != nil {
		return nil, err
	}
	return decodeRowBinary(out)
}

func (c embeddedConn) QueryRow(ctx context.Context, query string, args ...any) row {
	rs, err := c.Query(ctx, query, args...)
	if err != nil {
		return errRow{err}
	}
	if !rs.Next() {
		return errRow{errNoRows}
	}
	return rs.(*binaryRows)
}

// errNoRows matches the native driver's sql.ErrNoRows message for an empty QueryRow.
var errNoRows = errors.New("sql: no rows in result set")

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
func (r errRow) Err() error        { return r.err }

func (c embeddedConn) PrepareBatch(ctx context.Context, query string) (insertBatch, error) {
	if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(query)), "INSERT INTO ") {
		return nil, fmt.Errorf("clickhouse: embedded batch: %q is not an INSERT INTO", query)
	}
	// clickhouse-go accepts "INSERT INTO t", "INSERT INTO t (cols)" and either with a
	// trailing VALUES; the settings go before VALUES.
	q := strings.TrimSpace(query)
	if n := len(q) - len("VALUES"); n > 0 && strings.EqualFold(q[n:], "VALUES") {
		q = strings.TrimSpace(q[:n])
	}
	return &embeddedBatch{c: c, ctx: ctx, insert: q}, nil
}

func (c embeddedConn) Ping(ctx context.Context) error {
	_, err := c.run(ctx, "SELECT 1", nil, "TSV")
	return err
}

func (c embeddedConn) Close() error { return nil }

// embeddedBatch collects an INSERT's rows and sends them as one VALUES statement.
// Columns appended whole (the writer's path) are kept as the typed slices they came
// in and rendered straight into the statement at Send: no value is boxed, no row
// transposed and no literal built as a string of its own, so a batch costs about its
// statement's size in memory, once.
type embeddedBatch struct {
	c      embeddedConn
	ctx    context.Context
	insert string
	rows   [][]any
	cols   []batchValues
	done   bool
}

// batchValues is one column's values, as the segments they were appended in.
type batchValues struct {
	segs []valueSeg
	n    int
}

// valueSeg is a run of one column's values that renders its i-th as a literal.
type valueSeg interface {
	len() int
	appendLiteral(dst []byte, i int) ([]byte, error)
}

// typedSeg is a slice of one of the writer's column types with the function that
// writes its values as literals.
type typedSeg[T any] struct {
	vals []T
	lit  func(dst []byte, v T) []byte
}

func (s typedSeg[T]) len() int { return len(s.vals) }
func (s typedSeg[T]) appendLiteral(dst []byte, i int) ([]byte, error) {
	return s.lit(dst, s.vals[i]), nil
}

func appendUint[T uint8 | uint16 | uint32 | uint64](dst []byte, v T) []byte {
	return strconv.AppendUint(dst, uint64(v), 10)
}

func appendInt[T int8 | int16 | int32 | int64](dst []byte, v T) []byte {
	return strconv.AppendInt(dst, int64(v), 10)
}

// anySeg is a slice of any other type (or one AppendRow value): rendered by
// literal, through reflection.
type anySeg struct{ v reflect.Value }

func (s anySeg) len() int { return s.v.Len() }
func (s anySeg) appendLiteral(dst []byte, i int) ([]byte, error) {
	lit, err := literal(s.v.Index(i).Interface(), true)
	return append(dst, lit...), err
}

// segOf wraps a column slice, typed where the writer's columns are.
func segOf(v any) (valueSeg, error) {
	switch x := v.(type) {
	case []string:
		return typedSeg[string]{x, appendQuoted}, nil
	case []uint8:
		return typedSeg[uint8]{x, appendUint[uint8]}, nil
	case []uint16:
		return typedSeg[uint16]{x, appendUint[uint16]}, nil
	case []uint32:
		return typedSeg[uint32]{x, appendUint[uint32]}, nil
	case []uint64:
		return typedSeg[uint64]{x, appendUint[uint64]}, nil
	case []int8:
		return typedSeg[int8]{x, appendInt[int8]}, nil
	case []int16:
		return typedSeg[int16]{x, appendInt[int16]}, nil
	case []int32:
		return typedSeg[int32]{x, appendInt[int32]}, nil
	case []int64:
		return typedSeg[int64]{x, appendInt[int64]}, nil
	case []time.Time:
		return typedSeg[time.Time]{x, appendValuesTime}, nil
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice {
		return anySeg{rv}, nil
	}
	return nil, fmt.Errorf("want a slice, got %T", v)
}

func (b *embeddedBatch) Append(v ...any) error {
	if b.cols != nil {
		return errors.New("clickhouse: embedded batch: rows and columns mixed")
	}
	b.rows = append(b.rows, v)
	return nil
}

func (b *embeddedBatch) Column(i int) driver.BatchColumn { return batchColumn{b, i} }

func (b *embeddedBatch) Abort() error { b.done = true; return nil }

// Flush does nothing: the embedded engine takes the whole INSERT at Send.
func (b *embeddedBatch) Flush() error { return nil }

func (b *embeddedBatch) Send() error {
	if b.done {
		return errors.New("clickhouse: embedded batch already sent")
	}
	b.done = true
	const format = " SETTINGS session_timezone = 'UTC' FORMAT Values "
	var stmt []byte
	var err error
	if b.cols != nil {
		stmt, err = b.columnValues(append([]byte(b.insert), format...))
	} else {
		stmt, err = b.rowValues(append([]byte(b.insert), format...))
	}
	if err != nil || stmt == nil {
		return err
	}
	// The statement is not touched after this: the engine reads it in place.
	_, err = b.c.exec(context.WithoutCancel(b.ctx), unsafe.String(unsafe.SliceData(stmt), len(stmt)), "TSV")
	return err
}

// rowValues appends the VALUES of rows added by Append to dst; nil when there are
// none.
func (b *embeddedBatch) rowValues(dst []byte) ([]byte, error) {
	if len(b.rows) == 0 {
		return nil, nil
	}
	for i, r := range b.rows {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '(')
		for j, v := range r {
			if j > 0 {
				dst = append(dst, ',')
			}
			lit, err := literal(v, true)
			if err != nil {
				return nil, fmt.Errorf("row %d column %d: %w", i, j, err)
			}
			dst = append(dst, lit...)
		}
		dst = append(dst, ')')
	}
	return dst, nil
}

// columnValues appends the VALUES of the columns added by Column(i).Append to dst,
// row by row; nil when there are none. Every column must hold the same number of
// values: a short one would otherwise shift or drop another column's values.
func (b *embeddedBatch) columnValues(dst []byte) ([]byte, error) {
	n := b.cols[0].n
	size := len(dst)
	for j, c := range b.cols {
		if c.n != n {
			return nil, fmt.Errorf("clickhouse: embedded batch: column %d has %d values, column 0 has %d", j, c.n, n)
		}
		for _, s := range c.segs {
			if ss, ok := s.(typedSeg[string]); ok {
				for _, v := range ss.vals {
					size += len(v) + 3
				}
			} else {
				size += 21 * s.len()
			}
		}
	}
	if n == 0 {
		return nil, nil
	}
	dst = slices.Grow(dst, size+3*n-len(dst))
	type cursor struct{ seg, pos int }
	at := make([]cursor, len(b.cols))
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '(')
		for j := range b.cols {
			c := &at[j]
			for b.cols[j].segs[c.seg].len() == c.pos {
				c.seg, c.pos = c.seg+1, 0
			}
			if j > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = b.cols[j].segs[c.seg].appendLiteral(dst, c.pos); err != nil {
				return nil, fmt.Errorf("row %d column %d: %w", i, j, err)
			}
			c.pos++
		}
		dst = append(dst, ')')
	}
	return dst, nil
}

// batchColumn appends a whole column (a typed slice) or one value of it.
type batchColumn struct {
	b *embeddedBatch
	i int
}

func (c batchColumn) grow() {
	for len(c.b.cols) <= c.i {
		c.b.cols = append(c.b.cols, batchValues{})
	}
}

func (c batchColumn) Append(v any) error {
	if c.b.rows != nil {
		return errors.New("clickhouse: embedded batch: rows and columns mixed")
	}
	seg, err := segOf(v)
	if err != nil {
		return fmt.Errorf("clickhouse: embedded batch: column %d: %w", c.i, err)
	}
	c.add(seg)
	return nil
}

func (c batchColumn) AppendRow(v any) error {
	if c.b.rows != nil {
		return errors.New("clickhouse: embedded batch: rows and columns mixed")
	}
	c.add(anySeg{reflect.ValueOf([]any{v})})
	return nil
}

func (c batchColumn) add(seg valueSeg) {
	c.grow()
	if seg.len() == 0 {
		return
	}
	col := &c.b.cols[c.i]
	col.segs = append(col.segs, seg)
	col.n += seg.len()
}

// appendQuoted appends s as a string literal, escaped as clickhouse-go's binder
// escapes it: backslash, quote and NUL.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '\'')
	for {
		i := strings.IndexAny(s, "\\'\x00")
		if i < 0 {
			break
		}
		dst = append(dst, s[:i]...)
		switch s[i] {
		case '\\':
			dst = append(dst, `\\`...)
		case '\'':
			dst = append(dst, `\'`...)
		default:
			dst = append(dst, `\0`...)
		}
		s = s[i+1:]
	}
	return append(append(dst, s...), '\'')
}

// appendValuesTime appends t as an inserted row's time: UTC, nanoseconds kept.
func appendValuesTime(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, "'2006-01-02 15:04:05.000000000'")
}

// literal renders v as SQL. Times bound into a statement (inValues false) are
// second-precision toDateTime literals, exactly as clickhouse-go binds a positional
// argument; times in an inserted row keep their nanoseconds.
func literal(v any, inValues bool) (string, error) {
	switch x := v.(type) {
	case nil:
		return "NULL", nil
	case string:
		return string(appendQuoted(nil, x)), nil
	case []byte:
		return string(appendQuoted(nil, string(x))), nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case time.Time:
		if inValues {
			return string(appendValuesTime(nil, x)), nil
		}
		return x.UTC().Format("toDateTime('2006-01-02 15:04:05', 'UTC')"), nil
	case fmt.Stringer:
		if _, ok := v.(time.Duration); !ok {
			return string(appendQuoted(nil, x.String())), nil
		}
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'g', -1, 64), nil
	case reflect.Pointer:
		if rv.IsNil() {
			return "NULL", nil
		}
		return literal(rv.Elem().Interface(), inValues)
	case reflect.Slice, reflect.Array:
		parts := make([]string, rv.Len())
		for i := range parts {
			s, err := literal(rv.Index(i).Interface(), inValues)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	return "", fmt.Errorf("clickhouse: embedded engine: no literal for %T", v)
}

// quoted marks the bytes of query inside a string literal or a quoted identifier
// ('…', "…", `…`, with backslash escapes), quotes included.
func quoted(query string) []bool {
	in := make([]bool, len(query))
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			in[i] = true
			if c == '\\' && i+1 < len(query) {
				i++
				in[i] = true
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote, in[i] = c, true
		}
	}
	return in
}

// bindPositional replaces each ? outside quotes with its argument.
func bindPositional(query string, args []any) (string, error) {
	if len(args) == 0 {
		return query, nil
	}
	in := quoted(query)
	var sb strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' || in[i] {
			sb.WriteByte(query[i])
			continue
		}
		if n >= len(args) {
			return "", fmt.Errorf("clickhouse: %d arguments for more placeholders", len(args))
		}
		lit, err := literal(args[n], false)
		if err != nil {
			return "", err
		}
		sb.WriteString(lit)
		n++
	}
	if n != len(args) {
		return "", fmt.Errorf("clickhouse: %d placeholders for %d arguments", n, len(args))
	}
	return sb.String(), nil
}

// settingsKeyword finds SETTINGS as a word outside quotes.
var settingsKeyword = regexp.MustCompile(`(?i)\bSETTINGS\b`)

// overridesSettings reports whether query carries a SETTINGS clause of its own.
// On a server, readonly=1 arrives with the protocol and forbids changing any
// setting; here it is a SETTINGS clause in the text, which a subquery's own
// SETTINGS readonly=0 overrides (ClickHouse 26.5). So a read-only statement that
// sets anything is refused before it runs.
func overridesSettings(query string) bool {
	in := quoted(query)
	for _, m := range settingsKeyword.FindAllStringIndex(query, -1) {
		if !in[m[0]] {
			return true
		}
	}
	return false
}
