package queryapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/pkg/bearer"
)

func tokenFile(t *testing.T, entries ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"tokens": entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func entry(name string, expires string) map[string]any {
	sum := sha256.Sum256([]byte("tk_" + name))
	e := map[string]any{"name": name, "sha256": hex.EncodeToString(sum[:]), "role": "reader", "tenants": []string{"acme"}}
	if expires != "" {
		e["expires_at"] = expires
	}
	return e
}

func auth(ts *Tokens, name string) error {
	r := httptest.NewRequest("GET", "/v1/events", nil)
	r.Header.Set("Authorization", "Bearer tk_"+name)
	_, err := ts.authenticate(r)
	return err
}

func TestTokenExpiryAndRevocation(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ts, err := ParseTokens(tokenFile(t, entry("alice", "2026-12-02T12:00:01Z"), entry("bob", ""), entry("carol", "2026-12-01T00:00:00Z")))
	if err != nil {
		t.Fatal(err)
	}
	ts.now = func() time.Time { return now }
	for _, c := range []struct {
		name, token string
		ok          bool
	}{{"before expiry", "alice", true}, {"no expiry", "bob", true}, {"expired", "carol", false}} {
		t.Run(c.name, func(t *testing.T) {
			if err := auth(ts, c.token); (err == nil) != c.ok {
				t.Errorf("authenticate(%s) = %v, want ok=%v", c.token, err, c.ok)
			}
		})
	}
	now = now.Add(time.Second) // the instant alice expires
	if err := auth(ts, "alice"); err == nil || !strings.Contains(err.Error(), "expired at 2026-12-02T12:00:01Z") {
		t.Errorf("at its expiry alice = %v", err)
	}
	if err := ts.Reload([]byte(`{"tokens": [`)); err == nil {
		t.Error("a broken file was accepted")
	}
	if err := auth(ts, "bob"); err != nil {
		t.Errorf("a failed reload changed the tokens in force: %v", err)
	}
	if err := ts.Reload(tokenFile(t, entry("alice", ""))); err != nil {
		t.Fatal(err)
	}
	if err := auth(ts, "bob"); !errors.Is(err, bearer.ErrUnknown) {
		t.Errorf("bob, removed from the file: %v", err)
	}
	if err := auth(ts, "alice"); err != nil {
		t.Errorf("alice, renewed without expiry: %v", err)
	}
}

func TestWatchFileReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, tokenFile(t, entry("alice", ""), entry("bob", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := ParseTokens(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{})
	done := make(chan struct{})
	go func() {
		ts.WatchFile(ctx, path, 20*time.Millisecond, reload, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not within 5 s: %s", what)
			}
		}
	}
	if err := os.WriteFile(path, tokenFile(t, entry("alice", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("bob revoked by editing the file", func() bool { return auth(ts, "bob") != nil })
	if err := os.WriteFile(path, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	time.Sleep(100 * time.Millisecond)
	if err := auth(ts, "alice"); err != nil {
		t.Errorf("a broken file replaced the tokens in force: %v", err)
	}
	cancel()
	<-done
}
