// Package versions turns a resource's audit events into its version history and
// answers the incident responder's question: which version of this rule or skill
// was in force at time T, who put it there, and was that change approved?
//
// A change is an event that names a version in its change object (skill.created,
// skill.updated, skill.rolled_back, rule.updated, ...). Changes are ordered by
// occurred_at, then by chain position, so two changes in the same instant keep the
// order in which trailkeep recorded them.
package versions

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Entry is one stored event with its chain position.
type Entry struct {
	Event     event.Event
	Partition int32
	Seq       uint64
}

// Change is one version change of a resource.
type Change struct {
	At          time.Time `json:"occurred_at"`
	Action      string    `json:"action"`
	FromVersion string    `json:"from_version,omitempty"`
	ToVersion   string    `json:"to_version,omitempty"`
	Actor       string    `json:"actor"` // type:id
	ActorEmail  string    `json:"actor_email,omitempty"`
	// Approval is the recorded decision on the change, if any: DecidedBy approved
	// (or denied) it. Empty means the event carries no approval.
	Decision  string `json:"decision,omitempty"`
	DecidedBy string `json:"decided_by,omitempty"`
	Summary   string `json:"diff_summary,omitempty"`
	Result    string `json:"result,omitempty"`
	EventID   string `json:"event_id"`
	Partition int32  `json:"partition"`
	Seq       uint64 `json:"seq"`
}

// History returns the version changes among entries, oldest first. Entries without
// a from or to version are not changes and are left out.
func History(entries []Entry) []Change {
	var out []Change
	for _, e := range entries {
		ev := e.Event
		if ev.Change == nil || (ev.Change.FromVersion == "" && ev.Change.ToVersion == "") {
			continue
		}
		c := Change{At: ev.OccurredAt.Time.UTC(), Action: ev.Action, FromVersion: ev.Change.FromVersion, ToVersion: ev.Change.ToVersion,
			Actor: ev.Actor.Type + ":" + ev.Actor.ID, ActorEmail: ev.Actor.Email, Summary: ev.Change.DiffSummary,
			EventID: ev.ID, Partition: e.Partition, Seq: e.Seq}
		if ev.Approval != nil {
			c.Decision, c.DecidedBy = ev.Approval.Decision, ev.Approval.DecidedBy
		}
		if ev.Result != nil {
			c.Result = ev.Result.Status
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b Change) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Seq, b.Seq))
	})
	return out
}

// InForce returns the change that set the version in force at t: the last change at
// or before t that took effect (a failed or denied change did not). ok is false when
// no change took effect by t.
func InForce(history []Change, t time.Time) (c Change, ok bool) {
	for _, h := range history {
		if h.At.After(t) {
			break
		}
		if h.ToVersion != "" && (h.Result == "" || h.Result == event.StatusSuccess) {
			c, ok = h, true
		}
	}
	return c, ok
}

// MaxEvents bounds the events Read collects for one resource: a timeline is read
// whole, and a resource with more events than this needs a narrower scope.
const MaxEvents = 100_000

// Page returns the next page of a search; more is false after the last.
type Page func() (hits []clickhouse.Hit, more bool, err error)

// TooManyError: the resource has more than MaxEvents events in the scope read.
type TooManyError struct{ Resource string }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("%s has more than %d events; narrow the tenants", e.Resource, MaxEvents)
}

// Read decodes every event page returns, with its chain position, up to MaxEvents.
// trailctl timeline (on the store or the query API) and GET /v1/timeline both read
// through it.
func Read(page Page, resource string) ([]Entry, error) {
	var entries []Entry
	for {
		hits, more, err := page()
		if err != nil {
			return nil, err
		}
		for _, h := range hits {
			var ev event.Event
			if err := json.Unmarshal(h.Event, &ev); err != nil {
				return nil, fmt.Errorf("stored event %d/%d: %w", h.Partition, h.Seq, err)
			}
			entries = append(entries, Entry{Event: ev, Partition: h.Partition, Seq: h.Seq})
		}
		if !more {
			return entries, nil
		}
		if len(entries) >= MaxEvents {
			return nil, &TooManyError{Resource: resource}
		}
	}
}

// Query is the filter that finds a resource's events (TYPE:ID or TYPE:NAME, no
// globs), or an error saying what is wrong with resource.
func Query(resource string) (string, error) {
	typ, id, ok := strings.Cut(resource, ":")
	if !ok || typ == "" || id == "" || strings.ContainsAny(resource, "*?") {
		return "", fmt.Errorf("resource must be TYPE:ID without globs, e.g. skill:api-conventions")
	}
	return `resource:"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(resource) + `"`, nil
}
