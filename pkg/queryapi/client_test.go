package queryapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/chain"
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
	srv := readerServer(t, st)
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

// proofStore holds one signed partition in memory.
type proofStore struct {
	scopeStore
	log    *chaintest.Log
	leaves chain.MemoryLeaves
	cp     chain.SignedCheckpoint
}

func (s *proofStore) RecordByID(_ context.Context, id string, tenants []string) (chain.Record, error) {
	s.record("RecordByID", tenants, "")
	for _, r := range s.log.Records {
		var head struct{ ID, Tenant string }
		if err := json.Unmarshal(r.Event, &head); err == nil && head.ID == id && (len(tenants) == 0 || slices.Contains(tenants, head.Tenant)) {
			return r, nil
		}
	}
	return chain.Record{}, clickhouse.ErrNotFound
}

func (s *proofStore) ProofCheckpoint(context.Context, int32, uint64, bool) (chain.SignedCheckpoint, bool, error) {
	return s.cp, true, nil
}

func (s *proofStore) Leaves(context.Context, int32) chain.LeafSource { return s.leaves }

// TestClientProof: a proof fetched through the API verifies with the log's key
// alone; an event of another tenant is not found.
func TestClientProof(t *testing.T) {
	log := chaintest.New(t, "client-proof", 0)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	st := &proofStore{log: log}
	for i, tenant := range []string{"acme", "globex", "acme", "acme"} {
		log.Add(0, tenant, at.Add(time.Duration(i)*time.Second), chaintest.Doc("rule.updated", fmt.Sprint("u", i), "rule", "r"))
		st.leaves = append(st.leaves, log.Records[i].LeafHash)
	}
	st.cp = log.Sign(0)
	id := func(i int) string {
		var head struct{ ID string }
		if err := json.Unmarshal(log.Records[i].Event, &head); err != nil {
			t.Fatal(err)
		}
		return head.ID
	}
	srv := readerServer(t, st)
	c := &Client{BaseURL: srv.URL, Token: "secret-r"}
	b, err := c.Proof(context.Background(), id(2), false)
	if err != nil {
		t.Fatal(err)
	}
	verifiers, err := chain.NewVerifiers(log.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := b.Verify(log.Origin(0), verifiers); err != nil || cp.Size != 4 {
		t.Fatalf("proof through the API: size %d, %v", cp.Size, err)
	}
	var ae *APIError
	if _, err := c.Proof(context.Background(), id(1), false); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("another tenant's event: %v, want 404", err)
	}
}

// readerServer serves the API on st for one token, "secret-r": a reader of acme.
func readerServer(t *testing.T, st Store) *httptest.Server {
	t.Helper()
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
	t.Cleanup(srv.Close)
	return srv
}
