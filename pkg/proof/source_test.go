package proof_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/proof"
)

// memLog is a stored log in memory: the checkpoints signed so far, in order.
type memLog struct {
	leaves chain.MemoryLeaves
	cps    []chain.SignedCheckpoint
	sizes  []uint64
}

func (m *memLog) ProofCheckpoint(_ context.Context, _ int32, seq uint64, latest bool) (chain.SignedCheckpoint, bool, error) {
	if latest && len(m.cps) > 0 && m.sizes[len(m.sizes)-1] > seq {
		return m.cps[len(m.cps)-1], true, nil
	}
	for i, size := range m.sizes {
		if size > seq {
			return m.cps[i], true, nil
		}
	}
	return chain.SignedCheckpoint{}, false, nil
}

func (m *memLog) Leaves(context.Context, int32) chain.LeafSource { return m.leaves }

// TestForRecord: the first covering checkpoint by default, the latest on request,
// and a typed error for a record no checkpoint covers yet.
func TestForRecord(t *testing.T) {
	log := chaintest.New(t, "proof-source", 0)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	m := &memLog{}
	for i := 0; i < 12; i++ {
		log.Add(1, "acme", at.Add(time.Duration(i)*time.Second), chaintest.Doc("rule.updated", fmt.Sprintf("u%d", i), "rule", "r"))
		m.leaves = append(m.leaves, log.Records[i].LeafHash)
		if i == 4 || i == 9 {
			m.cps, m.sizes = append(m.cps, log.Sign(1)), append(m.sizes, uint64(i+1))
		}
	}
	verifiers, err := chain.NewVerifiers(log.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		seq      int
		latest   bool
		wantSize uint64
	}{
		{"first covering", 2, false, 5},
		{"first covering, later", 7, false, 10},
		{"latest", 2, true, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proof.ForRecord(context.Background(), m, log.Records[tc.seq], tc.latest)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := b.Verify(log.Origin(1), verifiers)
			if err != nil || cp.Size != tc.wantSize {
				t.Fatalf("verified size %d (%v), want %d", cp.Size, err, tc.wantSize)
			}
		})
	}
	_, err = proof.ForRecord(context.Background(), m, log.Records[11], false)
	var nc *proof.NotCoveredError
	if !errors.As(err, &nc) || nc.Seq != 11 || nc.Partition != 1 {
		t.Fatalf("uncovered record: %v, want a NotCoveredError for partition 1 seq 11", err)
	}
}

// damagedTree is a tree source whose stored subtrees are all wrong.
type damagedTree struct {
	chain.MemoryLeaves
	reported *int
}

func (d damagedTree) SubtreesMismatch(seq, size uint64) { *d.reported++ }

func (d damagedTree) Subtrees(_ uint, ranges []chain.IndexRange) (map[uint64]chain.Hash, error) {
	out := map[uint64]chain.Hash{}
	for _, r := range ranges {
		for i := r.Begin; i < r.End; i++ {
			out[i] = chain.Hash{0xba, 0xd}
		}
	}
	return out, nil
}

// TestBuildIgnoresDamagedSubtrees: stored subtrees are a cache; when they do not
// lead to the signed root the proof is folded from the leaves and still verifies,
// while damaged leaves still fail.
func TestBuildIgnoresDamagedSubtrees(t *testing.T) {
	log := chaintest.New(t, "proof-damaged", 0)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var leaves chain.MemoryLeaves
	for i := range 600 {
		log.Add(0, "acme", at, chaintest.Doc("rule.updated", fmt.Sprintf("u%d", i), "rule", "r"))
		leaves = append(leaves, log.Records[i].LeafHash)
	}
	cp := log.Sign(0)
	verifiers, err := chain.NewVerifiers(log.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	var reported int
	b, err := proof.Build(log.Records[550], cp, damagedTree{leaves, &reported})
	if err != nil {
		t.Fatalf("damaged subtrees: %v", err)
	}
	if reported != 1 {
		t.Fatalf("the damaged subtrees were reported %d times, want once", reported)
	}
	if _, err := b.Verify(log.Origin(0), verifiers); err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(leaves)
	bad[3][0] ^= 1
	if _, err := proof.Build(log.Records[550], cp, damagedTree{bad, &reported}); err == nil {
		t.Fatal("a damaged leaf was proven")
	}
}
