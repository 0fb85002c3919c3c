package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/chtest"
)

// TestSavedQueriesThroughAPI: trailctl query save, list, run and delete with --api
// go through the query API (saved_by is the token's actor there), and what they
// store is what the direct commands read.
func TestSavedQueriesThroughAPI(t *testing.T) {
	store := chtest.Store(t)
	api := apiWithTokens(t, store, func(h http.Handler) http.Handler { return h },
		map[string]string{"tk_auditor": `"name":"auditor","role":"auditor","tenants":["acme"],"actor":{"type":"user","id":"lead@acme.example"}`})
	t.Setenv("TRAILKEEP_QUERY_TOKEN", "tk_auditor")
	direct := []string{"--clickhouse", chtest.Addr, "--database", store.Database(), "--tenant", "acme"}
	via := []string{"--api", api, "--tenant", "acme"}
	if out, stderr, code := run(t, append([]string{"query", "save", "skills", "event:skill.*", "--description", "skill changes"}, via...)...); code != 0 {
		t.Fatalf("save: exit %d %s %s", code, out, stderr)
	}
	out, stderr, code := run(t, append([]string{"query", "list"}, direct...)...)
	if code != 0 || !strings.Contains(out, "skills") || !strings.Contains(out, "user:lead@acme.example") || !strings.Contains(out, "skill changes") {
		t.Fatalf("list (direct) after save (api): exit %d\n%s%s", code, out, stderr)
	}
	if out, _, code := run(t, append([]string{"query", "list"}, via...)...); code != 0 || !strings.Contains(out, "event:skill.*") {
		t.Fatalf("list (api): exit %d\n%s", code, out)
	}
	if _, stderr, code := run(t, append([]string{"query", "save", "bad", "event:(skill"}, via...)...); code != 2 {
		t.Fatalf("an invalid query: exit %d %s, want 2", code, stderr)
	}
	if _, stderr, code := run(t, append([]string{"query", "run", "nope"}, via...)...); code != 1 || !strings.Contains(stderr, "no saved query") {
		t.Fatalf("run of a missing query: exit %d %s", code, stderr)
	}
	if _, stderr, code := run(t, append([]string{"query", "delete", "skills"}, via...)...); code != 0 {
		t.Fatalf("delete: exit %d %s", code, stderr)
	}
	if _, stderr, code := run(t, append([]string{"query", "delete", "skills"}, via...)...); code != 1 {
		t.Fatalf("delete again: exit %d %s, want 1", code, stderr)
	}
}
