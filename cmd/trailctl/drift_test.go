package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/fixtures/canonical"
	"github.com/trailkeep/trailkeep/pkg/chain"
)

// TestDrift: over the shared Claude Code sessions, trailctl drift names the one call
// that ran something other than what was approved, and exits 1 for it.
func TestDrift(t *testing.T) {
	store := chtest.Store(t)
	c := chain.New(0)
	var recs []chain.Record
	for i, ev := range canonical.Events(t) {
		rec, _ := c.Append(ev, time.Now().Add(time.Duration(i)*time.Millisecond))
		recs = append(recs, rec)
	}
	if err := store.InsertRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	drift := func(args ...string) (string, string, int) {
		return run(t, append([]string{"drift", "--clickhouse", chtest.Addr, "--database", store.Database()}, args...)...)
	}
	out, errOut, code := drift()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 2 || !strings.Contains(lines[1], "toolu_03Drf1tA2b3c4d") ||
		!strings.Contains(lines[1], `{"command":"npm run migrate -- --env staging"}`) || !strings.Contains(lines[1], `{"command":"npm run migrate -- --env production"}`) ||
		!strings.Contains(errOut, "1 tool call(s) ran parameters that were not approved") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	out, _, code = drift("-o", "json", "--tenant", "acme")
	var d struct {
		ToolUseID string   `json:"tool_use_id"`
		Approved  []string `json:"approved_digests"`
		Executed  []string `json:"executed_digests"`
	}
	if err := json.Unmarshal([]byte(out), &d); code != 1 || err != nil || d.ToolUseID != "toolu_03Drf1tA2b3c4d" || len(d.Approved) != 1 || d.Approved[0] == d.Executed[0] {
		t.Fatalf("json (exit %d, %v): %s", code, err, out)
	}
	if out, _, code := drift("session:d7a9e5c1-0f3b-4e2d-a6c8-9b1d3f5e7a20 -tool_use:toolu_03Drf1tA2b3c4d"); code != 0 || !strings.Contains(out, "no drift") {
		t.Fatalf("filtered to the matching calls: exit %d %s", code, out)
	}
	if _, _, code := drift("--tenant", "globex"); code != 0 {
		t.Fatalf("another tenant: exit %d", code)
	}
	if _, _, code := drift("after:whenever"); code != 2 {
		t.Fatalf("bad query: exit %d", code)
	}

	// Through the query API: the same report and exit codes.
	api := apiOver(t, store)
	t.Setenv("TRAILKEEP_QUERY_TOKEN", apiToken)
	for _, args := range [][]string{{"--tenant", "acme"}, {"-o", "json", "--tenant", "acme", "--unapproved"}, {"--tenant", "globex"}} {
		direct, _, dcode := drift(args...)
		via, errOut, code := run(t, append([]string{"drift", "--api", api}, args...)...)
		if code != dcode || via != direct {
			t.Fatalf("drift %v through the API (exit %d, want %d; %s) differs from the store:\n%s\nvs\n%s", args, code, dcode, errOut, via, direct)
		}
	}
	if _, errOut, code := run(t, "drift", "--api", api, "after:whenever"); code != 2 {
		t.Fatalf("bad query through the API: exit %d %s", code, errOut)
	}
}
