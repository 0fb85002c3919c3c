package queryapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// pagedStore answers Search with hits, two per page, to exercise the paging.
type pagedStore struct {
	scopeStore
	hits []clickhouse.Hit
}

func (s *pagedStore) Search(_ context.Context, req clickhouse.SearchRequest) ([]clickhouse.Hit, *clickhouse.Cursor, error) {
	s.record("Search", req.Tenants, "")
	from := 0
	if req.After != nil {
		from = int(req.After.Seq) + 1
	}
	to := min(from+2, len(s.hits))
	var next *clickhouse.Cursor
	if to < len(s.hits) {
		next = &clickhouse.Cursor{Seq: uint64(to - 1)}
	}
	return s.hits[from:to], next, nil
}

func TestTimeline(t *testing.T) {
	base := time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)
	change := func(i int, from, to, status, decidedBy string) clickhouse.Hit {
		doc := chaintest.Doc("skill.updated", "sarah@acme.example", "skill", "api-conventions")
		doc["occurred_at"] = base.Add(time.Duration(i) * 24 * time.Hour).Format(time.RFC3339)
		doc["result"] = map[string]any{"status": status}
		ch := map[string]any{"to_version": to, "diff_summary": "v" + to}
		if from != "" {
			ch["from_version"] = from
		}
		doc["change"] = ch
		if decidedBy != "" {
			doc["approval"] = map[string]any{"decision": "approved", "decided_by": decidedBy}
		}
		return clickhouse.Hit{Partition: 0, Seq: uint64(i), Event: chaintest.Event(t, "acme", base, doc)}
	}
	// Newest first, as the store pages; one change denied, one not a change at all.
	notAChange := clickhouse.Hit{Seq: 9, Event: chaintest.Event(t, "acme", base, chaintest.Doc("skill.read", "bot", "skill", "api-conventions"))}
	st := &pagedStore{hits: []clickhouse.Hit{change(4, "3", "4", "denied", ""), change(3, "2", "3", "success", "lead@acme.example"), notAChange,
		change(1, "1", "2", "success", "lead@acme.example"), change(0, "", "1", "success", "")}}
	ts := parseTestTokens(t, tokenEntry("secret-r", "r", "reader", "acme"))
	s, err := New(Options{Store: st, Tokens: ts, Publisher: &okPublisher{}, Now: func() time.Time { return base.Add(30 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(q url.Values) (int, map[string]any) {
		req := httptest.NewRequest("GET", "/v1/timeline?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer secret-r")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: %v", rec.Body, err)
		}
		return rec.Code, out
	}
	cases := []struct {
		name, at, wantVersion string
	}{
		{"before the first change", "2026-01-09", ""},
		{"after the first", "2026-01-10T12:00:00Z", "1"},
		{"after the third", "2026-01-13T12:00:00Z", "3"},
		{"a denied change does not take effect", "2026-01-20", "3"},
		{"relative", "-1d", "3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := get(url.Values{"resource": {"skill:api-conventions"}, "at": {c.at}})
			if code != http.StatusOK {
				t.Fatalf("%d %v", code, out)
			}
			changes := out["changes"].([]any)
			if len(changes) != 4 {
				t.Fatalf("%d changes, want 4 (the non-change left out)", len(changes))
			}
			if first := changes[0].(map[string]any); first["to_version"] != "1" {
				t.Errorf("oldest first: first change %v", first)
			}
			got := ""
			if f, ok := out["in_force"].(map[string]any); ok {
				got = f["to_version"].(string)
			}
			if got != c.wantVersion {
				t.Errorf("in force at %s: %q, want %q", c.at, got, c.wantVersion)
			}
		})
	}
	for _, c := range []struct{ resource, at, field string }{{"skill", "", "resource"}, {"skill:*", "", "resource"}, {"skill:x", "yesterday", "at"}} {
		code, out := get(url.Values{"resource": {c.resource}, "at": {c.at}})
		errs, _ := out["errors"].([]any)
		if code != http.StatusBadRequest || len(errs) != 1 || errs[0].(map[string]any)["field"] != c.field {
			t.Errorf("resource %q at %q: %d %v, want 400 naming %s", c.resource, c.at, code, out, c.field)
		}
	}
	for _, call := range st.calls {
		if strings.Join(call.tenants, ",") != "acme" {
			t.Errorf("%s read tenants %v, want the token's", call.method, call.tenants)
		}
	}
}
