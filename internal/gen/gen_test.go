package gen

import (
	"testing"

	"github.com/google/uuid"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

func TestGeneratedEventsAreValidDeterministicAndChained(t *testing.T) {
	o := Options{Events: 2000, Tenants: 6, Partitions: 3}
	var first []chain.Record
	sizes, err := Generate(o, 128, func(rs []chain.Record) error { first = append(first, rs...); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2000 || sizes[0]+sizes[1]+sizes[2] != 2000 {
		t.Fatalf("%d records, sizes %v", len(first), sizes)
	}
	actions := map[string]int{}
	for i, r := range first {
		ev, err := event.CheckCanonical(r.Event, event.DefaultLimits)
		if err != nil {
			t.Fatalf("record %d is not a valid canonical event: %v\n%s", i, err, r.Event)
		}
		if u, err := uuid.Parse(ev.ID); err != nil || u.Version() != 7 {
			t.Fatalf("id %s is not a UUIDv7", ev.ID)
		}
		if sec, _ := uuid.MustParse(ev.ID).Time().UnixTime(); sec != ev.ReceivedAt.Unix() {
			t.Fatalf("UUIDv7 time %d differs from received_at %v", sec, ev.ReceivedAt)
		}
		actions[ev.Action]++
	}
	if actions["tool_call.executed"] < 600 || actions["team.member_added"] == 0 {
		t.Fatalf("action mix %v", actions)
	}
	var again []chain.Record
	Generate(o, 1000, func(rs []chain.Record) error { again = append(again, rs...); return nil })
	for i := range first {
		if first[i].LeafHash != again[i].LeafHash {
			t.Fatalf("record %d differs between runs", i)
		}
	}
	byPart := map[int32][]chain.Record{}
	for _, r := range first {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	for p, rs := range byPart {
		if _, err := chain.Verify("x", p, nil, rs, nil); err != nil {
			t.Fatalf("partition %d does not verify: %v", p, err)
		}
	}
}
