// Package chdb runs SQL on an in-process ClickHouse 26.x engine: libchdb.so from the
// npm package @chdb/lib-linux-x64-gnu (fetched once by Fetch, checked against a pinned
// SHA-512), loaded through purego. `trailkeep dev` stores its log in it, and tests use
// it to execute the modern DDL and the store's queries on a current ClickHouse without
// a server. The engine allows one connection per process; Open enforces that.
package chdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/internal/repo"
)

// Engine is the process's one chdb connection. Queries are serialised: libchdb's
// connection is not safe for concurrent use.
type Engine struct {
	mu      sync.Mutex
	connPtr unsafe.Pointer // chdb_connection*
	conn    unsafe.Pointer // chdb_connection
	path    string
	broken  error // set when output could not be drained: no result can be trusted

	queryN       func(conn unsafe.Pointer, query *byte, queryLen uintptr, format *byte, formatLen uintptr) unsafe.Pointer
	destroy      func(res unsafe.Pointer)
	closeConn    func(connPtr unsafe.Pointer)
	resultBuffer func(res unsafe.Pointer) *byte
	resultLength func(res unsafe.Pointer) uintptr
	resultError  func(res unsafe.Pointer) *byte
}

// Error is a failed statement. Code is ClickHouse's error code (e.g. 60 for an
// unknown table) when the message carries one, else 0.
type Error struct {
	Code    int32
	Message string
}

func (e *Error) Error() string { return "chdb: " + e.Message }

// Exception returns the code and message (the store maps them onto its server
// errors).
func (e *Error) Exception() (int32, string) { return e.Code, e.Message }

var (
	openMu sync.Mutex
	opened *Engine // the engine of this process, once Open succeeded
)

// Open loads the library at lib and connects an engine whose data lives in dir
// (created 0700 if missing; it survives the process, so a restart finds its tables).
// A process has one engine: opening again with the same dir returns it, with another
// dir fails. serverSettings ("name=value", e.g. "mark_cache_size=67108864") are the
// engine's server settings, fixed for the process.
func Open(lib, dir string, serverSettings ...string) (*Engine, error) {
	openMu.Lock()
	defer openMu.Unlock()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if opened != nil {
		if opened.path == abs {
			return opened, nil
		}
		return nil, fmt.Errorf("chdb: this process already has an engine on %s; libchdb allows one connection per process", opened.path)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, err
	}
	e, err := connect(lib, abs, serverSettings)
	if err != nil {
		return nil, err
	}
	opened = e
	return e, nil
}

func connect(lib, dir string, serverSettings []string) (*Engine, error) {
	// Loading and connecting install ClickHouse's signal handlers over the Go
	// runtime's; take the runtime's back once connected (see savedHandlers.restore).
	saved, err := saveSignalHandlers()
	if err != nil {
		return nil, err
	}
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("dlopen %s: %w", lib, err)
	}
	var setSignals func(enabled int32)
	purego.RegisterLibFunc(&setSignals, h, "chdb_set_signal_handlers_enabled")
	// ClickHouse installs its own signal handlers, which would take over the Go
	// runtime's (SIGSEGV is how Go detects nil dereferences): switch them off first.
	setSignals(0)
	e := &Engine{path: dir}
	var connectFn func(argc int32, argv **byte) unsafe.Pointer
	purego.RegisterLibFunc(&connectFn, h, "chdb_connect")
	purego.RegisterLibFunc(&e.queryN, h, "chdb_query_n")
	purego.RegisterLibFunc(&e.destroy, h, "chdb_destroy_query_result")
	purego.RegisterLibFunc(&e.closeConn, h, "chdb_close_conn")
	purego.RegisterLibFunc(&e.resultBuffer, h, "chdb_result_buffer")
	purego.RegisterLibFunc(&e.resultLength, h, "chdb_result_length")
	purego.RegisterLibFunc(&e.resultError, h, "chdb_result_error")

	args := []string{"clickhouse", "--path=" + dir}
	for _, kv := range serverSettings {
		args = append(args, "--"+kv)
	}
	cargs := make([]*byte, len(args))
	keep := make([][]byte, len(args))
	for i, a := range args {
		keep[i] = append([]byte(a), 0)
		cargs[i] = &keep[i][0]
	}
	e.connPtr = connectFn(int32(len(args)), &cargs[0])
	if err := saved.restore(); err != nil {
		return nil, err
	}
	if e.connPtr == nil {
		return nil, fmt.Errorf("chdb_connect on %s returned NULL (is another process using this directory?)", dir)
	}
	e.conn = *(*unsafe.Pointer)(e.connPtr)
	return e, nil
}

// Path is the engine's data directory.
func (e *Engine) Path() string { return e.path }

// Query runs one statement and returns the output in format (e.g. "TSV", "JSONEachRow").
func (e *Engine) Query(sql, format string) (string, error) {
	b, err := e.QueryBytes(sql, format)
	return string(b), err
}

// QueryBytes runs one statement and returns a copy of its output in format. The
// statement may hold any bytes, NUL included (its length is passed, not found).
func (e *Engine) QueryBytes(sql, format string) ([]byte, error) {
	if sql == "" {
		return nil, errors.New("chdb: empty statement")
	}
	// The engine reads the statement in place (its length is passed, and it is
	// not kept past the call): a writer's INSERT is megabytes, not worth a copy.
	q := unsafe.Slice(unsafe.StringData(sql), len(sql))
	f := append([]byte(format), 0) // NUL-terminated, length without it
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil, errors.New("chdb: engine closed")
	}
	if e.broken != nil {
		return nil, e.broken
	}
	out, err := e.queryLocked(q, f)
	if err != nil {
		if derr := e.drainLocked(); derr != nil {
			e.broken = derr
			return nil, errors.Join(err, derr)
		}
	}
	return out, err
}

func (e *Engine) queryLocked(q, format []byte) ([]byte, error) {
	res := e.queryN(e.conn, &q[0], uintptr(len(q)), &format[0], uintptr(len(format)-1))
	if res == nil {
		return nil, errors.New("chdb: chdb_query_n returned NULL")
	}
	defer e.destroy(res)
	if p := e.resultError(res); p != nil {
		return nil, parseError(cString(p))
	}
	n := int(e.resultLength(res))
	if n == 0 {
		return nil, nil
	}
	return append([]byte(nil), unsafe.Slice(e.resultBuffer(res), n)...), nil
}

// drainLocked runs a sentinel statement until its output is exactly its own. libchdb
// 26.5 keeps the blocks a failed statement had produced before its error and
// prepends them to the next statement's output; without this, rows of one query
// (another tenant's, say) would surface in the next one's result.
func (e *Engine) drainLocked() error {
	const sentinel = "SELECT 'trailkeep-chdb-drain'"
	for range 5 {
		out, err := e.queryLocked([]byte(sentinel), []byte("TSV\x00"))
		if err == nil && string(out) == "trailkeep-chdb-drain\n" {
			return nil
		}
	}
	return errors.New("chdb: the engine's output could not be drained after an error; refusing further results")
}

// Close closes the connection; ClickHouse flushes its tables. The process cannot
// open another engine afterwards (libchdb keeps its global state).
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		e.closeConn(e.connPtr)
		e.conn = nil
	}
	return nil
}

// parseError keeps ClickHouse's error code ("Code: 60. DB::Exception: ...").
func parseError(msg string) error {
	msg = strings.TrimSpace(msg)
	e := &Error{Message: msg}
	if rest, ok := strings.CutPrefix(msg, "Code: "); ok {
		if n, _, ok := strings.Cut(rest, "."); ok {
			if c, err := strconv.ParseInt(n, 10, 32); err == nil {
				e.Code = int32(c)
			}
		}
	}
	return e
}

func cString(p *byte) string {
	var b []byte
	for ; *p != 0; p = (*byte)(unsafe.Add(unsafe.Pointer(p), 1)) {
		b = append(b, *p)
	}
	return string(b)
}

var (
	sharedOnce sync.Once
	shared     *Engine
	errShared  error
)

// Shared returns the test process's engine on a temporary directory, fetching the
// library into the repository's .run/chdb cache on first use. It fails the test
// (never skips) when that is impossible.
func Shared(t testing.TB) *Engine {
	t.Helper()
	integration.Require(t, "the in-process ClickHouse engine (libchdb, fetched from npm)")
	sharedOnce.Do(func() {
		root, err := repo.Root()
		if err != nil {
			errShared = err
			return
		}
		lib, err := Fetch(filepath.Join(root, ".run", "chdb"), os.Stderr)
		if err != nil {
			errShared = err
			return
		}
		dir, err := os.MkdirTemp("", "chdb-")
		if err != nil {
			errShared = err
			return
		}
		shared, errShared = Open(lib, dir)
	})
	if errShared != nil {
		t.Fatalf("chdb: %v", errShared)
	}
	return shared
}
