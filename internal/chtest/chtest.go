// Package chtest starts the local ClickHouse server (scripts/clickhouse.sh) for
// integration tests. A server that cannot start fails the test; it is never skipped.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chdb"
	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/internal/repo"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Addr is the native-protocol address of the local server.
const Addr = "127.0.0.1:19000"

// Start starts the server if needed (installing the Debian package when missing).
func Start(t testing.TB) {
	t.Helper()
	integration.Require(t, "the ClickHouse server (scripts/clickhouse.sh)")
	script, err := repo.Script("clickhouse.sh")
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	cmd := exec.Command("bash", script, "start")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chtest: scripts/clickhouse.sh start: %v\n%s", err, out)
	}
}

// Store starts the server and returns a migrated store in a fresh database, dropped
// when the test ends.
func Store(t testing.TB) *clickhouse.Store {
	t.Helper()
	Start(t)
	var b [4]byte
	rand.Read(b[:])
	db := "test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var s *clickhouse.Store
	var err error
	for i := 0; i < 50; i++ { // the server may still be loading right after start
		if s, err = clickhouse.Open(ctx, clickhouse.Options{Addr: []string{Addr}, Database: db}); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("chtest: migrate: %v", err)
	}
	t.Cleanup(func() {
		s.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		s.Close()
	})
	return s
}

// Secure is a private server that also serves the native protocol over TLS.
type Secure struct {
	Addr, TLSAddr, CAFile string
}

// PrivateSecure starts a server of its own under .run/<name> on port (plain) and
// port+3 (TLS, certificate signed by the generated CA in CAFile), stopped when the
// test ends.
func PrivateSecure(t testing.TB, name string, port int) *Secure {
	t.Helper()
	integration.Require(t, "a ClickHouse server with TLS (scripts/clickhouse.sh)")
	script, err := repo.Script("clickhouse.sh")
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	dir := filepath.Join(root, ".run", name)
	env := append(os.Environ(), "TRAILKEEP_CLICKHOUSE_SECURE=1", "TRAILKEEP_CLICKHOUSE_EXCLUSIVE=1", "TRAILKEEP_CLICKHOUSE_DIR="+dir, "TRAILKEEP_CLICKHOUSE_PORT="+strconv.Itoa(port))
	run := func(verb string) {
		cmd := exec.Command("bash", script, verb)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("chtest: scripts/clickhouse.sh %s: %v\n%s", verb, err, out)
		}
	}
	t.Cleanup(func() { run("stop") })
	run("start")
	return &Secure{Addr: "127.0.0.1:" + strconv.Itoa(port), TLSAddr: "127.0.0.1:" + strconv.Itoa(port+3), CAFile: filepath.Join(dir, "tls", "ca.pem")}
}

// Embedded returns a migrated store in a fresh database on the in-process ClickHouse
// engine (the one `trailkeep dev` uses), dropped when the test ends.
func Embedded(t testing.TB) *clickhouse.Store {
	t.Helper()
	e := chdb.Shared(t)
	var b [4]byte
	rand.Read(b[:])
	db := "test_" + hex.EncodeToString(b[:])
	s, err := clickhouse.OpenEmbedded(e, clickhouse.EmbeddedOptions{Database: db})
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("chtest: migrate on the embedded engine: %v", err)
	}
	t.Cleanup(func() { s.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	return s
}

// Engine is one way to get a store: the local server or the in-process engine.
type Engine struct {
	Name string
	Open func(testing.TB) *clickhouse.Store
}

// Engines are both kinds of store; tests that run over them hold the two to the
// same results (one code path, two transports and DDL generations).
var Engines = []Engine{{"server", Store}, {"embedded", Embedded}}

// Each runs fn once per engine, as a subtest named after it.
func Each(t *testing.T, fn func(t *testing.T, s *clickhouse.Store)) {
	for _, e := range Engines {
		t.Run(e.Name, func(t *testing.T) { fn(t, e.Open(t)) })
	}
}
