// Package chtest starts the local ClickHouse server (scripts/clickhouse.sh) for
// integration tests. A server that cannot start fails the test; it is never skipped.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/repo"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Addr is the native-protocol address of the local server.
const Addr = "127.0.0.1:19000"

// Start starts the server if needed (installing the Debian package when missing).
func Start(t testing.TB) {
	t.Helper()
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
