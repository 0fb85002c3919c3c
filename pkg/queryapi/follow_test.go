package queryapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// followStore answers Head with head and Follow with nothing for the first
// emptyPolls calls, then with recs; it keeps the positions it was asked from.
type followStore struct {
	scopeStore
	head       clickhouse.Position
	recs       []chain.Record
	emptyPolls int32
	polls      atomic.Int32
	asked      []clickhouse.Position
}

func (s *followStore) Head(ctx context.Context, tenants []string) (clickhouse.Position, error) {
	s.scopeStore.Head(ctx, tenants)
	return s.head, nil
}

func (s *followStore) Follow(_ context.Context, _ clickhouse.ExportRequest, pos clickhouse.Position, _ int) ([]chain.Record, clickhouse.Position, error) {
	s.mu.Lock()
	s.asked = append(s.asked, maps.Clone(pos))
	s.mu.Unlock()
	if s.polls.Add(1) <= s.emptyPolls {
		return nil, pos, nil
	}
	next := maps.Clone(pos)
	for _, r := range s.recs {
		next[r.Partition] = max(next[r.Partition], r.Seq)
	}
	return s.recs, next, nil
}

// oneToken is a token set of one token: secret, role (also its name), tenants.
func oneToken(t *testing.T, secret, role string, tenants ...string) *Tokens {
	t.Helper()
	return parseTestTokens(t, tokenEntry(secret, role, role, tenants...))
}

// tokenEntry is one token of a tokens file, for the secret.
func tokenEntry(secret, name, role string, tenants ...string) string {
	sum := sha256.Sum256([]byte(secret))
	return fmt.Sprintf(`{"name":%q,"sha256":%q,"role":%q,"tenants":["%s"]}`, name, hex.EncodeToString(sum[:]), role, strings.Join(tenants, `","`))
}

// parseTestTokens parses a tokens file of entries.
func parseTestTokens(t *testing.T, entries ...string) *Tokens {
	t.Helper()
	ts, err := ParseTokens([]byte(`{"tokens":[` + strings.Join(entries, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestFollow: without after the answer is the head and no records; with after,
// the records after it and the next position, waiting for the first when asked
// to; a malformed after or wait is refused naming the field, and nothing is read.
func TestFollow(t *testing.T) {
	log := chaintest.New(t, "follow", 0)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		log.Add(0, "acme", at.Add(time.Duration(i)*time.Second), chaintest.Doc("rule.updated", fmt.Sprint("u", i), "rule", "r"))
	}
	ts := oneToken(t, "secret-reader", "reader", "acme")
	get := func(st Store, path string) (int, followResponse, string) {
		s, err := New(Options{Store: st, Tokens: ts, Publisher: &okPublisher{}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer secret-reader")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		var resp followResponse
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("%s: %v: %s", path, err, rec.Body)
			}
		}
		return rec.Code, resp, rec.Body.String()
	}

	t.Run("head", func(t *testing.T) {
		st := &followStore{head: clickhouse.Position{0: 41, 3: 7}}
		code, resp, body := get(st, "/v1/follow")
		if code != 200 || resp.Position != "0:41,3:7" || resp.Records == nil || len(resp.Records) != 0 || st.polls.Load() != 0 {
			t.Fatalf("%d %s (polls %d)", code, body, st.polls.Load())
		}
		if len(st.calls) != 1 || st.calls[0].method != "Head" || len(st.calls[0].tenants) != 1 || st.calls[0].tenants[0] != "acme" {
			t.Fatalf("store calls %+v", st.calls)
		}
	})
	t.Run("records after a position", func(t *testing.T) {
		st := &followStore{recs: log.Records[1:]}
		code, resp, body := get(st, "/v1/follow?after=0:0,2:5")
		if code != 200 || resp.Position != "0:2,2:5" || len(resp.Records) != 2 {
			t.Fatalf("%d %s", code, body)
		}
		var got chain.Record
		if err := got.UnmarshalJSON(resp.Records[1]); err != nil || got.LeafHash != log.Records[2].LeafHash {
			t.Fatalf("record 2 = %+v, %v", got, err)
		}
		if !maps.Equal(st.asked[0], clickhouse.Position{0: 0, 2: 5}) {
			t.Fatalf("asked from %v", st.asked[0])
		}
	})
	t.Run("empty after means nothing seen", func(t *testing.T) {
		st := &followStore{recs: log.Records}
		if code, resp, body := get(st, "/v1/follow?after="); code != 200 || len(resp.Records) != 3 || len(st.asked[0]) != 0 || len(st.calls) != 0 {
			t.Fatalf("%d %s; asked %v, calls %+v", code, body, st.asked, st.calls)
		}
	})
	t.Run("waits for the first record", func(t *testing.T) {
		st := &followStore{recs: log.Records[:1], emptyPolls: 2}
		code, resp, body := get(st, "/v1/follow?after=0:5&wait=10s")
		if code != 200 || len(resp.Records) != 1 || st.polls.Load() != 3 {
			t.Fatalf("%d %s after %d polls", code, body, st.polls.Load())
		}
	})
	t.Run("answers empty when the wait ends", func(t *testing.T) {
		st := &followStore{recs: log.Records, emptyPolls: 1 << 30}
		code, resp, body := get(st, "/v1/follow?after=0:5&wait=1500ms")
		if code != 200 || len(resp.Records) != 0 || resp.Position != "0:5" || st.polls.Load() != 2 {
			t.Fatalf("%d %s after %d polls", code, body, st.polls.Load())
		}
	})
	for name, tc := range map[string]struct{ query, field string }{
		"after not a position": {"after=0", "after"},
		"after twice the same": {"after=1:2,1:3", "after"},
		"negative partition":   {"after=-1:2", "after"},
		"wait too long":        {"after=0:1&wait=31s", "wait"},
		"wait negative":        {"after=0:1&wait=-1s", "wait"},
		"wait not a duration":  {"after=0:1&wait=5", "wait"},
		"limit out of range":   {"after=0:1&limit=0", "limit"},
		"bad query":            {"after=0:1&q=actor:(", "q"},
	} {
		t.Run(name, func(t *testing.T) {
			st := &followStore{recs: log.Records}
			code, _, body := get(st, "/v1/follow?"+tc.query)
			if code != 400 || !strings.Contains(body, `"field":"`+tc.field+`"`) || st.polls.Load() != 0 || len(st.calls) != 0 {
				t.Fatalf("%d %s (polls %d, calls %+v)", code, body, st.polls.Load(), st.calls)
			}
		})
	}
}
