package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/fixtures"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/redact"
)

// memPublisher records what a real producer would have made durable, and can be
// told to fail, so handler behaviour is testable without a broker. The real-broker
// tests are in kafka_test.go.
type memPublisher struct {
	mu     sync.Mutex
	msgs   []kafka.Message
	fail   error
	down   bool
	failAt int // fail only the message with this index in a Publish call (-1: none)
}

func (p *memPublisher) Publish(_ context.Context, msgs []kafka.Message) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		if p.fail != nil && (p.failAt < 0 || p.failAt == i) {
			errs[i] = p.fail
			continue
		}
		p.msgs = append(p.msgs, m)
	}
	return errs
}
func (p *memPublisher) Ready() bool     { p.mu.Lock(); defer p.mu.Unlock(); return !p.down }
func (p *memPublisher) Buffered() int64 { return 0 }

func (p *memPublisher) events(t *testing.T) []*event.Event {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*event.Event
	for _, m := range p.msgs {
		ev, err := event.CheckCanonical(m.Value, event.DefaultLimits)
		if err != nil {
			t.Fatalf("published bytes are not a canonical event: %v\n%s", err, m.Value)
		}
		if string(m.Key) != ev.Tenant {
			t.Fatalf("key %q, tenant %q", m.Key, ev.Tenant)
		}
		out = append(out, ev)
	}
	return out
}

var sharedRedactor = sync.OnceValues(redact.New)

const (
	tokRegistry = "tk_registry_secret_for_tests_only_0001"
	tokSarah    = "tk_sarah_secret_for_tests_only_00000002"
	tokReadOnly = "tk_wrong_scope_secret_for_tests_only_03"
	tokLogs     = "tk_otel_logs_secret_for_tests_only_0004"
)

func testTokens(t testing.TB) *Tokens {
	t.Helper()
	cfg := map[string]any{"tokens": []map[string]any{
		{"name": "registry", "sha256": sha(tokRegistry), "tenant": "acme-platform", "source": "registry", "scopes": []string{ScopeEvents, ScopeCloudEvents}},
		{"name": "sarah-laptop", "sha256": sha(tokSarah), "tenant": "acme", "source": "claude_code", "scopes": []string{ScopeHooks},
			"actor": map[string]any{"type": "user", "id": "sarah@acme.example", "email": "sarah@acme.example"}},
		{"name": "cloudevents-only", "sha256": sha(tokReadOnly), "tenant": "acme", "source": "registry", "scopes": []string{ScopeCloudEvents}},
		{"name": "otel", "sha256": sha(tokLogs), "tenant": "acme", "source": "claude_code", "scopes": []string{ScopeLogs}},
	}}
	b, _ := json.Marshal(cfg)
	ts, err := ParseTokens(b)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func newTestServer(t testing.TB, pub Publisher) *Server {
	t.Helper()
	red, err := sharedRedactor()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Tokens: testTokens(t), Publisher: pub, Redactor: red, IPKey: []byte("0123456789abcdef0123456789abcdef"), MaxBodyBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type resp struct {
	code   int
	header http.Header
	body   []byte
}

func post(t testing.TB, h http.Handler, path, token, ctype string, body []byte) resp {
	t.Helper()
	r := httptest.NewRequest("POST", path, bytes.NewReader(body))
	r.RemoteAddr = "203.0.113.9:51000"
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return resp{w.Code, w.Header(), w.Body.Bytes()}
}

func (r resp) batch(t testing.TB) batchResponse {
	t.Helper()
	var b batchResponse
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("status %d body %q: %v", r.code, r.body, err)
	}
	return b
}

func (r resp) errorBody(t testing.TB) errorBody {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error == "" {
		t.Fatalf("status %d: body is not a JSON error: %q", r.code, r.body)
	}
	return b
}

const goodEvent = `{"action":"skill.updated","actor":{"type":"user","id":"u1"},"resource":{"type":"skill","id":"s1"},"occurred_at":"2026-02-01T10:00:00Z"}`

func TestAuth(t *testing.T) {
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	for _, c := range []struct {
		token string
		code  int
	}{{"", 401}, {"tk_nope", 401}, {tokSarah, 403}, {tokReadOnly, 403}, {tokRegistry, 200}} {
		r := post(t, s, "/v1/events", c.token, "application/json", []byte(goodEvent))
		if r.code != c.code {
			t.Errorf("token %q: %d %s, want %d", c.token, r.code, r.body, c.code)
		}
		if c.code != 200 {
			r.errorBody(t)
		}
	}
	if n := len(pub.events(t)); n != 1 {
		t.Errorf("%d events published, want 1", n)
	}
}

func TestEventsBatchFormats(t *testing.T) {
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	bad := `{"action":"Skill Updated","actor":{"type":"user","id":"u1"},"resource":{"type":"skill","id":"s1"}}`
	arr := "[" + goodEvent + "," + bad + "," + goodEvent + "]"
	r := post(t, s, "/v1/events", tokRegistry, "application/json", []byte(arr))
	if r.code != http.StatusMultiStatus {
		t.Fatalf("array: %d %s", r.code, r.body)
	}
	b := r.batch(t)
	if b.Accepted != 2 || b.Rejected != 1 || b.Results[1].Status != statusRejected || b.Results[1].Errors[0].Field != "/action" || b.Results[1].Errors[0].Rule != "pattern" {
		t.Errorf("array results %+v", b)
	}
	nd := goodEvent + "\n\n" + bad + "\r\n" + goodEvent + "\n"
	r = post(t, s, "/v1/events", tokRegistry, "application/x-ndjson", []byte(nd))
	if r.code != http.StatusMultiStatus || r.batch(t).Accepted != 2 {
		t.Fatalf("ndjson: %d %s", r.code, r.body)
	}
	evs := pub.events(t)
	if len(evs) != 4 {
		t.Fatalf("%d published", len(evs))
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		ids[ev.ID] = true
		if ev.Tenant != "acme-platform" || ev.Source.Tool != "registry" {
			t.Errorf("stamp: %+v", ev)
		}
	}
	if !ids[b.Results[0].ID] || !ids[b.Results[2].ID] {
		t.Errorf("response ids %v not among published %v", b.Results, ids)
	}
	r = post(t, s, "/v1/events", tokRegistry, "application/json", []byte("["+bad+"]"))
	if r.code != 400 || r.batch(t).Rejected != 1 {
		t.Errorf("all rejected: %d %s", r.code, r.body)
	}
}

func TestBadFixturesThroughAPI(t *testing.T) {
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	// Something accepted first, which no bad request may disturb.
	if r := post(t, s, "/v1/events", tokRegistry, "application/json", []byte(goodEvent)); r.code != 200 {
		t.Fatal(r.code, string(r.body))
	}
	before := pub.events(t)
	for _, b := range fixtures.BadInputs(t) {
		for _, ep := range []struct{ path, token string }{{"/v1/events", tokRegistry}, {"/v1/hooks/claude-code", tokSarah}, {"/v1/cloudevents", tokRegistry}} {
			r := post(t, s, ep.path, ep.token, "application/json", b.Body)
			if r.code < 400 || r.code > 499 {
				t.Errorf("%s via %s: status %d %s", b.Name, ep.path, r.code, r.body)
				continue
			}
			if bytes.Contains(r.body, []byte(`"results"`)) {
				// A JSON array on /v1/events is a batch: every item must be rejected
				// with its own reason.
				for _, it := range r.batch(t).Results {
					if it.Status != statusRejected || len(it.Errors) == 0 || it.Errors[0].Rule == "" {
						t.Errorf("%s via %s: item %+v", b.Name, ep.path, it)
					}
				}
				continue
			}
			eb := r.errorBody(t)
			if len(eb.Errors) == 0 || eb.Errors[0].Rule == "" {
				t.Errorf("%s via %s: error names no rule: %s", b.Name, ep.path, r.body)
			}
		}
	}
	after := pub.events(t)
	if len(after) != len(before) || after[0].ID != before[0].ID {
		t.Errorf("bad input changed what was accepted: %d -> %d", len(before), len(after))
	}
	// Specific expectations for the hook fixtures.
	for _, b := range fixtures.BadInputs(t) {
		want := map[string]string{
			"wrong-type-hook-event":   "/tool_name type",
			"missing-hook-event-name": "/hook_event_name required",
			"oversized":               " max_bytes",
			"deep-nesting":            "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a max_depth",
		}[b.Name]
		if want == "" {
			continue
		}
		eb := post(t, s, "/v1/hooks/claude-code", tokSarah, "application/json", b.Body).errorBody(t)
		got := eb.Errors[0].Field + " " + eb.Errors[0].Rule
		if !strings.HasPrefix(got, strings.SplitN(want, " ", 2)[0]) || !strings.HasSuffix(got, strings.SplitN(want, " ", 2)[1]) {
			t.Errorf("%s: got %q, want %q", b.Name, got, want)
		}
	}
}

func TestHooksAnswerEmpty(t *testing.T) {
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	lines := fixtures.Lines(t, "claude-code/session-basic.jsonl")
	for _, l := range lines {
		r := post(t, s, "/v1/hooks/claude-code", tokSarah, "application/json", l)
		if r.code != 200 || len(r.body) != 0 {
			t.Fatalf("hook: %d %q, want 200 with an empty body", r.code, r.body)
		}
	}
	evs := pub.events(t)
	if len(evs) != len(lines) {
		t.Fatalf("%d events for %d payloads", len(evs), len(lines))
	}
	for _, ev := range evs {
		if ev.Actor.ID != "sarah@acme.example" || ev.Actor.IPHMAC == "" || ev.Source.Tool != "claude_code" {
			t.Errorf("actor/source %+v %+v", ev.Actor, ev.Source)
		}
	}
	// The IP HMAC is per tenant: same address, other tenant, other digest.
	if got := event.HashIP(s.tenantIPKey("acme"), mustAddr("203.0.113.9")); got != evs[0].Actor.IPHMAC {
		t.Errorf("ip_hmac %s, want %s", evs[0].Actor.IPHMAC, got)
	}
	if event.HashIP(s.tenantIPKey("other"), mustAddr("203.0.113.9")) == evs[0].Actor.IPHMAC {
		t.Error("IP HMAC key is not per tenant")
	}
	// A retried hook (same session, event and tool_use_id) is not written twice.
	r := post(t, s, "/v1/hooks/claude-code", tokSarah, "application/json", lines[2])
	if r.code != 200 || len(pub.events(t)) != len(lines) {
		t.Errorf("retry wrote a duplicate: %d events", len(pub.events(t)))
	}
}

func TestCloudEvents(t *testing.T) {
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	raw := mustRead(t, "registry/cloudevents-batch.json")
	r := post(t, s, "/v1/cloudevents", tokRegistry, "application/cloudevents-batch+json", raw)
	if r.code != 200 || r.batch(t).Accepted != 2 {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}
	r = post(t, s, "/v1/cloudevents", tokRegistry, "application/cloudevents-batch+json", raw)
	if b := r.batch(t); r.code != 200 || b.Duplicates != 2 {
		t.Errorf("re-sent batch: %d %s", r.code, r.body)
	}
	r = post(t, s, "/v1/cloudevents", tokRegistry, "text/plain", raw)
	if r.code != 415 {
		t.Errorf("text/plain: %d", r.code)
	}
	req := httptest.NewRequest("POST", "/v1/cloudevents", strings.NewReader(`{"actor":{}}`))
	req.Header.Set("Authorization", "Bearer "+tokRegistry)
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Content-Type", "application/octet-stream")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != 415 || !strings.Contains(w.Body.String(), "binary mode") {
		t.Errorf("binary mode: %d %s", w.Code, w.Body)
	}
	if n := len(pub.events(t)); n != 2 {
		t.Errorf("%d events", n)
	}
}

func TestUnavailable(t *testing.T) {
	pub := &memPublisher{failAt: 1, fail: errors.New("NOT_ENOUGH_REPLICAS")}
	s := newTestServer(t, pub)
	r := post(t, s, "/v1/events", tokRegistry, "application/json", []byte("["+goodEvent+","+goodEvent+"]"))
	if r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("partial failure: %d %s", r.code, r.body)
	}
	b := r.batch(t)
	if b.Results[0].Status != statusAccepted || b.Results[1].Status != statusUnavailable || !strings.HasPrefix(b.Results[1].Error, "kafka_error:") {
		t.Errorf("results %+v", b.Results)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{{kafka.ErrBufferFull, "buffer_full:"}, {kgo.ErrRecordTimeout, "ack_timeout:"}, {context.Canceled, "cancelled:"}} {
		if got := publishError(tc.err); !strings.HasPrefix(got, tc.want) {
			t.Errorf("publishError(%v) = %q, want the cause %s first", tc.err, got, tc.want)
		}
	}
	pub.mu.Lock()
	pub.down = true
	pub.mu.Unlock()
	r = post(t, s, "/v1/hooks/claude-code", tokSarah, "application/json", fixtures.Lines(t, "claude-code/session-basic.jsonl")[0])
	if r.code != 503 || r.header.Get("Retry-After") == "" || r.errorBody(t).Error != "broker_unreachable" {
		t.Errorf("down: %d %s", r.code, r.body)
	}
	rr := httptest.NewRecorder()
	s.ServeHTTP(rr, httptest.NewRequest("GET", "/readyz", nil))
	if rr.Code != 503 {
		t.Errorf("readyz %d while down", rr.Code)
	}
}

func TestLimitsAndMetrics(t *testing.T) {
	pub := &memPublisher{failAt: -1}
	s := newTestServer(t, pub)
	r := post(t, s, "/v1/events", tokRegistry, "application/json", bytes.Repeat([]byte(" "), 2<<20))
	if r.code != 413 || r.errorBody(t).Errors[0].Rule != event.RuleMaxBytes {
		t.Errorf("oversized body: %d %s", r.code, r.body)
	}
	r = post(t, s, "/v1/events", tokRegistry, "application/xml", []byte(goodEvent))
	if r.code != 415 {
		t.Errorf("xml: %d", r.code)
	}
	many := "[" + strings.TrimSuffix(strings.Repeat(goodEvent+",", 1001), ",") + "]"
	r = post(t, s, "/v1/events", tokRegistry, "application/json", []byte(many))
	if r.code != 400 || r.errorBody(t).Errors[0].Rule != "maxItems" {
		t.Errorf("1001 items: %d %s", r.code, r.body)
	}
	post(t, s, "/v1/events", tokRegistry, "application/json", []byte(goodEvent))
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`trailkeep_ingest_events_accepted_total{endpoint="events"} 1`,
		`trailkeep_ingest_events_rejected_total{endpoint="events",reason="max_bytes"} 1`,
		`trailkeep_ingest_request_duration_seconds_bucket{code="200",endpoint="events"`,
		`trailkeep_ingest_producer_buffered_records 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestPromptOptInPerTenant(t *testing.T) {
	red, _ := sharedRedactor()
	pub := &memPublisher{failAt: -1}
	s, err := New(Options{Tokens: testTokens(t), Publisher: pub, Redactor: red, IPKey: []byte("0123456789abcdef"), PromptTextTenants: []string{"acme"}, Now: func() time.Time { return time.Unix(1e9, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	post(t, s, "/v1/hooks/claude-code", tokSarah, "application/json", fixtures.Lines(t, "claude-code/session-basic.jsonl")[1])
	ev := pub.events(t)[0]
	if ev.Metadata["prompt"] != "add input validation to POST /v1/refunds" {
		t.Errorf("opted-in prompt %v", ev.Metadata)
	}
}
