package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// TestSearchAgainstClickHouse runs trailctl search on the real server: table, json
// and csv output, paging through the printed cursor, and the exit codes.
func TestSearchAgainstClickHouse(t *testing.T) {
	store := chtest.Store(t)
	c := chain.New(0)
	base := time.Now().UTC().Add(-time.Hour)
	var recs []chain.Record
	for i, a := range []struct{ actor, action, resource string }{
		{"sarah@acme.example", "skill.updated", "api-conventions"}, {"tom@acme.example", "skill.created", "security-scan"},
		{"sarah@acme.example", "team.role_changed", "acme-platform"}, {"=cmd|' /C calc'!A0", "skill.updated", "api-conventions"},
	} {
		doc := map[string]any{"action": a.action, "actor": map[string]any{"type": "user", "id": a.actor},
			"resource": map[string]any{"type": strings.Split(a.action, ".")[0], "id": a.resource}, "result": map[string]any{"status": "success"}}
		if err := (event.Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: base.Add(time.Duration(i) * time.Minute)}).Apply(doc); err != nil {
			t.Fatal(err)
		}
		_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := c.Append(canon, base.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if err := store.InsertRecords(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	at := []string{"--clickhouse", chtest.Addr, "--database", store.Database()}
	search := func(args ...string) (string, string, int) {
		return run(t, append(append([]string{"search"}, at...), args...)...)
	}

	out, _, code := search("event:skill.* actor:user:sarah@acme.example")
	if code != 0 || !regexp.MustCompile(`(?m)^\S+Z\s+acme\s+user:sarah@acme.example\s+skill.updated\s+skill:api-conventions\s+success\s+0/0$`).MatchString(out) || strings.Count(out, "\n") != 2 {
		t.Fatalf("table output (exit %d):\n%s", code, out)
	}

	out, _, code = search("resource:skill:api-conventions", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("json output (exit %d):\n%s", code, out)
	}
	var first struct {
		Partition int32           `json:"partition"`
		Seq       uint64          `json:"seq"`
		LeafHash  string          `json:"leaf_hash"`
		Event     json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Seq != 3 || first.LeafHash != recs[3].LeafHash.String() || string(first.Event) != string(recs[3].Event) {
		t.Fatalf("json output is not the stored record verbatim, newest first: %s", lines[0])
	}

	out, _, code = search("actor:*cmd*", "-o", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 2 || rows[1][3] != "'=cmd|' /C calc'!A0" {
		t.Fatalf("csv output must neutralise a formula in a cell (exit %d, %v):\n%s", code, err, out)
	}

	// Paging: two pages of two through the printed cursor, then nothing more.
	var seen []string
	args := []string{"tenant:acme", "-o", "csv", "--limit", "2"}
	for page := 0; page < 3; page++ {
		out, errOut, code := search(args...)
		if code != 0 {
			t.Fatalf("page %d: exit %d %s", page, code, errOut)
		}
		rows, _ := csv.NewReader(strings.NewReader(out)).ReadAll()
		for _, r := range rows[1:] {
			seen = append(seen, r[9])
		}
		m := regexp.MustCompile(`--cursor (\S+)`).FindStringSubmatch(errOut)
		if m == nil {
			break
		}
		args = []string{"tenant:acme", "-o", "csv", "--limit", "2", "--cursor", m[1]}
	}
	if fmt.Sprint(seen) != "[3 2 1 0]" {
		t.Fatalf("pages gave seq %v, want [3 2 1 0]", seen)
	}

	if _, errOut, code := search("event:skill.* after:yesterday"); code != 2 || !strings.Contains(errOut, `column 15 ("after:yesterday")`) {
		t.Fatalf("bad query: exit %d, %s", code, errOut)
	}
	if _, errOut, code := search("actor:nobody", "--fail-empty"); code != 1 || !strings.Contains(errOut, "no event matches") {
		t.Fatalf("--fail-empty: exit %d, %s", code, errOut)
	}
	if _, _, code := search("actor:nobody"); code != 0 {
		t.Fatalf("no match without --fail-empty: exit %d", code)
	}
	if _, errOut, code := search("x", "--cursor", "bogus"); code != 2 || !strings.Contains(errOut, "cursor") {
		t.Fatalf("bad cursor: exit %d, %s", code, errOut)
	}
}
