package queryapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/chain"
)

// chainStore serves a fixed partition 0 of records.
type chainStore struct {
	scopeStore
	recs []chain.Record
}

func (s *chainStore) RecordsBetween(_ context.Context, p int32, from, to uint64, fn func(chain.Record) error) error {
	for _, r := range s.recs {
		if r.Partition == p && r.Seq >= from && r.Seq < to {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestChainSourceRecords: records come through the API in seq order with their
// count, and a stream the client cannot account for — cut, short or without the
// count — is an error, never a shorter chain for the verifier to pass.
func TestChainSourceRecords(t *testing.T) {
	log := chaintest.New(t, "chain", 0)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		log.Add(0, "acme", at.Add(time.Duration(i)*time.Second), chaintest.Doc("rule.updated", fmt.Sprint("u", i), "rule", "r"))
	}
	s, err := New(Options{Store: &chainStore{recs: log.Records}, Tokens: oneToken(t, "secret-admin", "admin", "*"), Publisher: &okPublisher{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	real := httptest.NewServer(s.Handler())
	defer real.Close()
	collect := func(url string, from, to uint64) ([]uint64, error) {
		var seqs []uint64
		err := (&Client{BaseURL: url, Token: "secret-admin"}).Chain().RecordsBetween(context.Background(), 0, from, to, func(r chain.Record) error {
			seqs = append(seqs, r.Seq)
			return nil
		})
		return seqs, err
	}
	t.Run("served", func(t *testing.T) {
		seqs, err := collect(real.URL, 1, 1<<64-1)
		if err != nil || fmt.Sprint(seqs) != "[1 2 3 4]" {
			t.Fatalf("seqs %v, %v", seqs, err)
		}
	})
	line := func(i int) string {
		b, err := log.Records[i].MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	for name, h := range map[string]http.HandlerFunc{
		"no count": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(line(0) + line(1)))
		},
		"count says more": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Trailkeep-Rows")
			w.Write([]byte(line(0) + line(1)))
			w.Header().Set("X-Trailkeep-Rows", "3")
		},
		"cut line": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Trailkeep-Rows")
			w.Write([]byte(line(0) + strings.TrimSuffix(line(1), "\n")[:40]))
			w.Header().Set("X-Trailkeep-Rows", "2")
		},
	} {
		t.Run(name, func(t *testing.T) {
			bad := httptest.NewServer(h)
			defer bad.Close()
			if seqs, err := collect(bad.URL, 0, 10); err == nil {
				t.Fatalf("accepted %v", seqs)
			}
		})
	}
}
