package chain

import (
	"errors"
	"testing"
)

// TestRestoreCheckpointAuthenticatesLastLeaf: at every size up to 300 (every
// shape of the range's last subtree up to 256 leaves), a checkpoint alone
// restores a chain whose next record is the one the uninterrupted chain
// makes, and a checkpoint whose LastLeaf or proof was altered in any hash, or
// whose proof is missing, is refused.
func TestRestoreCheckpointAuthenticatesLastLeaf(t *testing.T) {
	k := newKeys(t, "lastleaf")
	c := New(3)
	for n := 1; n <= 300; n++ {
		if _, err := c.Append(testEvent(n), t0); err != nil {
			t.Fatal(err)
		}
		cp, err := c.Sign(testOrigin, k.signer)
		if err != nil {
			t.Fatal(err)
		}
		r, err := RestoreCheckpoint(testOrigin, 3, cp, k.verifiers)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		// The restored chain signs the same checkpoint again, proof included,
		// and continues exactly as the original.
		again, err := r.Sign(testOrigin, k.signer)
		if err != nil || string(again.Note) != string(cp.Note) || len(again.LastLeafProof) != len(cp.LastLeafProof) {
			t.Fatalf("size %d: re-signed checkpoint differs (%v)", n, err)
		}
		want := New(3)
		for i := 1; i <= n; i++ {
			if _, err := want.Append(testEvent(i), t0); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := r.Append([]byte(`{"next":1}`), t0)
		exp, _ := want.Append([]byte(`{"next":1}`), t0)
		if got.PrevHash != exp.PrevHash || got.LeafHash != exp.LeafHash || r.Root() != want.Root() {
			t.Fatalf("size %d: the restored chain continues differently", n)
		}

		for i := range cp.LastLeafProof {
			bad := cp
			bad.LastLeafProof = append([]Hash(nil), cp.LastLeafProof...)
			bad.LastLeafProof[i][7] ^= 0x10
			if _, err := RestoreCheckpoint(testOrigin, 3, bad, k.verifiers); err == nil {
				t.Fatalf("size %d: accepted a proof altered in hash %d", n, i)
			}
		}
		bad := cp
		bad.LastLeaf[31] ^= 1
		if _, err := RestoreCheckpoint(testOrigin, 3, bad, k.verifiers); err == nil {
			t.Fatalf("size %d: accepted an altered last leaf", n)
		}
		if len(cp.LastLeafProof) > 0 {
			bad = cp
			bad.LastLeafProof = nil
			if _, err := RestoreCheckpoint(testOrigin, 3, bad, k.verifiers); !errors.Is(err, ErrLastLeafUnproven) {
				t.Fatalf("size %d: a checkpoint without its proof: %v, want ErrLastLeafUnproven", n, err)
			}
			// Restore with records still takes it: the next record's
			// prev_hash checks LastLeaf there.
			if _, err := Restore(testOrigin, 3, &bad, k.verifiers, nil); err != nil {
				t.Fatalf("size %d: Restore refused an older checkpoint without a proof: %v", n, err)
			}
			if len(cp.LastLeafProof) == 1 {
				continue
			}
			bad.LastLeafProof = cp.LastLeafProof[1:]
			if _, err := RestoreCheckpoint(testOrigin, 3, bad, k.verifiers); err == nil || errors.Is(err, ErrLastLeafUnproven) {
				t.Fatalf("size %d: a short proof: %v", n, err)
			}
		}
	}
}

// TestProveLastLeaf: a checkpoint without its proof gets the one Sign makes
// from its last records' leaves, at every size; altered or misplaced leaves
// are refused.
func TestProveLastLeaf(t *testing.T) {
	k := newKeys(t, "provelast")
	c := New(3)
	var leaves []Hash
	for n := uint64(1); n <= 300; n++ {
		r, err := c.Append(testEvent(int(n)), t0)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, r.LeafHash)
		cp, err := c.Sign(testOrigin, k.signer)
		if err != nil {
			t.Fatal(err)
		}
		legacy := cp
		legacy.LastLeafProof = nil
		span := LastLeafSpan(n)
		got, err := legacy.ProveLastLeaf(n, leaves[n-span:])
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if len(got.LastLeafProof) != len(cp.LastLeafProof) {
			t.Fatalf("size %d: proof of %d hashes, Sign made %d", n, len(got.LastLeafProof), len(cp.LastLeafProof))
		}
		for i := range got.LastLeafProof {
			if got.LastLeafProof[i] != cp.LastLeafProof[i] {
				t.Fatalf("size %d: proof hash %d differs from Sign's", n, i)
			}
		}
		if span > 1 {
			bad := append([]Hash(nil), leaves[n-span:]...)
			bad[0][0] ^= 1
			if _, err := legacy.ProveLastLeaf(n, bad); err == nil {
				t.Fatalf("size %d: accepted an altered leaf", n)
			}
		}
		if n > span {
			if _, err := legacy.ProveLastLeaf(n, leaves[n-span-1:n-1]); err == nil {
				t.Fatalf("size %d: accepted the leaves one position early", n)
			}
		}
	}
}
