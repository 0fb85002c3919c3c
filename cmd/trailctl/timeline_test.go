package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// TestTimeline: the seed's incident-response question, "which version of
// api-conventions was in force when the code was generated, who changed it and was
// that approved", answered from ClickHouse in one command.
func TestTimeline(t *testing.T) {
	store := chtest.Store(t)
	c := chain.New(0)
	var recs []chain.Record
	for i, e := range []struct {
		when, action, from, to, who, approver, summary, result string
	}{
		{"2026-01-15T09:23:00Z", "skill.updated", "1.4.0", "1.5.0", "sarah@acme.example", "lead@acme.example", "Added rate limiting instructions", "success"},
		{"2026-01-15T09:45:00Z", "skill.updated", "1.5.0", "1.6.0", "sarah@acme.example", "", "Relaxed input validation", "success"},
		{"2026-01-18T11:00:00Z", "skill.updated", "1.6.0", "6.6.6", "contractor@vendor.example", "", "", "denied"},
		{"2026-01-20T14:12:00Z", "skill.updated", "1.6.0", "1.7.0", "mike@acme.example", "lead@acme.example", "Stricter validation", "success"},
		{"2026-02-12T16:40:11Z", "skill.rolled_back", "1.7.0", "1.6.0", "sarah@acme.example", "", "rate-limit rule broke CI", "success"},
		{"2026-01-16T00:00:00Z", "skill.updated", "2.0.0", "2.1.0", "tom@acme.example", "", "another skill", "success"},
	} {
		name, id := "api-conventions", "skl_9"
		if i == 5 {
			name, id = "security-scan", "skl_10"
		}
		doc := map[string]any{"action": e.action, "occurred_at": e.when, "actor": map[string]any{"type": "user", "id": e.who, "email": e.who},
			"resource": map[string]any{"type": "skill", "id": id, "name": name}, "result": map[string]any{"status": e.result},
			"change": map[string]any{"from_version": e.from, "to_version": e.to}}
		if e.summary != "" {
			doc["change"].(map[string]any)["diff_summary"] = e.summary
		}
		if e.approver != "" {
			doc["approval"] = map[string]any{"decision": "approved", "decided_by": e.approver}
		}
		if err := (event.Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: time.Now()}).Apply(doc); err != nil {
			t.Fatal(err)
		}
		_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := c.Append(canon, time.Now().Add(time.Duration(i)*time.Second))
		recs = append(recs, rec)
	}
	if err := store.InsertRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	timeline := func(args ...string) (string, string, int) {
		return run(t, append([]string{"timeline", "--clickhouse", chtest.Addr, "--database", store.Database()}, args...)...)
	}

	out, _, code := timeline("--resource", "skill:api-conventions", "--at", "2026-01-19")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 8 {
		t.Fatalf("exit %d, %d lines:\n%s", code, len(lines), out)
	}
	for i, want := range []string{
		`^2026-01-15T09:23:00Z\s+skill.updated\s+1.4.0 -> 1.5.0\s+user:sarah@acme.example \(sarah@acme.example\)\s+approved lead@acme.example\s+success\s+Added rate limiting instructions$`,
		`^2026-01-15T09:45:00Z\s+skill.updated\s+1.5.0 -> 1.6.0\s+user:sarah@acme.example .*\s+-\s+success\s+Relaxed input validation$`,
		`^2026-01-18T11:00:00Z\s+skill.updated\s+1.6.0 -> 6.6.6\s+user:contractor@vendor.example .*\s+denied\s*$`,
		`^2026-01-20T14:12:00Z\s+skill.updated\s+1.6.0 -> 1.7.0\s+user:mike@acme.example`,
		`^2026-02-12T16:40:11Z\s+skill.rolled_back\s+1.7.0 -> 1.6.0`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("line %d %q does not match %s", i+1, lines[i+1], want)
		}
	}
	if want := "in force at 2026-01-19T00:00:00Z: version 1.6.0, since 2026-01-15T09:45:00Z (skill.updated by user:sarah@acme.example, no approval recorded)"; lines[7] != want {
		t.Errorf("in force line:\n got %s\nwant %s", lines[7], want)
	}

	out, _, code = timeline("--resource", "skill:skl_9", "--at", "2026-03-01", "-o", "json")
	var doc struct {
		Changes []struct {
			ToVersion string `json:"to_version"`
		} `json:"changes"`
		InForce struct {
			ToVersion string `json:"to_version"`
			Action    string `json:"action"`
		} `json:"in_force"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || len(doc.Changes) != 5 || doc.InForce.ToVersion != "1.6.0" || doc.InForce.Action != "skill.rolled_back" {
		t.Fatalf("json by id after the rollback (exit %d, %v): %s", code, err, out)
	}

	if _, errOut, code := timeline("--resource", "skill:api-conventions", "--at", "2026-01-01"); code != 1 || !strings.Contains(errOut, "no version of skill:api-conventions had taken effect by 2026-01-01") {
		t.Fatalf("before the first change: exit %d %s", code, errOut)
	}
	if _, _, code := timeline("--resource", "skill:*"); code != 2 {
		t.Fatalf("glob resource: exit %d", code)
	}
	if _, _, code := timeline(); code != 2 {
		t.Fatalf("no --resource: exit %d", code)
	}

	// Through the query API the timeline is the same, byte for byte.
	api := apiOver(t, store)
	t.Setenv("TRAILKEEP_QUERY_TOKEN", apiToken)
	for _, args := range [][]string{
		{"--resource", "skill:api-conventions", "--at", "2026-01-19"},
		{"--resource", "skill:skl_9", "--at", "2026-03-01", "-o", "json"},
	} {
		direct, _, _ := timeline(args...)
		via, errOut, code := run(t, append([]string{"timeline", "--api", api}, args...)...)
		if code != 0 || via != direct {
			t.Fatalf("timeline %v through the API (exit %d, %s) differs from the store:\n%s\nvs\n%s", args, code, errOut, via, direct)
		}
	}
}
