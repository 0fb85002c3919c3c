// Package chdb runs SQL on an in-process ClickHouse 26.x engine (libchdb.so from the
// npm package @chdb/lib-linux-x64-gnu, fetched by scripts/chdb.sh) through purego, so
// tests can execute the modern DDL and the store's queries on a current ClickHouse
// without a server. Test support only; not used by any binary.
package chdb

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/internal/repo"
)

// Engine is one chdb connection (chdb allows one per process).
type Engine struct {
	mu      sync.Mutex
	connPtr unsafe.Pointer // chdb_connection*
	conn    unsafe.Pointer // chdb_connection

	query        func(conn unsafe.Pointer, query, format string) unsafe.Pointer
	destroy      func(res unsafe.Pointer)
	resultBuffer func(res unsafe.Pointer) *byte
	resultLength func(res unsafe.Pointer) uintptr
	resultError  func(res unsafe.Pointer) *byte
}

var (
	once    sync.Once
	shared  *Engine
	errOpen error
)

// Shared returns the process-wide engine, fetching and loading libchdb.so on first
// use. It fails the test (never skips) when that is impossible.
func Shared(t testing.TB) *Engine {
	t.Helper()
	integration.Require(t, "the in-process ClickHouse engine (libchdb, fetched by scripts/chdb.sh)")
	once.Do(func() { shared, errOpen = open() })
	if errOpen != nil {
		t.Fatalf("chdb: %v", errOpen)
	}
	return shared
}

func open() (*Engine, error) {
	script, err := repo.Script("chdb.sh")
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("bash", script).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("scripts/chdb.sh: %v\n%s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("scripts/chdb.sh: %w", err)
	}
	path := string(out[:len(out)-1])
	// Loading and connecting install ClickHouse's signal handlers over the Go
	// runtime's; take the runtime's back once connected (see savedHandlers.restore).
	saved, err := saveSignalHandlers()
	if err != nil {
		return nil, err
	}
	lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("dlopen %s: %w", path, err)
	}
	var setSignals func(enabled int32)
	purego.RegisterLibFunc(&setSignals, lib, "chdb_set_signal_handlers_enabled")
	// ClickHouse installs its own signal handlers, which would take over the Go
	// runtime's (SIGSEGV is how Go detects nil dereferences): switch them off first.
	setSignals(0)
	e := &Engine{}
	var connect func(argc int32, argv **byte) unsafe.Pointer
	purego.RegisterLibFunc(&connect, lib, "chdb_connect")
	purego.RegisterLibFunc(&e.query, lib, "chdb_query")
	purego.RegisterLibFunc(&e.destroy, lib, "chdb_destroy_query_result")
	purego.RegisterLibFunc(&e.resultBuffer, lib, "chdb_result_buffer")
	purego.RegisterLibFunc(&e.resultLength, lib, "chdb_result_length")
	purego.RegisterLibFunc(&e.resultError, lib, "chdb_result_error")

	dir, err := os.MkdirTemp("", "chdb-")
	if err != nil {
		return nil, err
	}
	args := []string{"clickhouse", "--path=" + dir}
	cargs := make([]*byte, len(args))
	keep := make([][]byte, len(args))
	for i, a := range args {
		keep[i] = append([]byte(a), 0)
		cargs[i] = &keep[i][0]
	}
	e.connPtr = connect(int32(len(args)), &cargs[0])
	if err := saved.restore(); err != nil {
		return nil, err
	}
	if e.connPtr == nil {
		return nil, errors.New("chdb_connect returned NULL")
	}
	e.conn = *(*unsafe.Pointer)(e.connPtr)
	return e, nil
}

// Query runs one statement and returns the output in format (e.g. "TSV", "JSONEachRow").
func (e *Engine) Query(sql, format string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	res := e.query(e.conn, sql, format)
	if res == nil {
		return "", errors.New("chdb_query returned NULL")
	}
	defer e.destroy(res)
	if p := e.resultError(res); p != nil {
		return "", fmt.Errorf("chdb: %s", cString(p))
	}
	n := int(e.resultLength(res))
	if n == 0 {
		return "", nil
	}
	return string(unsafe.Slice(e.resultBuffer(res), n)), nil
}

func cString(p *byte) string {
	var b []byte
	for ; *p != 0; p = (*byte)(unsafe.Add(unsafe.Pointer(p), 1)) {
		b = append(b, *p)
	}
	return string(b)
}
