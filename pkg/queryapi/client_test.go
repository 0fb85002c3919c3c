package queryapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// hitsStore answers every search with the same page.
type hitsStore struct {
	scopeStore
	hits []clickhouse.Hit
}

func (s *hitsStore) Search(_ context.Context, req clickhouse.SearchRequest) ([]clickhouse.Hit, *clickhouse.Cursor, error) {
	s.record("Search", req.Tenants, "")
	return s.hits, &clickhouse.Cursor{ChainedAtNS: 42, Partition: 1, Seq: 7}, nil
}

// TestClientSearch: the client gets the stored bytes verbatim (HTML-significant
// characters included: they are part of the leaf hash), the cursor, and the API's
// refusals as typed errors naming the field.
func TestClientSearch(t *testing.T) {
	event := []byte(`{"action":"rule.updated","metadata":{"note":"<b>&\u2028</b>"},"tenant":"acme"}`)
	at := time.Date(2026, 11, 2, 9, 0, 0, 123456789, time.UTC)
	st := &hitsStore{hits: []clickhouse.Hit{{Partition: 1, Seq: 7, ChainedAt: at, LeafHash: "ab", Event: event}}}
	sum := sha256.Sum256([]byte("secret-r"))
	ts, err := ParseTokens([]byte(fmt.Sprintf(`{"tokens":[{"name":"r","sha256":%q,"role":"reader","tenants":["acme"]}]}`, hex.EncodeToString(sum[:]))))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Store: st, Tokens: ts, Publisher: &okPublisher{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/", Token: "secret-r"}
	hits, next, err := c.Search(context.Background(), "event:rule.*", nil, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || string(hits[0].Event) != string(event) || !hits[0].ChainedAt.Equal(at) || hits[0].Seq != 7 || next == "" {
		t.Fatalf("hits %+v next %q", hits, next)
	}
	for _, tc := range []struct {
		name, token, q string
		tenants        []string
		status         int
		want           string
	}{
		{"bad query", "secret-r", "actor:(", nil, 400, "[q: "},
		{"another tenant", "secret-r", "", []string{"globex"}, 403, ""},
		{"unknown token", "nope", "", nil, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := (&Client{BaseURL: srv.URL, Token: tc.token}).Search(context.Background(), tc.q, tc.tenants, 10, "")
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tc.status {
				t.Fatalf("error %v; want an APIError %d", err, tc.status)
			}
			if tc.want != "" && !strings.Contains(ae.Message, tc.want) {
				t.Fatalf("message %q lacks %q", ae.Message, tc.want)
			}
		})
	}
}
