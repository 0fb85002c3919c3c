package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
)

// TestExportThroughAPI: `export --api` streams the API's records into the same
// file and signed manifest as a store export, with the latest checkpoint attached
// where it covers the partition, so verify-export passes; an answer whose trailers
// disagree with the body, or lack them, fails and leaves no file.
func TestExportThroughAPI(t *testing.T) {
	log := chaintest.New(t, "api-export", 0)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 12; i++ {
		log.Add(0, "acme", at.Add(time.Duration(i)*time.Minute), chaintest.Doc("skill.updated", "sarah@acme.example", "skill", "api"))
	}
	cp := log.Sign(0)
	var body strings.Builder
	for _, r := range log.Records {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		body.Write(append(b, '\n'))
	}
	sum := sha256.Sum256([]byte(body.String()))
	for _, tc := range []struct {
		name        string
		rows, sha   string // the trailers the fake API sends ("" none)
		code        int
		stdout, err string
	}{
		{"complete", "12", hex.EncodeToString(sum[:]), 0, "exported 12 events (1 partitions", ""},
		{"altered in transit", "12", strings.Repeat("0", 64), 2, "", "SHA-256"},
		{"a row short", "13", hex.EncodeToString(sum[:]), 2, "", "the API sent 13"},
		{"cut before the trailers", "", "", 2, "", "without its row count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tk_test" {
					w.WriteHeader(http.StatusForbidden)
					return
				}
				switch r.URL.Path {
				case "/v1/export":
					if r.URL.Query().Get("format") != "ndjson" || r.URL.Query().Get("q") != "tenant:acme" {
						w.WriteHeader(http.StatusBadRequest)
						return
					}
					w.Header().Set("Trailer", "X-Trailkeep-Rows, X-Trailkeep-Sha256")
					w.Write([]byte(body.String()))
					if tc.rows != "" {
						w.Header().Set("X-Trailkeep-Rows", tc.rows)
						w.Header().Set("X-Trailkeep-Sha256", tc.sha)
					}
				case "/v1/checkpoints/latest":
					json.NewEncoder(w).Encode(map[string]any{"checkpoints": []map[string]any{
						{"partition": 0, "origin": log.Origin(0), "tree_size": 12, "checkpoint": string(cp.Note)}}})
				default:
					w.WriteHeader(http.StatusNotFound)
				}
			}))
			defer srv.Close()
			t.Setenv("TRAILKEEP_QUERY_TOKEN", "tk_test")
			dir := t.TempDir()
			mustRun(t, "keys", "generate", "exporter", "--dir", dir)
			out := filepath.Join(dir, "acme.ndjson")
			stdout, stderr, code := run(t, "export", "tenant:acme", "--api", srv.URL, "--out", out, "--signing-key", filepath.Join(dir, "exporter.key"), "--quiet")
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if tc.code != 0 {
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Fatalf("a failed export left %s (%v)", out, err)
				}
				return
			}
			got, err := os.ReadFile(out)
			if err != nil || string(got) != body.String() {
				t.Fatalf("the file is not the API's records (%v)", err)
			}
			ok := mustRun(t, "verify-export", out+".manifest", "--exporter-key", filepath.Join(dir, "exporter.pub"), "--verifier-key", log.PublicKeyFile())
			if !strings.Contains(ok, "OK  acme.ndjson: 12 events") || strings.Contains(ok, "no covering checkpoint") {
				t.Fatalf("verify-export: %s", ok)
			}
		})
	}
}
