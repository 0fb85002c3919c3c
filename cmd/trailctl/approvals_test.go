package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/fixtures/canonical"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
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

	// Through the query API the report is the same, for every output format: one
	// read path behind two transports.
	api := apiOver(t, store)
	t.Setenv("TRAILKEEP_QUERY_TOKEN", apiToken)
	for _, o := range []string{"json", "csv", "table"} {
		direct, _, _ := approvals("-o", o, "--tenant", "acme")
		via, errOut, code := run(t, "approvals", "--api", api, "-o", o, "--tenant", "acme")
		if code != 0 || via != direct {
			t.Fatalf("-o %s through the API (exit %d, %s) differs from the store:\n%s\nvs\n%s", o, code, errOut, via, direct)
		}
	}
	const stmt = "SELECT action, count() AS n, max(seq) AS last FROM audit_events GROUP BY action ORDER BY action"
	direct, _, _ := run(t, "sql", "--clickhouse", chtest.Addr, "--database", store.Database(), "-o", "json", stmt)
	via, errOut, code := run(t, "sql", "--api", api, "-o", "json", stmt)
	if code != 0 || via != direct || !strings.Contains(direct, `"n":`) {
		t.Fatalf("sql through the API (exit %d, %s) differs from the store:\n%s\nvs\n%s", code, errOut, via, direct)
	}
}

const apiToken = "tk_trailctl_api_test_000000000000000001"

// apiOver serves the query API over store with an admin token (apiToken); its
// access events are accepted and dropped.
func apiOver(t *testing.T, store *clickhouse.Store) string {
	t.Helper()
	return apiWithTokens(t, store, func(h http.Handler) http.Handler { return h }, map[string]string{apiToken: `"name":"admin","role":"admin","tenants":["*"]`})
}

type dropAccess struct{}

func (dropAccess) Publish(_ context.Context, msgs []kafka.Message) []error {
	return make([]error, len(msgs))
}
