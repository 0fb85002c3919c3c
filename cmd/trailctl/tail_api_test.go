package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
)

// TestTailThroughAPI holds `tail --api` to `tail` on the store (one read path,
// two transports), scopes it to the token, and follows: records stored after the
// tail started are printed once, in order, and another tenant's never.
func TestTailThroughAPI(t *testing.T) {
	store := chtest.Store(t)
	log := chaintest.New(t, "tail", 0)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i := range 6 {
		log.Add(0, "acme", at.Add(time.Duration(i)*time.Minute), chaintest.Doc("skill.updated", fmt.Sprintf("u%d@acme.example", i), "skill", "s"))
	}
	for i := range 3 {
		log.Add(1, "globex", at.Add(time.Duration(i)*time.Minute), chaintest.Doc("team.member_added", "ops@globex.example", "team", "t"))
	}
	ctx := context.Background()
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	const acmeToken = "tk_trailctl_tail_test_acme_reader_00001"
	var follows atomic.Int32
	api := apiWithTokens(t, store, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/follow" {
				follows.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}, map[string]string{apiToken: `"name":"admin","role":"admin","tenants":["*"]`, acmeToken: `"name":"acme-reader","role":"reader","tenants":["acme"]`})
	db := []string{"--clickhouse", chtest.Addr, "--database", store.Database()}

	t.Setenv("TRAILKEEP_QUERY_TOKEN", apiToken)
	for _, args := range [][]string{{"-n", "4", "--tenant", "acme"}, {"-n", "20"}, {"-n", "3", "-o", "json", "event:team.*"}} {
		direct := mustRun(t, append(append([]string{"tail"}, args...), db...)...)
		via, errOut, code := run(t, append([]string{"tail", "--api", api}, args...)...)
		if code != 0 || via != direct || direct == "" {
			t.Fatalf("tail %v through the API (exit %d, %s) differs from the store:\n%s\nvs\n%s", args, code, errOut, via, direct)
		}
	}
	t.Setenv("TRAILKEEP_QUERY_TOKEN", acmeToken)
	direct := mustRun(t, append([]string{"tail", "-n", "20", "--tenant", "acme"}, db...)...)
	if via, errOut, code := run(t, "tail", "--api", api, "-n", "20"); code != 0 || via != direct || strings.Contains(via, "globex") {
		t.Fatalf("an acme token's tail (exit %d, %s) is not acme's:\n%s\nvs\n%s", code, errOut, via, direct)
	}
	if _, errOut, code := run(t, "tail", "--api", api, "--tenant", "globex"); code != 1 || !strings.Contains(errOut, "globex") {
		t.Fatalf("an acme token asking for globex: exit %d %s", code, errOut)
	}
	if _, errOut, code := run(t, "tail", "--api", api, "actor:("); code != 2 || errOut == "" {
		t.Fatalf("a bad query through the API: exit %d %s", code, errOut)
	}

	// Follow with the acme token: what is stored after the head is printed once.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out syncBuffer
	done := make(chan int, 1)
	follows.Store(0) // the tails above took heads too
	go func() {
		done <- executeContext(fctx, []string{"tail", "-f", "-n", "0", "--interval", "50ms", "--api", api}, &out, &out)
	}()
	waitFor(t, func() bool { return follows.Load() >= 2 }, "the tail to take its head and start following") // head, then the first follow
	var fresh []chain.Record
	fresh = append(fresh, log.Add(0, "acme", time.Now().UTC(), chaintest.Doc("rule.updated", "new1@acme.example", "rule", "r")))
	fresh = append(fresh, log.Add(1, "globex", time.Now().UTC(), chaintest.Doc("rule.updated", "new@globex.example", "rule", "r")))
	fresh = append(fresh, log.Add(2, "acme", time.Now().UTC(), chaintest.Doc("rule.updated", "new2@acme.example", "rule", "r")))
	if err := store.InsertRecords(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); strings.Count(out.String(), "\n") < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the two new acme events; the tail printed:\n%s", out.String())
		}
	}
	time.Sleep(200 * time.Millisecond) // a third line, if the tail wrongly printed one, arrives by now
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail -f ended with %d: %s", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "new1@acme.example") || !strings.HasSuffix(lines[0], "0/6") ||
		!strings.Contains(lines[1], "new2@acme.example") || !strings.HasSuffix(lines[1], "2/0") {
		t.Fatalf("tail -f printed:\n%s", out.String())
	}
}

// apiWithTokens serves the query API over store with the given tokens (secret →
// the token's JSON members but its digest) behind wrap; access events are dropped.
func apiWithTokens(t *testing.T, store queryapi.Store, wrap func(http.Handler) http.Handler, tokens map[string]string) string {
	t.Helper()
	var entries []string
	for secret, rest := range tokens {
		sum := sha256.Sum256([]byte(secret))
		entries = append(entries, fmt.Sprintf(`{"sha256":%q,%s}`, hex.EncodeToString(sum[:]), rest))
	}
	toks, err := queryapi.ParseTokens([]byte(`{"tokens":[` + strings.Join(entries, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := queryapi.New(queryapi.Options{Store: store, Tokens: toks, Publisher: dropAccess{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(wrap(srv.Handler()))
	t.Cleanup(hs.Close)
	return hs.URL
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
