package queryapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSavedQueries: save, list, replace and delete a tenant's queries through the
// API, each change audited under its own action, with the rules a shared list of
// queries needs (auditor to change, one tenant, a query that compiles).
func TestSavedQueries(t *testing.T) {
	s := newStack(t)
	tail := newAccessTail(t, s.broker, s.topic)
	list := func(token, path string) []clickhouse.SavedQuery {
		t.Helper()
		code, _, body := s.do(t, token, "GET", path, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		var out struct {
			Queries []clickhouse.SavedQuery `json:"queries"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		return out.Queries
	}
	steps := []struct {
		name, token, method, path string
		body                      any
		code                      int
		field                     string // the field a 400 names
	}{
		{"save", "auditor", "PUT", "/v1/queries/denied-tools", map[string]string{"query": "event:tool.* result:denied", "description": "denied tool calls"}, 200, ""},
		{"replace", "auditor", "PUT", "/v1/queries/denied-tools", map[string]string{"query": "event:tool.* (result:denied OR result:failure)"}, 200, ""},
		{"a second one", "auditor", "PUT", "/v1/queries/skills", map[string]string{"query": "event:skill.*"}, 200, ""},
		{"a reader may not change them", "reader", "PUT", "/v1/queries/mine", map[string]string{"query": "event:skill.*"}, 403, ""},
		{"a query that does not compile", "auditor", "PUT", "/v1/queries/bad", map[string]string{"query": "event:(skill"}, 400, "/query"},
		{"a name that is not a slug", "auditor", "PUT", "/v1/queries/Bad%20Name", map[string]string{"query": "event:skill.*"}, 400, "name"},
		{"not JSON", "auditor", "PUT", "/v1/queries/x", "event:skill.*", 400, ""},
		{"two tenants in scope", "two", "PUT", "/v1/queries/x", map[string]string{"query": "event:skill.*"}, 400, "tenant"},
		{"another tenant", "auditor", "PUT", "/v1/queries/x?tenant=globex", map[string]string{"query": "event:skill.*"}, 403, ""},
		{"globex's own", "two", "PUT", "/v1/queries/globex-only?tenant=globex", map[string]string{"query": "event:skill.*"}, 200, ""},
		{"delete", "auditor", "DELETE", "/v1/queries/skills", nil, 204, ""},
		{"delete again", "auditor", "DELETE", "/v1/queries/skills", nil, 404, ""},
	}
	for _, st := range steps {
		code, _, body := s.do(t, st.token, st.method, st.path, st.body)
		if code != st.code {
			t.Fatalf("%s: %d %s, want %d", st.name, code, body, st.code)
		}
		if st.field != "" {
			var e errResp
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%s: %s: %v", st.name, body, err)
			}
			if len(e.Errors) != 1 || e.Errors[0].Field != st.field {
				t.Errorf("%s: %s, want an error naming %s", st.name, body, st.field)
			}
		}
	}
	got := list("reader", "/v1/queries")
	if len(got) != 1 || got[0].Name != "denied-tools" || !strings.Contains(got[0].Query, "result:failure") || got[0].Description != "" ||
		got[0].SavedBy != "user:auditor@example.com" || got[0].Tenant != "acme" {
		t.Errorf("acme's saved queries: %+v, want the replaced denied-tools only", got)
	}
	if both := list("two", "/v1/queries"); len(both) != 2 {
		t.Errorf("a token of acme and globex lists %d queries, want 2", len(both))
	}
	if code, _, body := s.do(t, "admin", "GET", "/v1/queries", nil); code != 400 {
		t.Errorf("an all-tenant token listing without ?tenant=: %d %s, want 400", code, body)
	}
	wants := map[string]int{"audit_log.query_saved success": 4, "audit_log.query_saved denied": 2, "audit_log.query_saved failure": 5, // the two-tenant token's refusal is written to both logs
		"audit_log.query_deleted success": 2}
	kind := func(t *testing.T, r *kgo.Record) string {
		var ev struct {
			Action string `json:"action"`
			Result struct {
				Status string `json:"status"`
			} `json:"result"`
		}
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatalf("access event %s: %v", r.Value, err)
		}
		return ev.Action + " " + ev.Result.Status
	}
	count := func(recs []*kgo.Record) map[string]int {
		actions := map[string]int{}
		for _, r := range recs {
			actions[kind(t, r)]++
		}
		return actions
	}
	actions := count(tail.until(t, func(recs []*kgo.Record) bool {
		got := count(recs)
		for k, want := range wants {
			if got[k] < want {
				return false
			}
		}
		return true
	}))
	for k, want := range wants {
		if actions[k] != want {
			t.Errorf("%d access events %q, want %d (all: %v)", actions[k], k, want, actions)
		}
	}
}
