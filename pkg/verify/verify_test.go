package verify_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/verify"
)

// memStore is a stored log in memory (one partition).
type memStore struct {
	recs []chain.Record
	cps  []chain.SignedCheckpoint
}

func (m *memStore) Checkpoints(context.Context, int32) ([]chain.SignedCheckpoint, error) {
	return m.cps, nil
}

func (m *memStore) SeqRange(_ context.Context, _ int32, from, to time.Time) (uint64, uint64, bool, error) {
	var lo, hi uint64
	ok := false
	for _, r := range m.recs {
		if !r.ChainedAt.Before(from) && r.ChainedAt.Before(to) {
			if !ok {
				lo = r.Seq
			}
			hi, ok = r.Seq, true
		}
	}
	return lo, hi, ok, nil
}

func (m *memStore) RecordsBetween(_ context.Context, _ int32, from, to uint64, fn func(chain.Record) error) error {
	for _, r := range m.recs {
		if r.Seq >= from && r.Seq < to {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestPartition(t *testing.T) {
	log := chaintest.New(t, "verify-test", 10)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 35; i++ {
		log.Add(0, "acme", at.Add(time.Duration(i)*time.Hour), chaintest.Doc("rule.updated", fmt.Sprint("u", i), "rule", "r"))
	}
	var cps []chain.SignedCheckpoint
	for _, c := range log.Checkpoints {
		cps = append(cps, c.SignedCheckpoint)
	}
	verifiers, err := chain.NewVerifiers(log.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]chain.Record(nil), log.Records...)
	tampered[17].Event = []byte(strings.Replace(string(tampered[17].Event), "rule.updated", "rule.deleted", 1))
	dropped := append(append([]chain.Record(nil), log.Records[:12]...), log.Records[13:]...)
	for _, tc := range []struct {
		name    string
		recs    []chain.Record
		origin  string
		rng     *verify.Range
		records uint64
		problem string
	}{
		{"whole chain", log.Records, log.Origin(0), nil, 35, ""},
		{"a range, widened to checkpoints", log.Records, log.Origin(0), &verify.Range{From: at.Add(12 * time.Hour), To: at.Add(15 * time.Hour)}, 10, ""},
		{"an empty range", log.Records, log.Origin(0), &verify.Range{From: at.Add(-48 * time.Hour), To: at.Add(-24 * time.Hour)}, 0, ""},
		{"an edited event", tampered, log.Origin(0), nil, 0, "seq 17"},
		{"a deleted record", dropped, log.Origin(0), nil, 0, "seq 12"},
		{"another log's origin", log.Records, chain.Origin("elsewhere", "audit.chained", 0), nil, 0, "origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := verify.Partition(context.Background(), &memStore{recs: tc.recs, cps: cps}, tc.origin, 0, verifiers, tc.rng)
			if err != nil {
				t.Fatal(err)
			}
			if tc.problem != "" {
				if res.OK || res.Problem == nil || !strings.Contains(res.Problem.Error(), tc.problem) {
					t.Fatalf("result %+v; want a problem naming %q", res, tc.problem)
				}
				return
			}
			if !res.OK || res.Problem != nil {
				t.Fatalf("result %+v, problem %v", res, res.Problem)
			}
			if got := uint64(0); res.Summary != nil {
				got = res.Summary.Records
				if got != tc.records {
					t.Fatalf("verified %d records, want %d", got, tc.records)
				}
			} else if !res.Empty || tc.records != 0 {
				t.Fatalf("result %+v", res)
			}
		})
	}
}
