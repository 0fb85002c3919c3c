package clickhouse_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// TestTLSConnection opens the store over the native protocol's TLS port of a real
// server with a generated CA, with the password read from a file, and shows that a
// server the CA did not sign is refused.
func TestTLSConnection(t *testing.T) {
	srv := chtest.PrivateSecure(t, "clickhouse-secure-test", 19400)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("\n"), 0o600); err != nil { // the default user has an empty password
		t.Fatal(err)
	}
	open := func(sec clickhouse.Security) error {
		o := clickhouse.Options{Addr: []string{srv.TLSAddr}, Database: "tls_test"}
		if err := sec.Apply(&o); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var err error
		for i := 0; i < 40; i++ { // the server may still be loading
			var s *clickhouse.Store
			if s, err = clickhouse.Open(ctx, o); err == nil {
				defer s.Close()
				return s.Ping(ctx)
			}
			time.Sleep(250 * time.Millisecond)
		}
		return err
	}
	if err := open(clickhouse.Security{TLSCAFile: srv.CAFile, PasswordFile: pw}); err != nil {
		t.Fatalf("TLS with the CA: %v", err)
	}
	if err := open(clickhouse.Security{TLS: true}); err == nil {
		t.Fatal("connected over TLS to a server whose certificate no trusted CA signed")
	}
	if err := (clickhouse.Security{TLSCAFile: "/nonexistent"}).Apply(&clickhouse.Options{}); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
