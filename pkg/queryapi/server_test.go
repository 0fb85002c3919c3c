package queryapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/proof"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

type tokenSpec struct {
	name, role string
	tenants    []string
}

// tokens returns the configuration and each token's secret.
func tokens(t *testing.T, specs ...tokenSpec) (*queryapi.Tokens, map[string]string) {
	secrets := map[string]string{}
	var entries []map[string]any
	for _, s := range specs {
		secret := "tk_test_" + s.name
		sum := sha256.Sum256([]byte(secret))
		secrets[s.name] = secret
		entries = append(entries, map[string]any{"name": s.name, "sha256": hex.EncodeToString(sum[:]), "role": s.role, "tenants": s.tenants,
			"actor": map[string]any{"type": "user", "id": s.name + "@example.com"}})
	}
	b, _ := json.Marshal(map[string]any{"tokens": entries})
	ts, err := queryapi.ParseTokens(b)
	if err != nil {
		t.Fatal(err)
	}
	return ts, secrets
}

type stack struct {
	url     string
	secrets map[string]string
	log     *chaintest.Log
	topic   string
	broker  string
	db      string
	store   *clickhouse.Store
}

func newStack(t *testing.T) *stack {
	store := chtest.Store(t)
	log := chaintest.New(t, "api", 10)
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	for i := 0; i < 25; i++ {
		doc := chaintest.Doc([]string{"skill.updated", "team.member_added"}[i%2], fmt.Sprintf("user%d@acme.example", i%3), "skill", "api-conventions")
		if i == 3 { // bytes json.Marshal would escape
			doc["metadata"] = map[string]any{"diff": "<b>rate & limit</b>"}
		}
		log.Add(0, "acme", base.Add(time.Duration(i)*time.Minute), doc)
	}
	for i := 0; i < 12; i++ {
		log.Add(1, "globex", base.Add(time.Duration(i)*time.Minute), chaintest.Doc("skill.updated", "ops@globex.example", "skill", "deploy"))
	}
	ctx := context.Background()
	if err := store.InsertRecords(ctx, log.Records); err != nil {
		t.Fatal(err)
	}
	if err := store.InsertCheckpoints(ctx, log.Checkpoints); err != nil {
		t.Fatal(err)
	}
	broker := kafkatest.Shared(t)
	topic := kafkatest.Topic("audit.events.access")
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{broker.Addr}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(cctx, prod.Client(), kafka.Topic{Name: topic, Partitions: 2, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	ts, secrets := tokens(t, tokenSpec{"reader", "reader", []string{"acme"}}, tokenSpec{"auditor", "auditor", []string{"acme"}},
		tokenSpec{"admin", "admin", []string{"*"}}, tokenSpec{"two", "auditor", []string{"acme", "globex"}})
	api, err := queryapi.New(queryapi.Options{Store: store, Tokens: ts, Publisher: prod, OperatorTenant: "ops",
		SQL: clickhouse.SQLLimits{MaxRows: 10000, MaxTime: 30 * time.Second, MaxMemory: 4_000_000_000}}) // cmd/query's defaults
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		api.Close()
		hs.Close()
		prod.Close(context.Background())
	})
	return &stack{url: hs.URL, secrets: secrets, log: log, topic: topic, broker: broker.Addr, db: store.Database(), store: store}
}

func (s *stack) do(t *testing.T, token, method, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+s.secrets[token])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Trailer, b
}

type searchResp struct {
	Events []struct {
		Partition int32           `json:"partition"`
		Seq       uint64          `json:"seq"`
		LeafHash  string          `json:"leaf_hash"`
		Event     json.RawMessage `json:"event"`
	} `json:"events"`
	NextCursor string `json:"next_cursor"`
}

type errResp struct {
	Error  string             `json:"error"`
	Errors []event.FieldError `json:"errors"`
}

func TestQueryAPI(t *testing.T) {
	s := newStack(t)
	id := func(i int) string {
		ev, _ := event.Unmarshal(s.log.Records[i].Event)
		return ev.ID
	}
	expect := func(code, want int, body []byte) {
		t.Helper()
		if code != want {
			t.Fatalf("status %d, want %d: %s", code, want, body)
		}
	}

	// Authentication.
	code, _, body := s.do(t, "", "GET", "/v1/events", nil)
	expect(code, 401, body)
	s.secrets["forged"] = "tk_forged"
	code, _, body = s.do(t, "forged", "GET", "/v1/events", nil)
	expect(code, 401, body)

	// Search, tenant-scoped, with keyset paging.
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		code, _, body = s.do(t, "reader", "GET", "/v1/events?q="+url.QueryEscape("event:skill.*")+"&limit=5&cursor="+cursor, nil)
		expect(code, 200, body)
		var r searchResp
		decodeJSON(t, body, &r)
		for _, e := range r.Events {
			if e.Partition != 0 {
				t.Fatalf("reader of acme got an event of partition %d", e.Partition)
			}
			seen = append(seen, fmt.Sprint(e.Seq))
		}
		if r.NextCursor == "" {
			break
		}
		cursor = url.QueryEscape(r.NextCursor)
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 13 || seen[0] != "24" || seen[12] != "0" {
		t.Fatalf("paged search of acme skill events = %v", seen)
	}
	code, _, body = s.do(t, "admin", "GET", "/v1/events?limit=100", nil)
	var all searchResp
	decodeJSON(t, body, &all)
	expect(code, 200, body)
	if len(all.Events) != 37 {
		t.Fatalf("admin sees %d events, want 37", len(all.Events))
	}
	code, _, body = s.do(t, "reader", "GET", "/v1/events?tenant=globex", nil)
	expect(code, 403, body)
	code, _, body = s.do(t, "two", "GET", "/v1/events?tenant=globex&limit=100", nil)
	var two searchResp
	decodeJSON(t, body, &two)
	if code != 200 || len(two.Events) != 12 {
		t.Fatalf("?tenant=globex narrows a two-tenant token: %d, %d events", code, len(two.Events))
	}

	// Bad input is a 400 naming the field; injection attempts never return data.
	for _, q := range []string{"actor:(", "after:yesterday", "event:skill.* )", "unknown:key"} {
		code, _, body = s.do(t, "reader", "GET", "/v1/events?q="+url.QueryEscape(q), nil)
		var e errResp
		decodeJSON(t, body, &e)
		if code != 400 || len(e.Errors) != 1 || e.Errors[0].Field != "q" {
			t.Fatalf("q=%q: %d %s", q, code, body)
		}
	}
	for _, q := range []string{`actor:x' OR '1'='1`, `actor:"x\" OR 1=1 --"`, `tenant:globex`, `id:' UNION SELECT * FROM system.users --`, `x') OR tenant != ('acme`} {
		code, _, body = s.do(t, "reader", "GET", "/v1/events?q="+url.QueryEscape(q), nil)
		var r searchResp
		decodeJSON(t, body, &r)
		if code != 400 && (code != 200 || len(r.Events) != 0) {
			t.Fatalf("injection attempt %q returned %d with %d events: %.300s", q, code, len(r.Events), body)
		}
	}
	for _, bad := range []string{"limit=0", "limit=10001", "limit=x", "cursor=bm9wZQ"} {
		code, _, body = s.do(t, "reader", "GET", "/v1/events?"+bad, nil)
		var e errResp
		decodeJSON(t, body, &e)
		if code != 400 || len(e.Errors) != 1 || !strings.HasPrefix(bad, e.Errors[0].Field) {
			t.Fatalf("%s: %d %s", bad, code, body)
		}
	}

	// One event, verbatim; another tenant's is not found.
	code, _, body = s.do(t, "reader", "GET", "/v1/events/"+id(3), nil)
	expect(code, 200, body)
	var rec chain.Record
	if err := json.Unmarshal(body, &rec); err != nil || rec.ComputeLeafHash() != s.log.Records[3].LeafHash {
		t.Fatalf("event 3 is not the stored record verbatim (%v): %s", err, body)
	}
	code, _, body = s.do(t, "reader", "GET", "/v1/events/"+id(30), nil)
	expect(code, 404, body)

	// Proofs verify offline, including an event with < > & in it.
	code, _, body = s.do(t, "reader", "GET", "/v1/events/"+id(3)+"/proof", nil)
	expect(code, 200, body)
	b, err := proof.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	verifiers, _ := chain.NewVerifiers(s.log.VerifierKey)
	if cp, err := b.Verify(s.log.Origin(0), verifiers); err != nil || cp.Size != 10 {
		t.Fatalf("proof from the API: size %d, %v", cp.Size, err)
	}
	code, _, body = s.do(t, "reader", "GET", "/v1/events/"+id(3)+"/proof?checkpoint=latest", nil)
	if b, _ := proof.Parse(body); code != 200 || b.TreeSize != 20 {
		t.Fatalf("latest proof: %d, size %d", code, b.TreeSize)
	}
	code, _, body = s.do(t, "reader", "GET", "/v1/events/"+id(22)+"/proof", nil)
	expect(code, 409, body)

	// Latest checkpoints, only for the caller's partitions.
	code, _, body = s.do(t, "reader", "GET", "/v1/checkpoints/latest", nil)
	var cps struct {
		Checkpoints []struct {
			Partition int32  `json:"partition"`
			TreeSize  uint64 `json:"tree_size"`
		} `json:"checkpoints"`
	}
	decodeJSON(t, body, &cps)
	if code != 200 || len(cps.Checkpoints) != 1 || cps.Checkpoints[0].TreeSize != 20 {
		t.Fatalf("checkpoints for acme: %d %s", code, body)
	}

	// Read-only SQL: auditors only, scoped, bad statements are 400s.
	code, _, body = s.do(t, "reader", "POST", "/v1/sql", map[string]any{"sql": "SELECT 1"})
	expect(code, 403, body)
	code, _, body = s.do(t, "auditor", "POST", "/v1/sql", map[string]any{"sql": "SELECT tenant, count() AS n FROM audit_events GROUP BY tenant"})
	var sqlr struct {
		Columns []clickhouse.Column `json:"columns"`
		Rows    [][]any             `json:"rows"`
	}
	decodeJSON(t, body, &sqlr)
	if code != 200 || len(sqlr.Rows) != 1 || sqlr.Rows[0][0] != "acme" || sqlr.Rows[0][1] != 25.0 {
		t.Fatalf("scoped SQL: %d %s", code, body)
	}
	for stmt, rule := range map[string]string{
		"SELECT * FROM system.users":                     "scope",
		"DROP TABLE audit_events":                        "scope",
		"SELECT 1; DROP TABLE audit_events":              "scope",
		"SELECT * FROM audit_events SETTINGS readonly=0": "scope",
		"SELECT * FROM file('/etc/passwd')":              "scope",
		"SELECT toUInt8(action) FROM audit_events":       "sql", // accepted here, refused by the server
		// The store is ClickHouse 18.16, whose ALL joins return uninitialised
		// server memory in the right key columns (sqlscope.Scope.Legacy).
		"SELECT a.seq, c.chain_partition FROM audit_events a JOIN audit_checkpoints c USING chain_partition": "scope",
	} {
		code, _, body = s.do(t, "auditor", "POST", "/v1/sql", map[string]any{"sql": stmt, "max_rows": 100})
		var e errResp
		decodeJSON(t, body, &e)
		if code != 400 || len(e.Errors) != 1 || e.Errors[0].Rule != rule {
			t.Errorf("%q: %d %s, want a 400 with rule %s", stmt, code, body, rule)
		}
	}

	code, _, body = s.do(t, "auditor", "POST", "/v1/sql", map[string]any{"sql": "SELECT count() FROM audit_events a ANY LEFT JOIN (SELECT chain_partition, max(tree_size) AS n FROM audit_checkpoints GROUP BY chain_partition) c USING chain_partition", "max_rows": 100})
	if code != 200 {
		t.Errorf("ANY LEFT JOIN on 18.16: %d %s, want it run", code, body)
	}

	// Streamed export, with the row count and hash as trailers.
	code, trailer, body := s.do(t, "auditor", "GET", "/v1/export?q="+url.QueryEscape("event:skill.*")+"&format=ndjson", nil)
	expect(code, 200, body)
	sum := sha256.Sum256(body)
	if n := bytes.Count(body, []byte("\n")); n != 13 || trailer.Get("X-Trailkeep-Rows") != "13" || trailer.Get("X-Trailkeep-Sha256") != hex.EncodeToString(sum[:]) {
		t.Fatalf("export: %d lines, trailers %v", n, trailer)
	}
	code, _, body = s.do(t, "auditor", "GET", "/v1/export?format=ocsf", nil)
	if code != 200 || bytes.Count(body, []byte(`"class_uid":6003`)) != 25 {
		t.Fatalf("ocsf export: %d", code)
	}
	code, _, body = s.do(t, "auditor", "GET", "/v1/export?format=xml", nil)
	expect(code, 400, body)
	code, _, body = s.do(t, "reader", "GET", "/v1/export", nil)
	expect(code, 403, body)

	// Every call above is in the access log (the unauthenticated ones in the operator tenant's).
	recs := consumeAll(t, s.broker, s.topic)
	counts := map[string]int{}
	for _, r := range recs {
		ev, err := event.Unmarshal(r.Value)
		if err != nil {
			t.Fatalf("access event is not canonical: %v", err)
		}
		if string(r.Key) != ev.Tenant || ev.Source.Tool != "trailkeep" || ev.Resource.Type != "audit_log" || ev.Resource.ID != ev.Tenant {
			t.Fatalf("access event fields: %s", r.Value)
		}
		counts[fmt.Sprintf("%s %s %s %s", ev.Actor.ID, ev.Tenant, ev.Action, ev.Result.Status)]++
		if ev.Action == queryapi.ActionSearched && ev.Metadata["query"] == "event:skill.*" && ev.Actor.ID != "reader@example.com" {
			t.Fatalf("search by the reader token recorded as %s", ev.Actor.ID)
		}
	}
	for key, want := range map[string]int{
		"reader@example.com acme audit_log.searched denied":   1,         // SQL as reader
		"reader@example.com globex audit_log.searched denied": 1,         // tenant=globex: recorded in the log of the tenant asked for
		"admin@example.com ops audit_log.searched success":    1,         // all tenants go to the operator tenant
		"two@example.com globex audit_log.searched success":   1,         // narrowed to globex only
		"reader@example.com acme audit_log.verified success":  3 + 1,     // three proofs, checkpoints
		"auditor@example.com acme audit_log.searched success": 1 + 1 + 1, // scoped SQL, one statement ClickHouse rejects, an ANY join
		"auditor@example.com acme audit_log.searched failure": 5 + 1,     // statements the scope rejects, an ALL join on 18.16
		"auditor@example.com acme audit_log.exported success": 2,         // ndjson, ocsf
		"auditor@example.com acme audit_log.exported failure": 1,         // format=xml
		"reader@example.com acme audit_log.exported denied":   1,         // export as reader
	} {
		if counts[key] != want {
			t.Errorf("access log has %d × %q, want %d", counts[key], key, want)
		}
	}
	// 3 pages, 2 single events, 4 bad queries, 4 bad paging parameters and 5
	// injection attempts (each either a 400 or an empty page).
	if n := counts["reader@example.com acme audit_log.searched success"] + counts["reader@example.com acme audit_log.searched failure"]; n != 18 {
		t.Errorf("access log has %d searches by the reader, want 18", n)
	}
	if t.Failed() {
		t.Logf("access log: %v", counts)
	}
}

// TestQueryAPIRefusesWhenTheAccessLogIsDown: a call that cannot be audited is not
// served.
func TestQueryAPIRefusesWhenTheAccessLogIsDown(t *testing.T) {
	store := chtest.Store(t)
	log := chaintest.New(t, "down", 0)
	log.Add(0, "acme", time.Now().UTC(), chaintest.Doc("skill.updated", "u", "skill", "s"))
	if err := store.InsertRecords(context.Background(), log.Records); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on this port: every produce fails within the delivery timeout.
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "audit.events", DeliveryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(context.Background())
	ts, secrets := tokens(t, tokenSpec{"reader", "reader", []string{"acme"}})
	api, _ := queryapi.New(queryapi.Options{Store: store, Tokens: ts, Publisher: prod})
	t.Cleanup(api.Close)
	hs := httptest.NewServer(api.Handler())
	defer hs.Close()
	// Served, refused, invalid, unauthenticated and unknown calls alike: none is
	// answered without its access event.
	for _, c := range []struct{ name, token, path string }{
		{"served", "reader", "/v1/events"},
		{"tenant refused", "reader", "/v1/events?tenant=globex"},
		{"invalid cursor", "reader", "/v1/events?cursor=zz"},
		{"role refused", "reader", "/v1/export"},
		{"no token", "", "/v1/events"},
		{"unknown path", "reader", "/v1/nothing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", hs.URL+c.path, nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+secrets[c.token])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "access_log_unavailable") || strings.Contains(string(body), "skill.updated") {
				t.Fatalf("with the access log down: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// consumeAll reads the topic to the end offsets it has now: every access event was
// acknowledged before its call answered, so all are there. (An idle window, as this
// used, can end before a loaded broker's first fetch.)
func consumeAll(t *testing.T, broker, topic string) []*kgo.Record {
	t.Helper()
	return kafkatest.ReadAll(t, broker, topic)
}

// pollUntilIdle returns the records cl fetches until none has come for idle.
func pollUntilIdle(cl *kgo.Client, idle time.Duration) []*kgo.Record {
	var out []*kgo.Record
	last := time.Now()
	for time.Since(last) < idle {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n > 0 {
			last = time.Now()
		}
	}
	return out
}

// accessTail follows the access-log topic from its current end.
type accessTail struct {
	cl *kgo.Client
}

func newAccessTail(t *testing.T, broker, topic string) *accessTail {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	a := &accessTail{cl: cl}
	a.next(t) // skip what is there already
	return a
}

// next returns the records produced since the last call.
func (a *accessTail) next(t *testing.T) []*kgo.Record {
	t.Helper()
	return pollUntilIdle(a.cl, 700*time.Millisecond)
}

// until returns the records produced since the last call once arrived says they
// are all there, or after 15 s, and then after one more idle window, so that an
// extra record is returned too. Every access event is acknowledged before its
// call answers, but reading it back can take longer than one idle window on a
// loaded machine: a test that counted one window's records raced the fetch.
func (a *accessTail) until(t *testing.T, arrived func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for deadline := time.Now().Add(15 * time.Second); !arrived(out) && time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := a.cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return append(out, a.next(t)...)
}

// atLeast is until for a count.
func (a *accessTail) atLeast(t *testing.T, n int) []*kgo.Record {
	t.Helper()
	return a.until(t, func(recs []*kgo.Record) bool { return len(recs) >= n })
}

// TestEveryRequestHasExactlyOneAccessEvent sends malformed, refused and
// unauthenticated requests; each gets its intended answer and exactly one access
// event per tenant in scope, canonical, with its input sanitised and redacted.
func TestEveryRequestHasExactlyOneAccessEvent(t *testing.T) {
	s := newStack(t)
	tail := newAccessTail(t, s.broker, s.topic)
	const ghToken = "ghp_" + "R2d2C3poBB8TheForceIsStrong0123456789"
	const awsKey = "AKIA" + "QWERTYUIOPASDFGH"
	longSQL := "SELECT '" + strings.Repeat("a", 4086) + strings.Repeat("é", 5) + "' AS x"
	for _, c := range []struct {
		name, token, method, path string
		body                      any
		code                      int
		tenants                   []string // the logs the access event is written to
		status                    string
		sanitized                 string // expected <key>_sanitized metadata, "key=flags"
	}{
		{"cursor not UTF-8 for a tenant not granted", "reader", "GET", "/v1/events?tenant=acme-platform&cursor=%FF", nil, 403, []string{"acme-platform"}, "denied", "cursor=invalid_utf8"},
		{"cursor not UTF-8", "reader", "GET", "/v1/events?cursor=%FF", nil, 400, []string{"acme"}, "failure", "cursor=invalid_utf8"},
		{"huge cursor", "reader", "GET", "/v1/events?cursor=" + strings.Repeat("A", 8192), nil, 400, []string{"acme"}, "failure", "cursor=truncated"},
		{"format not UTF-8", "auditor", "GET", "/v1/export?format=%FF", nil, 400, []string{"acme"}, "failure", "format=invalid_utf8"},
		{"format unknown", "auditor", "GET", "/v1/export?format=xml", nil, 400, []string{"acme"}, "failure", ""},
		{"tenant not a slug", "reader", "GET", "/v1/events?tenant=ACME%21", nil, 400, []string{"acme"}, "failure", ""},
		{"long SQL cut inside a character", "auditor", "POST", "/v1/sql", map[string]any{"sql": longSQL}, 200, []string{"acme"}, "success", "sql=truncated"},
		{"SQL with NUL in a literal", "auditor", "POST", "/v1/sql", map[string]any{"sql": "SELECT 'a\x00b' AS x"}, 200, []string{"acme"}, "success", "sql=nul"},
		{"SQL not in the subset, non-ASCII", "auditor", "POST", "/v1/sql", map[string]any{"sql": "SELECT é"}, 400, []string{"acme"}, "failure", ""},
		{"SQL body not JSON", "auditor", "POST", "/v1/sql", "not json", 400, []string{"acme"}, "failure", ""},
		{"10 KiB multi-byte query", "reader", "GET", "/v1/events?q=" + url.QueryEscape(strings.Repeat("ü", 10240)), nil, 200, []string{"acme"}, "success", "query=truncated"},
		{"event id with NUL", "reader", "GET", "/v1/events/abc%00def", nil, 404, []string{"acme"}, "success", "event_id=nul"},
		{"query carrying a token", "reader", "GET", "/v1/events?q=" + url.QueryEscape(ghToken), nil, 200, []string{"acme"}, "success", ""},
		{"SQL carrying a key", "auditor", "POST", "/v1/sql", map[string]any{"sql": "SELECT count() FROM audit_events WHERE actor_id = '" + awsKey + "'"}, 200, []string{"acme"}, "success", ""},
		{"no token", "", "GET", "/v1/events", nil, 401, []string{"ops"}, "denied", ""},
		{"wrong token", "forged", "GET", "/v1/export", nil, 401, []string{"ops"}, "denied", ""},
		{"unknown path", "reader", "GET", "/v1/nothing/here", nil, 404, []string{"acme"}, "failure", ""},
		{"wrong method", "reader", "DELETE", "/v1/events", nil, 404, []string{"acme"}, "failure", ""},
		{"two tenants", "two", "GET", "/v1/checkpoints/latest", nil, 200, []string{"acme", "globex"}, "success", ""},
		{"approvals report", "reader", "GET", "/v1/approvals?q=" + url.QueryEscape("after:-1d"), nil, 200, []string{"acme"}, "success", ""},
		{"approvals as CSV for two tenants", "two", "GET", "/v1/approvals?format=csv", nil, 200, []string{"acme", "globex"}, "success", ""},
		{"approvals bad format", "reader", "GET", "/v1/approvals?format=xml", nil, 400, []string{"acme"}, "failure", ""},
		{"approvals bad limit", "reader", "GET", "/v1/approvals?limit=0", nil, 400, []string{"acme"}, "failure", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.secrets["forged"] = "tk_forged"
			code, _, body := s.do(t, c.token, c.method, c.path, c.body)
			if code != c.code {
				t.Fatalf("status %d, want %d: %.300s", code, c.code, body)
			}
			recs := tail.atLeast(t, len(c.tenants))
			var tenants []string
			for _, r := range recs {
				if bytes.Contains(r.Value, []byte(ghToken)) || bytes.Contains(r.Value, []byte(awsKey)) {
					t.Errorf("a secret is in the access event: %s", r.Value)
				}
				if _, err := event.CheckCanonical(r.Value, event.DefaultLimits); err != nil {
					t.Errorf("access event does not pass ingest's validation: %v\n%.300s", err, r.Value)
				}
				ev, err := event.Unmarshal(r.Value)
				if err != nil {
					t.Fatal(err)
				}
				tenants = append(tenants, ev.Tenant)
				if ev.Result.Status != c.status {
					t.Errorf("access event status %s, want %s", ev.Result.Status, c.status)
				}
				if k, flags, ok := strings.Cut(c.sanitized, "="); ok && ev.Metadata[k+"_sanitized"] != flags {
					t.Errorf("metadata %s_sanitized = %v, want %s: %.400s", k, ev.Metadata[k+"_sanitized"], flags, r.Value)
				}
			}
			slices.Sort(tenants)
			if !slices.Equal(tenants, c.tenants) {
				t.Errorf("access events in the logs of %v, want exactly one in each of %v", tenants, c.tenants)
			}
		})
	}
}

// TestApprovalsEndpoint: the report over the caller's tenants only, as JSON and CSV.
func TestApprovalsEndpoint(t *testing.T) {
	s := newStack(t)
	log := chaintest.New(t, "api-approvals", 0)
	at := time.Now().UTC().Add(-time.Hour)
	call := func(tenant, tu, action string, approval map[string]any) {
		doc := chaintest.Doc(action, "sarah@"+tenant+".example", "tool", "Bash")
		doc["session"] = map[string]any{"id": "sess-" + tenant, "tool_use_id": tu}
		doc["approval"] = approval
		at = at.Add(time.Second)
		log.Add(2, tenant, at, doc)
	}
	d1, d2 := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	call("acme", "tu-acme", "tool.requested", map[string]any{"approved_params_digest": d1})
	call("acme", "tu-acme", "tool.decided", map[string]any{"decision": "approved", "decided_by": "sarah@acme.example"})
	call("acme", "tu-acme", "tool.executed", map[string]any{"executed_params_digest": d2})
	call("globex", "tu-globex", "tool.requested", map[string]any{"approved_params_digest": d1})
	if err := s.store.InsertRecords(context.Background(), log.Records); err != nil {
		t.Fatal(err)
	}
	code, _, body := s.do(t, "reader", "GET", "/v1/approvals", nil)
	var resp struct {
		Approvals []clickhouse.Approval `json:"approvals"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || code != 200 {
		t.Fatalf("%d %v %s", code, err, body)
	}
	if len(resp.Approvals) != 1 || resp.Approvals[0].ToolUseID != "tu-acme" || resp.Approvals[0].Verdict != clickhouse.VerdictChangedByAgent ||
		resp.Approvals[0].DecidedBy != "sarah@acme.example" {
		t.Fatalf("reader of acme sees %+v", resp.Approvals)
	}
	code, _, body = s.do(t, "two", "GET", "/v1/approvals?format=csv", nil)
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || code != 200 || len(rows) != 3 || rows[0][0] != "last_chained_at" {
		t.Fatalf("csv: %d %v %d rows\n%s", code, err, len(rows), body)
	}
}

// decodeJSON unmarshals an answer the test goes on to inspect; a body that is not
// JSON of that shape fails the test instead of leaving a zero value to compare.
func decodeJSON(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("answer is not the expected JSON: %v\n%.500s", err, body)
	}
}
