package queryapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/console"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/sqlscope"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// scopeStore records the tenants of every read the API makes on a caller's behalf.
// It holds no data: what is checked is what the API asks for, the half of tenant
// scoping that is the API's (the store's half is tested on ClickHouse).
type scopeStore struct {
	mu    sync.Mutex
	calls []storeCall
}

type storeCall struct {
	method  string
	tenants []string // as passed; nil or empty means every tenant
	stmt    string
}

func (s *scopeStore) record(method string, tenants []string, stmt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, storeCall{method, slices.Clone(tenants), stmt})
}

func (s *scopeStore) RecordByID(_ context.Context, id string, tenants []string) (chain.Record, error) {
	s.record("RecordByID", tenants, "")
	return chain.Record{}, clickhouse.ErrNotFound
}
func (s *scopeStore) Search(_ context.Context, req clickhouse.SearchRequest) ([]clickhouse.Hit, *clickhouse.Cursor, error) {
	s.record("Search", req.Tenants, "")
	return nil, nil, nil
}
func (s *scopeStore) Histogram(_ context.Context, req clickhouse.HistogramRequest) ([]clickhouse.Bucket, error) {
	s.record("Histogram", req.Tenants, "")
	return nil, nil
}
func (s *scopeStore) LatestCheckpoints(context.Context) (map[int32]clickhouse.LatestCheckpoint, error) {
	return map[int32]clickhouse.LatestCheckpoint{}, nil
}
func (s *scopeStore) Partitions(_ context.Context, tenants []string) ([]int32, error) {
	s.record("Partitions", tenants, "")
	return nil, nil
}
func (s *scopeStore) SQLScope(tenants []string) sqlscope.Scope {
	return sqlscope.Scope{Database: "trailkeep", Tenants: tenants}
}
func (s *scopeStore) ReadOnly(_ context.Context, stmt string, _ clickhouse.SQLLimits, columns func([]clickhouse.Column) error, _ func([]any) error) (bool, error) {
	s.record("ReadOnly", nil, stmt)
	return false, columns(nil)
}
func (s *scopeStore) Export(_ context.Context, req clickhouse.ExportRequest, _ func(chain.Record) error) error {
	s.record("Export", req.Tenants, "")
	return nil
}
func (s *scopeStore) Head(_ context.Context, tenants []string) (clickhouse.Position, error) {
	s.record("Head", tenants, "")
	return clickhouse.Position{}, nil
}
func (s *scopeStore) Follow(_ context.Context, req clickhouse.ExportRequest, pos clickhouse.Position, _ int) ([]chain.Record, clickhouse.Position, error) {
	s.record("Follow", req.Tenants, "")
	return nil, pos, nil
}
func (s *scopeStore) Checkpoints(context.Context, int32) ([]chain.SignedCheckpoint, error) {
	s.record("Checkpoints", nil, "")
	return nil, nil
}
func (s *scopeStore) SeqRange(context.Context, int32, time.Time, time.Time) (uint64, uint64, bool, error) {
	s.record("SeqRange", nil, "")
	return 0, 0, false, nil
}
func (s *scopeStore) RecordsBetween(context.Context, int32, uint64, uint64, func(chain.Record) error) error {
	s.record("RecordsBetween", nil, "")
	return nil
}
func (s *scopeStore) Approvals(_ context.Context, req clickhouse.ApprovalsRequest) ([]clickhouse.Approval, error) {
	s.record("Approvals", req.Tenants, "")
	return nil, nil
}
func (s *scopeStore) FindDrift(_ context.Context, req clickhouse.DriftRequest) ([]clickhouse.Drift, error) {
	s.record("FindDrift", req.Tenants, "")
	return nil, nil
}
func (s *scopeStore) Ping(context.Context) error { return nil }
func (s *scopeStore) SavedQueries(_ context.Context, tenant string) ([]clickhouse.SavedQuery, error) {
	s.record("SavedQueries", []string{tenant}, "")
	return nil, nil
}
func (s *scopeStore) SaveQuery(_ context.Context, q clickhouse.SavedQuery) error {
	s.record("SaveQuery", []string{q.Tenant}, "")
	return nil
}
func (s *scopeStore) DeleteQuery(_ context.Context, tenant, _, _ string) error {
	s.record("DeleteQuery", []string{tenant}, "")
	return nil
}
func (s *scopeStore) ProofCheckpoint(context.Context, int32, uint64, bool) (chain.SignedCheckpoint, bool, error) {
	return chain.SignedCheckpoint{}, false, nil
}
func (s *scopeStore) Leaves(context.Context, int32) chain.LeafSource { return chain.MemoryLeaves{} }

// okPublisher acknowledges every access event and counts them.
type okPublisher struct {
	mu   sync.Mutex
	n    int
	last []byte
}

func (p *okPublisher) Publish(_ context.Context, msgs []kafka.Message) []error {
	p.mu.Lock()
	p.n += len(msgs)
	if len(msgs) > 0 {
		p.last = msgs[len(msgs)-1].Value
	}
	p.mu.Unlock()
	return make([]error, len(msgs))
}

// TestEveryReadIsScopedToTheCaller calls every endpoint with every kind of token and
// holds each store read to the token's tenants: a tenant-scoped caller's read never
// goes out unscoped (which the store takes as every tenant) or wider than the token,
// an SQL statement names the caller's tenants and no other, and only an all-tenant
// admin reads unscoped. Runs without ClickHouse.
func TestEveryReadIsScopedToTheCaller(t *testing.T) {
	tokens := map[string]struct {
		role    string
		tenants []string
	}{
		"reader":  {"reader", []string{"acme"}},
		"auditor": {"auditor", []string{"acme"}},
		"two":     {"auditor", []string{"acme", "globex"}},
		"admin":   {"admin", []string{"*"}},
	}
	var entries []string
	for name, tk := range tokens {
		entries = append(entries, tokenEntry("secret-"+name, name, tk.role, tk.tenants...))
	}
	ts := parseTestTokens(t, entries...)
	requests := []struct{ method, path, body string }{
		{"GET", "/v1/events", ""},
		{"GET", "/v1/events?q=" + "actor:u", ""},
		{"GET", "/v1/events?tenant=acme", ""},
		{"GET", "/v1/events?tenant=globex", ""},
		{"GET", "/v1/events/0190b8a2-0000-7000-8000-000000000001", ""},
		{"GET", "/v1/events/0190b8a2-0000-7000-8000-000000000001/proof", ""},
		{"GET", "/v1/checkpoints/latest", ""},
		{"POST", "/v1/sql", `{"sql":"SELECT count() FROM audit_events"}`},
		{"POST", "/v1/sql", `{"sql":"SELECT tenant FROM audit_events WHERE tenant = 'globex'"}`},
		{"GET", "/v1/export", ""},
		{"GET", "/v1/export?tenant=globex", ""},
		{"GET", "/v1/follow", ""},
		{"GET", "/v1/follow?tenant=globex", ""},
		{"GET", "/v1/follow?after=", ""},
		{"GET", "/v1/follow?after=0:4,1:2&q=result:denied&tenant=acme", ""},
		{"GET", "/v1/partitions", ""},
		{"GET", "/v1/partitions?tenant=globex", ""},
		{"GET", "/v1/partitions/0/checkpoints", ""},
		{"GET", "/v1/partitions/1/seq-range?from_ns=0&to_ns=99", ""},
		{"GET", "/v1/partitions/2/records?from=0&to=10", ""},
		{"GET", "/v1/partitions/2/records?tenant=acme", ""},
		{"GET", "/v1/approvals", ""},
		{"GET", "/v1/drift", ""},
		{"GET", "/v1/drift?unapproved=true&tenant=globex", ""},
		{"GET", "/v1/timeline?resource=skill:x", ""},
		{"GET", "/v1/timeline?resource=skill:x&tenant=globex", ""},
		{"GET", "/v1/histogram?q=event:skill.*", ""},
		{"GET", "/v1/histogram?tenant=globex&from=-7d&buckets=7", ""},
		{"GET", "/v1/queries", ""},
		{"GET", "/v1/me", ""},
		{"GET", "/v1/queries?tenant=globex", ""},
		{"PUT", "/v1/queries/mine", `{"query":"event:skill.*"}`},
		{"PUT", "/v1/queries/mine?tenant=acme", `{"query":"event:skill.*"}`},
		{"PUT", "/v1/queries/mine?tenant=globex", `{"query":"event:skill.*"}`},
		{"DELETE", "/v1/queries/mine?tenant=acme", ""},
		{"DELETE", "/v1/queries/mine?tenant=globex", ""},
	}
	for name, tk := range tokens {
		for _, rq := range requests {
			t.Run(name+" "+rq.method+" "+rq.path, func(t *testing.T) {
				st := &scopeStore{}
				pub := &okPublisher{}
				s, err := New(Options{Store: st, Tokens: ts, Publisher: pub})
				if err != nil {
					t.Fatal(err)
				}
				req := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
				req.Header.Set("Authorization", "Bearer secret-"+name)
				req.Header.Set(console.ViewHeader, "scope <b>test</b>")
				if rq.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				if rec.Code == http.StatusOK && pub.n == 0 {
					t.Errorf("%d with no access event", rec.Code)
				}
				// The console's view is in the access event, kept as text.
				if !strings.Contains(string(pub.last), `"console_view":"scope <b>test</b>"`) {
					t.Errorf("access event lacks the console view: %s", pub.last)
				}
				if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("X-Content-Type-Options %q, want nosniff", got)
				}
				all := slices.Equal(tk.tenants, []string{"*"})
				for _, c := range st.calls {
					if c.method == "ReadOnly" {
						checkStatement(t, c.stmt, tk.tenants, all)
						continue
					}
					if all {
						continue
					}
					if len(c.tenants) == 0 {
						t.Errorf("%s read unscoped (every tenant) for a caller of %v", c.method, tk.tenants)
					}
					for _, tn := range c.tenants {
						if !slices.Contains(tk.tenants, tn) {
							t.Errorf("%s read tenant %q for a caller of %v", c.method, tn, tk.tenants)
						}
					}
				}
			})
		}
	}
}

// checkStatement: a scoped caller's statement is confined to each of its tenants.
func checkStatement(t *testing.T, stmt string, tenants []string, all bool) {
	t.Helper()
	if all {
		return
	}
	for _, tn := range tenants {
		if !strings.Contains(stmt, "'"+tn+"'") {
			t.Errorf("statement for %v does not confine to %q: %s", tenants, tn, stmt)
		}
	}
}

// TestEveryEndpointRefusesAndAuditsAnUnknownCaller: without a token, or with a
// wrong one, every endpoint answers 401 and still writes its access event (with
// the endpoint's action): an endpoint missing from the action table would write
// none, and answer 503 instead.
func TestEveryEndpointRefusesAndAuditsAnUnknownCaller(t *testing.T) {
	ts := parseTestTokens(t, tokenEntry("secret-right", "right", "admin", "*"))
	for _, path := range []string{"/v1/events", "/v1/events/x", "/v1/events/x/proof", "/v1/checkpoints/latest", "/v1/sql", "/v1/export",
		"/v1/follow", "/v1/partitions", "/v1/partitions/0/checkpoints", "/v1/partitions/0/seq-range", "/v1/partitions/0/records",
		"/v1/approvals", "/v1/drift", "/v1/timeline", "/v1/histogram", "/v1/queries", "/v1/queries/x", "/v1/me", "/v1/nothing-here"} {
		for _, auth := range []string{"", "Bearer wrong"} {
			t.Run(path+" "+auth, func(t *testing.T) {
				pub := &okPublisher{}
				s, err := New(Options{Store: &scopeStore{}, Tokens: ts, Publisher: pub})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				method := "GET"
				if path == "/v1/sql" {
					method = "POST"
				}
				req := httptest.NewRequest(method, path, nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized {
					t.Errorf("%d, want 401: %s", rec.Code, rec.Body)
				}
				if pub.n != 1 || !bytes.Contains(pub.last, []byte(`"action":"audit_log.`)) {
					t.Errorf("access events %d, last %s; want one naming an audit_log action", pub.n, pub.last)
				}
			})
		}
	}
}
