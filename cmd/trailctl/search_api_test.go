package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/proof"
)

// TestSearchThroughAPI: with --api the CLI sends the query, tenants and token to the
// query API, renders its page like a store page, prints the next cursor, and turns
// the API's refusals into exit codes (400: usage, 2; 403: 1).
func TestSearchThroughAPI(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		switch r.URL.Query().Get("tenant") {
		case "globex":
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":"forbidden","message":"the token may not read tenant globex"}`))
			return
		}
		w.Write([]byte(`{"events":[{"partition":2,"seq":9,"chained_at":"2026-11-02T09:00:00.000000001Z","leaf_hash":"ab","event":{"action":"skill.updated","actor":{"id":"sarah","type":"user"},"id":"0190b8a2-0000-7000-8000-000000000001","occurred_at":"2026-11-02T09:00:00Z","resource":{"id":"api","type":"skill"},"tenant":"acme"}}],"next_cursor":"CUR"}`))
	}))
	defer srv.Close()
	t.Setenv("TRAILKEEP_QUERY_TOKEN", "tk_test")
	out, stderr, code := run(t, "search", "event:skill.*", "--api", srv.URL, "--tenant", "acme", "--limit", "5")
	if code != 0 || !strings.Contains(out, "skill.updated") || !strings.Contains(out, "2/9") || !strings.Contains(stderr, "--cursor CUR") {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if got.Header.Get("Authorization") != "Bearer tk_test" || got.URL.Query().Get("q") != "event:skill.*" || got.URL.Query().Get("limit") != "5" || got.URL.Query().Get("tenant") != "acme" {
		t.Fatalf("request %s %v", got.URL, got.Header)
	}
	if _, stderr, code := run(t, "search", "x", "--api", srv.URL, "--tenant", "globex"); code != 1 || !strings.Contains(stderr, "may not read tenant globex") {
		t.Fatalf("forbidden: exit %d %s", code, stderr)
	}
	t.Setenv("TRAILKEEP_QUERY_TOKEN", "")
	if _, stderr, code := run(t, "search", "x", "--api", srv.URL); code != 2 || !strings.Contains(stderr, "TRAILKEEP_QUERY_TOKEN") {
		t.Fatalf("no token: exit %d %s", code, stderr)
	}
}

// TestProveThroughAPI: `prove --api` fetches the bundle, checks it with the given
// key, and prints it; a key that did not sign it fails with exit 1.
func TestProveThroughAPI(t *testing.T) {
	log := chaintest.New(t, "prove-api", 0)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var leaves chain.MemoryLeaves
	for i := 0; i < 5; i++ {
		log.Add(0, "acme", at.Add(time.Duration(i)*time.Second), chaintest.Doc("rule.updated", fmt.Sprint("u", i), "rule", "r"))
		leaves = append(leaves, log.Records[i].LeafHash)
	}
	b, err := proof.Build(log.Records[3], log.Sign(0), leaves)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/events/ev-3/proof" || r.Header.Get("Authorization") != "Bearer tk_test" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"not_found","message":"no such event"}`))
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	t.Setenv("TRAILKEEP_QUERY_TOKEN", "tk_test")
	dir := t.TempDir()
	key := filepath.Join(dir, "log.pub")
	writeFile(t, key, []byte(log.VerifierKey+"\n"), 0o644)
	out, stderr, code := run(t, "prove", "ev-3", "--api", srv.URL, "--verifier-key", key)
	if code != 0 || !strings.Contains(out, `"tree_size":5`) {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	other := chaintest.New(t, "prove-api", 0)
	wrong := filepath.Join(dir, "other.pub")
	writeFile(t, wrong, []byte(other.VerifierKey+"\n"), 0o644)
	if _, stderr, code := run(t, "prove", "ev-3", "--api", srv.URL, "--verifier-key", wrong); code != 1 || !strings.Contains(stderr, "does not verify") {
		t.Fatalf("wrong key: exit %d %s", code, stderr)
	}
	if _, stderr, code := run(t, "prove", "ev-9", "--api", srv.URL); code != 1 || !strings.Contains(stderr, "no such event") {
		t.Fatalf("unknown event: exit %d %s", code, stderr)
	}
}

// TestSQLThroughAPI: `sql --api` posts the statement and row limit with the token,
// prints the API's columns and rows (a UInt64 above 2^53 exactly), turns a 400 into
// a usage error naming the field, and refuses flags the API decides.
func TestSQLThroughAPI(t *testing.T) {
	var body struct {
		SQL     string `json:"sql"`
		MaxRows int    `json:"max_rows"`
	}
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sql" || json.NewDecoder(r.Body).Decode(&body) != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if strings.Contains(body.SQL, "system.") {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_request","message":"the statement is outside the audit tables","errors":[{"field":"/sql","rule":"scope","message":"table system.users is not an audit table"}]}`))
			return
		}
		w.Write([]byte(`{"columns":[{"name":"actor_id","type":"String"},{"name":"n","type":"UInt64"}],"rows":[["sarah",18446744073709551615]],"truncated":true}`))
	}))
	defer srv.Close()
	t.Setenv("TRAILKEEP_QUERY_TOKEN", "tk_test")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"table", []string{"SELECT actor_id, count() AS n FROM audit_events GROUP BY actor_id", "--max-rows", "7"}, 0, "18446744073709551615", "result cut at 7 rows"},
		{"json keeps the number", []string{"SELECT 1", "-o", "json"}, 0, `{"actor_id":"sarah","n":18446744073709551615}`, ""},
		{"refused statement", []string{"SELECT * FROM system.users"}, 2, "", "system.users is not an audit table"},
		{"--tenant is the token's", []string{"SELECT 1", "--tenant", "acme"}, 2, "", "--tenant does not apply with --api"},
		{"--timeout is the API's", []string{"SELECT 1", "--timeout", "5s"}, 2, "", "--timeout does not apply with --api"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := run(t, append([]string{"sql", "--api", srv.URL}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, stderr)
			}
			if tc.name == "table" && (auth != "Bearer tk_test" || body.MaxRows != 7 || !strings.HasPrefix(body.SQL, "SELECT actor_id")) {
				t.Fatalf("request: auth %q, body %+v", auth, body)
			}
		})
	}
}
