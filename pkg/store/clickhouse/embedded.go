package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

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
type embeddedBatch struct {
	c      embeddedConn
	ctx    context.Context
	insert string
	rows   [][]any
	cols   [][]any
	done   bool
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
	rows := b.rows
	if b.cols != nil {
		rows = transpose(b.cols)
	}
	if len(rows) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteString(b.insert)
	sb.WriteString(" SETTINGS session_timezone = 'UTC' FORMAT Values ")
	for i, r := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		for j, v := range r {
			if j > 0 {
				sb.WriteByte(',')
			}
			lit, err := literal(v, true)
			if err != nil {
				return fmt.Errorf("row %d column %d: %w", i, j, err)
			}
			sb.WriteString(lit)
		}
		sb.WriteByte(')')
	}
	_, err := b.c.exec(context.WithoutCancel(b.ctx), sb.String(), "TSV")
	return err
}

func transpose(cols [][]any) [][]any {
	n := 0
	for _, c := range cols {
		n = max(n, len(c))
	}
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = make([]any, len(cols))
		for j, c := range cols {
			if i < len(c) {
				rows[i][j] = c[i]
			}
		}
	}
	return rows
}

// batchColumn appends a whole column (a typed slice) or one value of it.
type batchColumn struct {
	b *embeddedBatch
	i int
}

func (c batchColumn) grow() {
	for len(c.b.cols) <= c.i {
		c.b.cols = append(c.b.cols, nil)
	}
}

func (c batchColumn) Append(v any) error {
	if c.b.rows != nil {
		return errors.New("clickhouse: embedded batch: rows and columns mixed")
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return fmt.Errorf("clickhouse: embedded batch: column %d: want a slice, got %T", c.i, v)
	}
	c.grow()
	for k := 0; k < rv.Len(); k++ {
		c.b.cols[c.i] = append(c.b.cols[c.i], rv.Index(k).Interface())
	}
	return nil
}

func (c batchColumn) AppendRow(v any) error {
	c.grow()
	c.b.cols[c.i] = append(c.b.cols[c.i], v)
	return nil
}

// stringQuote escapes a string literal as clickhouse-go's binder does.
var stringQuote = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`)

// literal renders v as SQL. Times bound into a statement (inValues false) are
// second-precision toDateTime literals, exactly as clickhouse-go binds a positional
// argument; times in an inserted row keep their nanoseconds.
func literal(v any, inValues bool) (string, error) {
	switch x := v.(type) {
	case nil:
		return "NULL", nil
	case string:
		return "'" + stringQuote.Replace(x) + "'", nil
	case []byte:
		return "'" + stringQuote.Replace(string(x)) + "'", nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case time.Time:
		if inValues {
			return x.UTC().Format("'2006-01-02 15:04:05.000000000'"), nil
		}
		return x.UTC().Format("toDateTime('2006-01-02 15:04:05', 'UTC')"), nil
	case fmt.Stringer:
		if _, ok := v.(time.Duration); !ok {
			return "'" + stringQuote.Replace(x.String()) + "'", nil
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
