package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/fixtures"
	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/pkg/chain"
)

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// TestFixturesReachClickHouseExactlyOnce posts every Claude Code and registry fixture
// through ingest and requires each to appear exactly once in ClickHouse, with
// contiguous seq per partition, and the stored chains and checkpoints to verify.
func TestFixturesReachClickHouseExactlyOnce(t *testing.T) {
	// Builds binaries before any helper runs: gate here, not only in the helpers.
	integration.Require(t, "Kafka and ClickHouse")
	pl := startPipeline(t, "e2e", 3, 7)
	store, verifiers := pl.store, pl.verifiers
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	post := func(path, tok, ctype string, body []byte) {
		req, _ := http.NewRequest("POST", pl.url+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
	}
	n := 0
	for _, f := range []string{"claude-code/session-basic.jsonl", "claude-code/session-mcp-subagent.jsonl", "claude-code/param-drift.jsonl"} {
		for _, l := range fixtures.Lines(t, f) {
			post("/v1/hooks/claude-code", hookTok, "application/json", l)
			n++
		}
	}
	canon := fixtures.Lines(t, "registry/canonical-events.jsonl")
	post("/v1/events", regTok, "application/x-ndjson", bytes.Join(canon, []byte("\n")))
	n += len(canon)
	ce, err := os.ReadFile(filepath.Join(fixtures.Dir(t), "registry", "cloudevents-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	post("/v1/cloudevents", regTok, "application/cloudevents-batch+json", ce)
	n += 2

	// Wait for every event in ClickHouse, and for the last checkpoints.
	deadline := time.Now().Add(90 * time.Second)
	for {
		total := 0
		covered := true
		for p := int32(0); p < 3; p++ {
			m, ok, err := store.MaxSeq(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				total += int(m) + 1
				cp, _ := store.MaxCheckpoint(ctx, p)
				covered = covered && cp == m+1
			}
		}
		if total >= n && covered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ClickHouse holds %d of %d events (checkpoints covering all: %v)", total, n, covered)
		}
		time.Sleep(200 * time.Millisecond)
	}

	ids := map[string]int{}
	total := 0
	for p := int32(0); p < 3; p++ {
		cps, err := store.Checkpoints(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		v, err := chain.NewVerifier(chain.Origin("e2e", pl.chained, p), p, verifiers, cps)
		if err != nil {
			t.Fatal(err)
		}
		err = store.Records(ctx, p, 0, func(r chain.Record) error {
			var head struct{ ID string }
			if err := json.Unmarshal(r.Event, &head); err != nil {
				t.Fatal(err)
			}
			ids[head.ID]++
			total++
			return v.Add(r)
		})
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		sum, err := v.Finish()
		if err != nil {
			t.Fatalf("partition %d does not verify from ClickHouse: %v", p, err)
		}
		if sum.Records > 0 && sum.Unanchored() != 0 {
			t.Errorf("partition %d: %d records not covered by a checkpoint", p, sum.Unanchored())
		}
	}
	if total != n || len(ids) != n {
		t.Fatalf("ClickHouse holds %d rows with %d distinct events, want exactly %d", total, len(ids), n)
	}
}
