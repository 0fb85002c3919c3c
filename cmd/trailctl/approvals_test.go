package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/fixtures/canonical"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// TestApprovals: over the shared Claude Code sessions (hooks only, no telemetry), the
// drifted call is changed_by_agent and the others ran without a recorded decision;
// table, JSON and CSV agree.
func TestApprovals(t *testing.T) {
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
	approvals := func(args ...string) (string, string, int) {
		return run(t, append([]string{"approvals", "--clickhouse", chtest.Addr, "--database", store.Database()}, args...)...)
	}
	out, errOut, code := approvals("-o", "json", "--tenant", "acme")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	verdicts := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var a clickhouse.Approval
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatal(err)
		}
		verdicts[a.ToolUseID] = a.Verdict
	}
	if verdicts["toolu_03Drf1tA2b3c4d"] != clickhouse.VerdictChangedByAgent || verdicts["toolu_01HbV8mX2kQd7s"] != clickhouse.VerdictNoDecision ||
		verdicts["toolu_02Den1Fp0rCe11"] != clickhouse.VerdictDenied {
		t.Fatalf("verdicts %v", verdicts)
	}
	out, _, code = approvals("-o", "csv", "--tenant", "acme")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != len(verdicts)+1 {
		t.Fatalf("csv: exit %d %v, %d rows for %d calls", code, err, len(rows), len(verdicts))
	}
	if out, _, code := approvals("--tenant", "acme", "tool_use:toolu_03Drf1tA2b3c4d"); code != 0 || !strings.Contains(out, "changed_by_agent") || strings.Count(out, "\n") != 2 {
		t.Fatalf("table, one call: exit %d\n%s", code, out)
	}
	if _, _, code := approvals("-o", "xml"); code != 2 {
		t.Fatalf("bad output: exit %d", code)
	}
}
