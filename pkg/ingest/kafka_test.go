package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/fixtures"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/source/claudecode"
)

// These tests run against the real broker started by scripts/kafka.sh. They are
// part of `make test`; -short leaves them out for a quick edit-compile loop.

func realStack(t *testing.T, broker *kafkatest.Broker, topic string, deliveryTimeout time.Duration) (*httptest.Server, *Server, *kafka.Producer) {
	t.Helper()
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{broker.Addr}, Topic: topic, DeliveryTimeout: deliveryTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, prod.Client(), kafka.Topic{Name: topic, Partitions: 4, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	// Idempotent: a second call on an existing topic is not an error.
	if err := kafka.EnsureTopics(ctx, prod.Client(), kafka.Topic{Name: topic, Partitions: 4, Replication: 1}); err != nil {
		t.Fatalf("EnsureTopics on an existing topic: %v", err)
	}
	for !prod.Ready() {
		if ctx.Err() != nil {
			t.Fatal("producer never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := newTestServer(t, prod)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		prod.Close(context.Background())
	})
	return hs, s, prod
}

func httpPost(t testing.TB, url, token, ctype string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// consume reads the topic from the start until want records arrived (then waits a
// little longer to catch extras) or the deadline passed.
func consume(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	settle := time.Time{}
	for time.Now().Before(deadline) {
		if len(out) >= want {
			if settle.IsZero() {
				settle = time.Now().Add(time.Second)
			} else if time.Now().After(settle) {
				break
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func TestFixturesThroughKafka(t *testing.T) {
	broker := kafkatest.Shared(t)
	topic := kafkatest.Topic("audit.events.test")
	hs, s, _ := realStack(t, broker, topic, 10*time.Second)

	var hookLines [][]byte
	for _, f := range []string{"claude-code/session-basic.jsonl", "claude-code/session-mcp-subagent.jsonl", "claude-code/param-drift.jsonl"} {
		hookLines = append(hookLines, fixtures.Lines(t, f)...)
	}
	secret := "psql postgres://app:Sup3rS3cretPw@db.internal/pay"
	hookLines = append(hookLines, []byte(`{"session_id":"s-secret","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"toolu_secret","tool_input":{"command":"`+secret+`"}}`))
	for i, l := range hookLines {
		if code, body := httpPost(t, hs.URL+"/v1/hooks/claude-code", tokSarah, "application/json", l); code != 200 || len(body) != 0 {
			t.Fatalf("hook %d: %d %q", i, code, body)
		}
	}
	canonLines := fixtures.Lines(t, "registry/canonical-events.jsonl")
	code, body := httpPost(t, hs.URL+"/v1/events", tokRegistry, "application/x-ndjson", bytes.Join(canonLines, []byte("\n")))
	if code != 200 {
		t.Fatalf("canonical events: %d %s", code, body)
	}
	var canonResp batchResponse
	if err := json.Unmarshal(body, &canonResp); err != nil {
		t.Fatal(err)
	}
	code, body = httpPost(t, hs.URL+"/v1/cloudevents", tokRegistry, "application/cloudevents-batch+json", mustRead(t, "registry/cloudevents-batch.json"))
	if code != 200 {
		t.Fatalf("cloudevents: %d %s", code, body)
	}
	var ceResp batchResponse
	if err := json.Unmarshal(body, &ceResp); err != nil {
		t.Fatal(err)
	}
	// Bad input through the real stack: all 4xx, none may reach Kafka.
	for _, b := range fixtures.BadInputs(t) {
		if code, body := httpPost(t, hs.URL+"/v1/events", tokRegistry, "application/json", b.Body); code < 400 || code > 499 {
			t.Errorf("bad %s: %d %s", b.Name, code, body)
		}
	}

	want := len(hookLines) + len(canonLines) + 2
	recs := consume(t, broker.Addr, topic, want)
	if len(recs) != want {
		t.Fatalf("%d records in %s, want exactly %d (one per accepted item)", len(recs), topic, want)
	}
	byID := map[string]*kgo.Record{}
	var hooks []*event.Event
	for _, r := range recs {
		ev, err := event.CheckCanonical(r.Value, event.DefaultLimits)
		if err != nil {
			t.Fatalf("record at %d/%d is not canonical: %v", r.Partition, r.Offset, err)
		}
		if string(r.Key) != ev.Tenant || (ev.Tenant != "acme" && ev.Tenant != "acme-platform") {
			t.Errorf("key %q tenant %q", r.Key, ev.Tenant)
		}
		if bytes.Contains(r.Value, []byte("Sup3rS3cretPw")) {
			t.Errorf("secret reached Kafka: %s", r.Value)
		}
		byID[ev.ID] = r
		if ev.Source.Tool == "claude_code" {
			hooks = append(hooks, ev)
		}
	}
	// One tenant, one partition: hook events arrive in the order they were sent, and
	// each is byte-for-byte the adapter's canonical output for its payload.
	if len(hooks) != len(hookLines) {
		t.Fatalf("%d hook events, want %d", len(hooks), len(hookLines))
	}
	for i, l := range hookLines {
		p, _ := event.Decode(l, claudecode.Limits)
		doc, err := claudecode.Map(p, claudecode.Options{Actor: testTokens(t).byHash[shaBytes(tokSarah)].Actor, ClientIP: "127.0.0.1", Redactor: s.o.Redactor})
		if err != nil {
			t.Fatal(err)
		}
		st := event.Stamp{Tenant: "acme", Tool: "claude_code", ReceivedAt: hooks[i].ReceivedAt.Time, ID: hooks[i].ID, IPKey: s.tenantIPKey("acme"), Mapped: true}
		if err := st.Apply(doc); err != nil {
			t.Fatal(err)
		}
		_, wantBytes, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if got := byID[hooks[i].ID].Value; !bytes.Equal(got, wantBytes) {
			t.Errorf("hook %d (%s):\n got %s\nwant %s", i, p["hook_event_name"], got, wantBytes)
		}
	}
	last := hooks[len(hooks)-1]
	if len(last.Redactions) == 0 || !strings.Contains(last.Metadata["tool_input"].(string), "[REDACTED:") {
		t.Errorf("secret event: redactions %v metadata %v", last.Redactions, last.Metadata)
	}
	for _, res := range append(canonResp.Results, ceResp.Results...) {
		if _, ok := byID[res.ID]; !ok || res.Status != statusAccepted {
			t.Errorf("acknowledged id %s (%s) not in Kafka", res.ID, res.Status)
		}
	}
}

// TestBrokerOutageLosesNothing stops the broker while clients post and starts it
// again: every request answered 2xx must have its event in Kafka afterwards; every
// other answer must be 503 or 429 (never a 2xx that vanished, never a 500).
func TestBrokerOutageLosesNothing(t *testing.T) {
	broker := kafkatest.Private(t, "kafka-outage-test", 19292)
	topic := kafkatest.Topic("audit.events.outage")
	hs, _, _ := realStack(t, broker, topic, 3*time.Second)

	var (
		mu        sync.Mutex
		acked     = map[string]string{} // client id -> event id
		refused   atomic.Int64
		stop      atomic.Bool
		wg        sync.WaitGroup
		seq       atomic.Int64
		unexpectd []string
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				n := seq.Add(1)
				cid := fmt.Sprintf("outage-%d", n)
				body := fmt.Sprintf(`{"id":%q,"action":"skill.updated","actor":{"type":"user","id":"u"},"resource":{"type":"skill","id":"s%d"}}`, cid, n)
				req, _ := http.NewRequest("POST", hs.URL+"/v1/events", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tokRegistry)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					mu.Lock()
					unexpectd = append(unexpectd, err.Error())
					mu.Unlock()
					continue
				}
				var br batchResponse
				json.NewDecoder(resp.Body).Decode(&br)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200 && len(br.Results) == 1 && br.Results[0].Status == statusAccepted:
					mu.Lock()
					acked[cid] = br.Results[0].ID
					mu.Unlock()
				case resp.StatusCode == 503 || resp.StatusCode == 429:
					if resp.Header.Get("Retry-After") == "" {
						mu.Lock()
						unexpectd = append(unexpectd, "503 without Retry-After")
						mu.Unlock()
					}
					refused.Add(1)
					time.Sleep(20 * time.Millisecond)
				default:
					mu.Lock()
					unexpectd = append(unexpectd, fmt.Sprintf("status %d %+v", resp.StatusCode, br))
					mu.Unlock()
				}
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	time.Sleep(1500 * time.Millisecond)
	beforeOutage := count()
	broker.Stop(t)
	time.Sleep(3 * time.Second)
	broker.Start(t)
	duringOutage := refused.Load()
	// Give the producer time to reconnect and clients to get through again.
	deadline := time.Now().Add(30 * time.Second)
	for count() < beforeOutage+50 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if len(unexpectd) > 0 {
		t.Errorf("%d unexpected answers, first: %s", len(unexpectd), unexpectd[0])
	}
	if beforeOutage == 0 || duringOutage == 0 || count() <= beforeOutage {
		t.Fatalf("the test did not exercise an outage: %d acked before, %d refused, %d acked in all", beforeOutage, duringOutage, count())
	}

	recs := consume(t, broker.Addr, topic, len(acked))
	inKafka := map[string]bool{}
	for _, r := range recs {
		ev, err := event.Unmarshal(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		inKafka[ev.ID] = true
	}
	lost := 0
	for cid, id := range acked {
		if !inKafka[id] {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged %s (event %s) is not in Kafka", cid, id)
			}
		}
	}
	t.Logf("%d acknowledged (%d before the outage), %d refused with 503/429, %d records in Kafka, %d lost", len(acked), beforeOutage, refused.Load(), len(recs), lost)
}
