package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/trailkeep/trailkeep/internal/fixtures"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func mustRead(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures.Dir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func shaBytes(s string) [32]byte { return sha256.Sum256([]byte(s)) }
