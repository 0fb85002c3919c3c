package s3

import (
	"encoding/json"
	"testing"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

func TestSameCheckpoint(t *testing.T) {
	base := chain.SignedCheckpoint{Note: chain.NoteText("o\n4\nr\n\n— s sig\n"), Range: []chain.Hash{{1}}, LastLeaf: chain.Hash{2}, LastLeafProof: []chain.Hash{{3}, {4}}}
	enc := func(sc chain.SignedCheckpoint) []byte {
		b, err := json.Marshal(sc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		alter func(*chain.SignedCheckpoint)
		same  bool
	}{
		{"identical", func(*chain.SignedCheckpoint) {}, true},
		{"without the proof", func(sc *chain.SignedCheckpoint) { sc.LastLeafProof = nil }, true},
		{"another proof", func(sc *chain.SignedCheckpoint) { sc.LastLeafProof = []chain.Hash{{3}, {5}} }, false},
		{"another note", func(sc *chain.SignedCheckpoint) { sc.Note = chain.NoteText("o\n5\nr\n\n— s sig\n") }, false},
		{"another range", func(sc *chain.SignedCheckpoint) { sc.Range = []chain.Hash{{9}} }, false},
		{"a longer range", func(sc *chain.SignedCheckpoint) { sc.Range = []chain.Hash{{1}, {1}} }, false},
		{"another last leaf", func(sc *chain.SignedCheckpoint) { sc.LastLeaf = chain.Hash{7} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := base
			tc.alter(&other)
			if got := sameCheckpoint(enc(base), enc(other)); got != tc.same {
				t.Fatalf("sameCheckpoint = %v, want %v", got, tc.same)
			}
			if got := sameCheckpoint(enc(other), enc(base)); got != tc.same {
				t.Fatalf("sameCheckpoint reversed = %v, want %v", got, tc.same)
			}
		})
	}
	if sameCheckpoint([]byte("{"), enc(base)) || sameCheckpoint(enc(base), []byte("not json")) {
		t.Fatal("undecodable bytes are never the same checkpoint")
	}
}
