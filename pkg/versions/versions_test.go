package versions

import (
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/pkg/event"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func entry(seq uint64, when, action, from, to, who, result string) Entry {
	ev := event.Event{ID: "e" + when, Action: action, OccurredAt: event.Time{Time: at(when)},
		Actor: event.Actor{Type: "user", ID: who}, Result: &event.Result{Status: result}}
	if from != "" || to != "" {
		ev.Change = &event.Change{FromVersion: from, ToVersion: to}
	}
	return Entry{Event: ev, Seq: seq}
}

// The seed's incident-response timeline, recorded out of order, with a failed
// update, an unrelated event and a rollback.
func TestHistoryAndInForce(t *testing.T) {
	entries := []Entry{
		entry(4, "2026-01-20T14:12:00Z", "skill.updated", "1.6.0", "1.7.0", "mike", "success"),
		entry(1, "2026-01-15T09:23:00Z", "skill.updated", "1.4.0", "1.5.0", "sarah", "success"),
		entry(2, "2026-01-15T09:45:00Z", "skill.updated", "1.5.0", "1.6.0", "sarah", "success"),
		entry(3, "2026-01-16T10:00:00Z", "skill.updated", "1.6.0", "9.9.9", "mallory", "denied"),
		entry(5, "2026-01-18T00:00:00Z", "skill.viewed", "", "", "tom", "success"),
		entry(6, "2026-02-12T16:40:11Z", "skill.rolled_back", "1.7.0", "1.6.0", "sarah", "success"),
	}
	h := History(entries)
	var seqs []uint64
	for _, c := range h {
		seqs = append(seqs, c.Seq)
	}
	if len(h) != 5 || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 || seqs[3] != 4 || seqs[4] != 6 {
		t.Fatalf("history order %v, want [1 2 3 4 6]", seqs)
	}
	for _, c := range []struct {
		when, version string
		ok            bool
	}{
		{"2026-01-01T00:00:00Z", "", false},
		{"2026-01-15T09:23:00Z", "1.5.0", true}, // the change's own instant counts
		{"2026-01-15T12:00:00Z", "1.6.0", true},
		{"2026-01-17T00:00:00Z", "1.6.0", true}, // the denied 9.9.9 never took effect
		{"2026-02-01T00:00:00Z", "1.7.0", true},
		{"2026-03-01T00:00:00Z", "1.6.0", true}, // rolled back
	} {
		got, ok := InForce(h, at(c.when))
		if ok != c.ok || got.ToVersion != c.version {
			t.Errorf("in force at %s: %q %v, want %q %v", c.when, got.ToVersion, ok, c.version, c.ok)
		}
	}
}
