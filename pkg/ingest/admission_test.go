package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCharsetOtherThanUTF8Is415(t *testing.T) {
	for _, tc := range []struct {
		ctype string
		want  int
	}{
		{"application/json; charset=iso-8859-1", 415},
		{"application/json; charset=UTF-16", 415},
		{"application/json; charset=windows-1252", 415},
		{"application/json; charset=utf-8", 200},
		{"application/json; charset=UTF-8", 200},
		{"application/json", 200},
	} {
		t.Run(tc.ctype, func(t *testing.T) {
			pub := &memPublisher{failAt: -1}
			s := newTestServer(t, pub)
			r := post(t, s, "/v1/events", tokRegistry, tc.ctype, []byte(goodEvent))
			if r.code != tc.want {
				t.Fatalf("%d %s, want %d", r.code, r.body, tc.want)
			}
			if tc.want == 415 {
				if b := r.errorBody(t); len(b.Errors) == 0 || b.Errors[0].Rule != "charset" || len(pub.events(t)) != 0 {
					t.Errorf("body %s; %d stored", r.body, len(pub.events(t)))
				}
			}
		})
	}
}

// TestInFlightBudget: a request whose declared body does not fit the remaining
// in-flight budget is answered 503 at_capacity before its body is read, and the budget
// is returned when requests finish.
func TestInFlightBudget(t *testing.T) {
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	// Hold most of the budget, as requests being read would.
	held := s.o.MaxInFlightBytes - 100
	if !s.inFlight.TryAcquire(held) {
		t.Fatal("could not take the budget")
	}
	big := []byte("[" + strings.Repeat(goodEvent+",", 10) + goodEvent + "]")
	r := post(t, s, "/v1/events", tokRegistry, "application/json", big)
	if r.code != 503 || r.header.Get("Retry-After") == "" || r.errorBody(t).Error != "at_capacity" {
		t.Fatalf("over budget: %d %s (Retry-After %q)", r.code, r.body, r.header.Get("Retry-After"))
	}
	// Undeclared length reserves MaxBodyBytes, which does not fit either.
	req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader([]byte(goodEvent)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+tokRegistry)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 503 {
		t.Errorf("chunked over budget: %d", w.Code)
	}
	if len(pub.events(t)) != 0 {
		t.Fatal("an over-budget request was stored")
	}
	s.inFlight.Release(held)
	for range 3 { // the budget comes back after each request
		if r := post(t, s, "/v1/events", tokRegistry, "application/json", big); r.code != 200 {
			t.Fatalf("after release: %d %s", r.code, r.body)
		}
	}
	if !s.inFlight.TryAcquire(s.o.MaxInFlightBytes) {
		t.Error("budget not fully returned after the requests")
	}
}

func TestDeclaredLengthOverLimitIs413(t *testing.T) {
	s := newTestServer(t, &memPublisher{failAt: -1})
	req := httptest.NewRequest("POST", "/v1/events", strings.NewReader(goodEvent))
	req.ContentLength = s.o.MaxBodyBytes + 1
	req.Header.Set("Authorization", "Bearer "+tokRegistry)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// TestErrorsNameTheSendersField: a bad value in a hook payload or a CloudEvent is
// reported under the field the sender wrote, not the canonical field it maps to.
func TestErrorsNameTheSendersField(t *testing.T) {
	for _, tc := range []struct {
		name, path, token, ctype, body, want string
	}{
		{"hook session_id", "/v1/hooks/claude-code", tokSarah, "application/json",
			`{"session_id":"s\u0001x","hook_event_name":"Stop"}`, "/session_id"},
		{"hook tool_use_id", "/v1/hooks/claude-code", tokSarah, "application/json",
			`{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t\u0007"}`, "/tool_use_id"},
		{"cloudevent data actor", "/v1/cloudevents", tokRegistry, "application/cloudevents+json",
			`{"specversion":"1.0","type":"skill.updated","source":"urn:r","id":"1","data":{"actor":{"type":"robot","id":"u"}}}`, "/data/actor/type"},
		{"cloudevent time", "/v1/cloudevents", tokRegistry, "application/cloudevents+json",
			`{"specversion":"1.0","type":"skill.updated","source":"urn:r","id":"1","time":"yesterday","data":{"actor":{"type":"user","id":"u"}}}`, "/time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, &memPublisher{failAt: -1})
			r := post(t, s, tc.path, tc.token, tc.ctype, []byte(tc.body))
			if r.code != 400 {
				t.Fatalf("%d %s", r.code, r.body)
			}
			found := false
			for _, fe := range r.errorBody(t).Errors {
				found = found || fe.Field == tc.want
			}
			if !found {
				t.Errorf("error does not name %s: %s", tc.want, r.body)
			}
		})
	}
}

// TestEmptyCloudEventsBatch: [] is a valid CloudEvents batch (JSON format §4): 200,
// nothing written. /v1/events still refuses an empty request.
func TestEmptyCloudEventsBatch(t *testing.T) {
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	r := post(t, s, "/v1/cloudevents", tokRegistry, "application/cloudevents-batch+json", []byte(" [ ] "))
	if b := r.batch(t); r.code != 200 || b.Accepted != 0 || len(b.Results) != 0 {
		t.Fatalf("empty batch: %d %s", r.code, r.body)
	}
	if r := post(t, s, "/v1/events", tokRegistry, "application/json", []byte("[]")); r.code != 400 {
		t.Errorf("empty /v1/events array: %d", r.code)
	}
	if len(pub.events(t)) != 0 {
		t.Error("events written")
	}
}
