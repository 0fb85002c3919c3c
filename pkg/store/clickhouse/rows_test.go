package clickhouse

import (
	"cmp"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/trailkeep/trailkeep/internal/fixtures"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/source/claudecode"
)

// fixtureEvents returns the canonical bytes of every shared Claude Code and registry
// fixture, as ingest would store them.
func fixtureEvents(t testing.TB) [][]byte {
	t.Helper()
	red, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	add := func(doc map[string]any, tool string) {
		tenant, _ := doc["tenant"].(string)
		st := event.Stamp{Tenant: cmp.Or(tenant, "acme"), Tool: tool, ReceivedAt: time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC), IPKey: []byte("k")}
		if err := st.Apply(doc); err != nil {
			t.Fatal(err)
		}
		_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, canon)
	}
	for _, f := range []string{"claude-code/session-basic.jsonl", "claude-code/session-mcp-subagent.jsonl", "claude-code/param-drift.jsonl"} {
		for _, line := range fixtures.Lines(t, f) {
			p, err := event.Decode(line, claudecode.Limits)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := claudecode.Map(p, claudecode.Options{Redactor: red, Actor: map[string]any{"type": "user", "id": "sarah@acme.example", "email": "sarah@acme.example"}})
			if err != nil {
				t.Fatal(err)
			}
			add(doc, "claude_code")
		}
	}
	for _, line := range fixtures.Lines(t, "registry/canonical-events.jsonl") {
		doc, err := event.Decode(line, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		add(doc, "registry")
	}
	return out
}

// TestRowsFromFixtures: every shared fixture becomes a row whose columns are the
// event's own values, including the approval digests that drift queries join on.
func TestRowsFromFixtures(t *testing.T) {
	c := chain.New(0)
	approvals := 0
	for _, ev := range fixtureEvents(t) {
		rec, err := c.Append(ev, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var x eventRow
		if err := x.fill(rec); err != nil {
			t.Fatal(err)
		}
		var doc event.Event
		if err := jsonv2.Unmarshal(ev, &doc); err != nil {
			t.Fatal(err)
		}
		if x.EventID != doc.ID || x.Tenant != doc.Tenant || x.Action != doc.Action || x.ActorID != doc.Actor.ID || x.Event != string(ev) {
			t.Errorf("row %+v does not carry the event's values %+v", x, doc)
		}
		if x.ApprovedDigest != "" {
			approvals++
		}
	}
	if approvals == 0 {
		t.Fatal("no fixture event carries an approval digest; the approval columns went untested")
	}
}

func TestRowFromRecord(t *testing.T) {
	c := chain.New(2)
	ev := fixtureEvents(t)[3]
	rec, err := c.Append(ev, time.Date(2026, 2, 1, 10, 0, 1, 5, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var x eventRow
	if err := x.fill(rec); err != nil {
		t.Fatal(err)
	}
	if x.Partition != 2 || x.Seq != 0 || x.ChainedAtNS != rec.ChainedAt.UnixNano() || x.Event != string(ev) ||
		x.PrevHash != rec.PrevHash.String() || x.LeafHash != rec.LeafHash.String() || x.OccurredAt.IsZero() || x.ReceivedAt.IsZero() {
		t.Fatalf("row %+v does not match record %+v", x, rec)
	}
	rec.Event = []byte(`{"id":"a","tenant":"t","occurred_at":"yesterday"}`)
	if err := x.fill(rec); err == nil || !strings.Contains(err.Error(), "2/0") {
		t.Fatalf("a non-canonical event must be refused with its position, got %v", err)
	}
}

func BenchmarkRowFill(b *testing.B) {
	c := chain.New(0)
	var recs []chain.Record
	for _, ev := range fixtureEvents(b) {
		rec, _ := c.Append(ev, time.Now())
		recs = append(recs, rec)
	}
	b.ReportAllocs()
	var x eventRow
	for i := 0; b.Loop(); i++ {
		if err := x.fill(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
}
