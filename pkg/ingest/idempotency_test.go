package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trailkeep/trailkeep/pkg/event"
)

// hook builds a minimal PreToolUse payload.
func hook(session, toolUseID, command string) []byte {
	b, _ := json.Marshal(map[string]any{"session_id": session, "hook_event_name": "PreToolUse", "tool_name": "Bash",
		"tool_input": map[string]any{"command": command}, "tool_use_id": toolUseID, "cwd": "/w"})
	return b
}

func cloudEvent(source, id, reason string) []byte {
	b, _ := json.Marshal(map[string]any{"specversion": "1.0", "type": "skill.updated", "source": source, "id": id,
		"subject": "skl_1", "data": map[string]any{"actor": map[string]any{"type": "user", "id": "u1"}, "reason": reason}})
	return b
}

func canonicalWithID(id, resource string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"action":"skill.updated","actor":{"type":"user","id":"u1"},"resource":{"type":"skill","id":%q}}`, id, resource))
}

type sent struct {
	path, token, ctype string
	body               []byte
}

func (x sent) post(t *testing.T, s *Server) resp {
	t.Helper()
	return post(t, s, x.path, x.token, x.ctype, x.body)
}

// TestDistinctEventsAreNeverTakenForDuplicates sends, on one server, pairs of events
// that a separator-joined or truncated key would have confused; each pair must give
// two stored events.
func TestDistinctEventsAreNeverTakenForDuplicates(t *testing.T) {
	ce := func(src, id string) sent {
		return sent{"/v1/cloudevents", tokRegistry, "application/cloudevents+json", cloudEvent(src, id, "r")}
	}
	ev := func(id string) sent {
		return sent{"/v1/events", tokRegistry, "application/json", canonicalWithID(id, "s1")}
	}
	hk := func(session, tu string) sent {
		return sent{"/v1/hooks/claude-code", tokSarah, "application/json", hook(session, tu, "make")}
	}
	long := strings.Repeat("s", 250)
	for _, tc := range []struct {
		name string
		a, b sent
	}{
		{"cloudevents separator in source vs id", ce("urn:coll#x", "y"), ce("urn:coll", "x#y")},
		{"canonical id equal to a cloudevents key", ce("urn:coll#x", "y"), ev("urn:coll#x#y")},
		{"canonical id equal to the new key encoding", ce("urn:coll", "x"), ev(`["cloudevents","urn:coll","x"]`)},
		{"hook separator in session vs tool_use_id", hk("s:PreToolUse", "t1"), hk("s", "PreToolUse:t1")},
		{"hook keys equal after truncation", hk(long, "t1"), hk(long, "t2")},
		{"cloudevents keys equal after truncation", ce("urn:"+strings.Repeat("x", 260), "1"), ce("urn:"+strings.Repeat("x", 260), "2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPublisher{failAt: -1}
			s := newTestServer(t, pub)
			for _, x := range []sent{tc.a, tc.b} {
				if r := x.post(t, s); r.code != 200 {
					t.Fatalf("%s: %d %s", x.path, r.code, r.body)
				}
			}
			evs := pub.events(t)
			if len(evs) != 2 {
				t.Fatalf("%d events stored, want 2 (one was taken for a duplicate)", len(evs))
			}
			for _, ev := range evs {
				if ev.IdempotencyConflict != "" {
					t.Errorf("event %s marked as a conflict with %s", ev.ID, ev.IdempotencyConflict)
				}
			}
		})
	}
}

// TestSameKeyDifferentContentIsStoredAndMarked: a re-sent key with other content is
// a conflict — stored, marked with the first id, counted — and an identical re-send
// is a duplicate answered with the first id.
func TestSameKeyDifferentContentIsStoredAndMarked(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, same sent
		other       sent
	}{
		{"hook tool_input changed",
			sent{"/v1/hooks/claude-code", tokSarah, "application/json", hook("s", "t1", "deploy --env staging")},
			sent{"/v1/hooks/claude-code", tokSarah, "application/json", hook("s", "t1", "deploy --env staging")},
			sent{"/v1/hooks/claude-code", tokSarah, "application/json", hook("s", "t1", "deploy --env production")}},
		{"cloudevent data changed",
			sent{"/v1/cloudevents", tokRegistry, "application/cloudevents+json", cloudEvent("urn:reg", "e1", "first")},
			sent{"/v1/cloudevents", tokRegistry, "application/cloudevents+json", cloudEvent("urn:reg", "e1", "first")},
			sent{"/v1/cloudevents", tokRegistry, "application/cloudevents+json", cloudEvent("urn:reg", "e1", "second")}},
		{"canonical event resource changed",
			sent{"/v1/events", tokRegistry, "application/json", canonicalWithID("k1", "s1")},
			sent{"/v1/events", tokRegistry, "application/json", canonicalWithID("k1", "s1")},
			sent{"/v1/events", tokRegistry, "application/json", canonicalWithID("k1", "s2")}},
		{"only the secret differs",
			sent{"/v1/hooks/claude-code", tokSarah, "application/json", hook("s", "t9", "curl -H 'Authorization: Bearer aaaaaaaaaaaaaaaaaaaaaaaaaaaa1' x")},
			sent{"/v1/hooks/claude-code", tokSarah, "application/json", hook("s", "t9", "curl -H 'Authorization: Bearer aaaaaaaaaaaaaaaaaaaaaaaaaaaa1' x")},
			sent{"/v1/hooks/claude-code", tokSarah, "application/json", hook("s", "t9", "curl -H 'Authorization: Bearer bbbbbbbbbbbbbbbbbbbbbbbbbbbb2' x")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPublisher{failAt: -1}
			s := newTestServer(t, pub)
			for _, x := range []sent{tc.first, tc.same, tc.other} {
				if r := x.post(t, s); r.code != 200 {
					t.Fatalf("%d %s", r.code, r.body)
				}
			}
			evs := pub.events(t)
			if len(evs) != 2 {
				t.Fatalf("%d events stored, want 2 (first and the conflicting one)", len(evs))
			}
			if evs[0].IdempotencyConflict != "" || evs[1].IdempotencyConflict != evs[0].ID {
				t.Errorf("idempotency_conflict %q / %q, want \"\" / %q", evs[0].IdempotencyConflict, evs[1].IdempotencyConflict, evs[0].ID)
			}
			endpoint := strings.TrimPrefix(strings.Split(strings.TrimPrefix(tc.first.path, "/v1/"), "/")[0], "/")
			if got := testutil.ToFloat64(s.m.conflicts.WithLabelValues(endpoint)); got != 1 {
				t.Errorf("conflict metric %v, want 1", got)
			}
			if got := testutil.ToFloat64(s.m.duplicates.WithLabelValues(endpoint)); got != 1 {
				t.Errorf("duplicate metric %v, want 1", got)
			}
		})
	}
}

// TestBatchConflictsAndDuplicates: within one request, an identical repeat is a
// duplicate of the first item and a changed repeat is stored and marked.
func TestBatchConflictsAndDuplicates(t *testing.T) {
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	body := "[" + string(canonicalWithID("k", "s1")) + "," + string(canonicalWithID("k", "s1")) + "," + string(canonicalWithID("k", "s2")) + "]"
	r := post(t, s, "/v1/events", tokRegistry, "application/json", []byte(body))
	b := r.batch(t)
	if r.code != 200 || b.Accepted != 2 || b.Duplicates != 1 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	first := b.Results[0].ID
	if b.Results[1].Status != statusDuplicate || b.Results[1].ID != first {
		t.Errorf("repeat: %+v, want duplicate of %s", b.Results[1], first)
	}
	if b.Results[2].Status != statusAccepted || b.Results[2].Conflict != first {
		t.Errorf("changed repeat: %+v, want accepted with idempotency_conflict %s", b.Results[2], first)
	}
	evs := pub.events(t)
	if len(evs) != 2 || evs[1].IdempotencyConflict != first {
		t.Fatalf("stored %d events; second marked %q", len(evs), evs[len(evs)-1].IdempotencyConflict)
	}
}

// TestServerOwnedFieldsRefused iterates the schema's x-server-owned list on both
// endpoints where a sender writes canonical fields.
func TestServerOwnedFieldsRefused(t *testing.T) {
	for _, ptr := range event.ServerOwned() {
		for _, path := range []string{"/v1/events", "/v1/cloudevents"} {
			t.Run(path+ptr, func(t *testing.T) {
				pub := &memPublisher{failAt: -1}
				s := newTestServer(t, pub)
				doc := map[string]any{"action": "skill.updated", "actor": map[string]any{"type": "user", "id": "u1"},
					"resource": map[string]any{"type": "skill", "id": "s1"}}
				parts := strings.Split(ptr[1:], "/")
				cur := doc
				for _, p := range parts[:len(parts)-1] {
					next, ok := cur[p].(map[string]any)
					if !ok {
						next = map[string]any{}
						cur[p] = next
					}
					cur = next
				}
				cur[parts[len(parts)-1]] = "0000000000000000000000000000000000000000000000000000000000000000"
				body, ctype := []byte(nil), "application/json"
				if path == "/v1/events" {
					body, _ = json.Marshal(doc)
				} else {
					delete(doc, "action")
					body, _ = json.Marshal(map[string]any{"specversion": "1.0", "type": "skill.updated", "source": "urn:r", "id": "1", "data": doc})
					ctype = "application/cloudevents+json"
				}
				r := post(t, s, path, tokRegistry, ctype, body)
				if r.code != 400 {
					t.Fatalf("%d %s, want 400", r.code, r.body)
				}
				// Named as the sender wrote it: inside data for a CloudEvent.
				want := ptr
				if path == "/v1/cloudevents" {
					want = "/data" + ptr
				}
				found := false
				for _, fe := range r.errorBody(t).Errors {
					found = found || (fe.Field == want && fe.Rule == event.RuleServerField)
				}
				if !found {
					t.Errorf("error does not name %s with rule %s: %s", want, event.RuleServerField, r.body)
				}
				if n := len(pub.events(t)); n != 0 {
					t.Errorf("%d events stored", n)
				}
			})
		}
	}
}
