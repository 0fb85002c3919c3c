package clickhouse

import (
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/trailkeep/trailkeep/internal/fixtures/canonical"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// TestRowsFromFixtures: every shared fixture becomes a row whose columns are the
// event's own values, including the approval digests that drift queries join on.
func TestRowsFromFixtures(t *testing.T) {
	c := chain.New(0)
	approvals := 0
	for _, ev := range canonical.Events(t) {
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
	ev := canonical.Events(t)[3]
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
	for _, ev := range canonical.Events(b) {
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
