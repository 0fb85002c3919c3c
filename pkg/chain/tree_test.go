package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
)

// memTree is a TreeSource in memory that counts the hashes it hands out.
type memTree struct {
	leaves MemoryLeaves
	nodes  map[[2]uint64]Hash // (level, index)
	read   atomic.Int64
}

func (m *memTree) LeafHashes(begin, end uint64) ([]Hash, error) {
	hs, err := m.leaves.LeafHashes(begin, end)
	m.read.Add(int64(len(hs)))
	return hs, err
}

func (m *memTree) Subtrees(level uint, ranges []IndexRange) (map[uint64]Hash, error) {
	out := map[uint64]Hash{}
	for _, r := range ranges {
		for i := r.Begin; i < r.End; i++ {
			if h, ok := m.nodes[[2]uint64{uint64(level), i}]; ok {
				out[i] = h
				m.read.Add(1)
			}
		}
	}
	return out, nil
}

func testLeaves(n int) MemoryLeaves {
	out := make(MemoryLeaves, n)
	for i := range out {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		out[i] = sha256.Sum256(b[:])
	}
	return out
}

// buildTree appends leaves with a TreeBuilder and returns the source holding every
// subtree it reported.
func buildTree(t *testing.T, leaves MemoryLeaves) (*memTree, *TreeBuilder) {
	t.Helper()
	b, filled, err := NewTreeBuilder(MemoryLeaves(nil), 0)
	if err != nil || len(filled) != 0 {
		t.Fatalf("NewTreeBuilder(0) = %v, %v", filled, err)
	}
	m := &memTree{leaves: leaves, nodes: map[[2]uint64]Hash{}}
	var done []Subtree
	for _, l := range leaves {
		if done, err = b.Append(l, done[:0]); err != nil {
			t.Fatal(err)
		}
		for _, st := range done {
			k := [2]uint64{uint64(st.Level), st.Index}
			if _, dup := m.nodes[k]; dup {
				t.Fatalf("subtree %v reported twice", k)
			}
			m.nodes[k] = st.Hash
		}
	}
	return m, b
}

// rootOf is the oracle: the RFC 6962 root of leaves, folded by a fresh compact range.
func rootOf(t *testing.T, leaves []Hash) Hash {
	t.Helper()
	rng := rangeFactory.NewEmptyRange(0)
	for _, l := range leaves {
		if err := rng.Append(l[:], nil); err != nil {
			t.Fatal(err)
		}
	}
	h, err := rng.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := hashFromBytes(h)
	return r
}

var treeSizes = []int{1, 2, 3, 255, 256, 257, 511, 512, 65535, 65536, 65537, 70000, 131072 + 300}

func TestTreeBuilderReportsEveryPerfectSubtreeOnce(t *testing.T) {
	leaves := testLeaves(treeSizes[len(treeSizes)-1])
	m, b := buildTree(t, leaves)
	want := 0
	for k := uint(TileHeight); uint64(1)<<k <= uint64(len(leaves)); k += TileHeight {
		want += len(leaves) >> k
	}
	if len(m.nodes) != want {
		t.Fatalf("%d subtrees reported for %d leaves, want %d", len(m.nodes), len(leaves), want)
	}
	for k, h := range m.nodes {
		level, idx := uint(k[0]), k[1]
		if got := rootOf(t, leaves[idx<<level:(idx+1)<<level]); got != h {
			t.Fatalf("subtree level %d index %d = %s, the fold of its leaves is %s", level, idx, h, got)
		}
	}
	if root, err := b.Root(); err != nil || root != rootOf(t, leaves) {
		t.Fatalf("builder root %s (%v), want %s", root, err, rootOf(t, leaves))
	}
}

// Proofs through stored subtrees must equal the proofs from leaves alone, for
// every kind of tree shape, and with any subtrees missing (a log written before
// subtrees were kept): missing ones are computed and reported, never guessed.
func TestTreeProofsEqualLeafProofs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	all := testLeaves(treeSizes[len(treeSizes)-1])
	for _, n := range treeSizes {
		for _, missing := range []float64{0, 0.3, 1} {
			t.Run(fmt.Sprintf("size=%d/missing=%v", n, missing), func(t *testing.T) {
				leaves := all[:n]
				m, _ := buildTree(t, leaves)
				dropped := map[[2]uint64]bool{}
				for k := range m.nodes {
					if rnd.Float64() < missing {
						delete(m.nodes, k)
						dropped[k] = true
					}
				}
				indexes := []uint64{0, uint64(n - 1), uint64(n / 2), rnd.Uint64N(uint64(n))}
				for _, i := range indexes {
					want, err := InclusionProof(leaves, i, uint64(n))
					if err != nil {
						t.Fatal(err)
					}
					got, err := InclusionProof(m, i, uint64(n))
					if err != nil || !slices.Equal(got, want) {
						t.Fatalf("inclusion of %d in %d through subtrees = %v (%v), from leaves %v", i, n, got, err, want)
					}
					if err := VerifyInclusion(leaves[i], i, Checkpoint{Size: uint64(n), Root: rootOf(t, leaves)}, got); err != nil {
						t.Fatal(err)
					}
					size1 := i + 1
					want, err = ConsistencyProof(leaves, size1, uint64(n))
					if err != nil {
						t.Fatal(err)
					}
					got, err = ConsistencyProof(m, size1, uint64(n))
					if err != nil || !slices.Equal(got, want) {
						t.Fatalf("consistency %d→%d through subtrees = %v (%v), from leaves %v", size1, n, got, err, want)
					}
				}
				// Every subtree computed in place of a missing one is reported, right.
				_, filled, err := NewTreeBuilder(m, uint64(n))
				if err != nil {
					t.Fatal(err)
				}
				for _, st := range filled {
					k := [2]uint64{uint64(st.Level), st.Index}
					if !dropped[k] {
						t.Fatalf("subtree %v reported as computed but it was stored", k)
					}
					if want := rootOf(t, leaves[st.Index<<st.Level:(st.Index+1)<<st.Level]); st.Hash != want {
						t.Fatalf("computed subtree %v = %s, want %s", k, st.Hash, want)
					}
				}
			})
		}
	}
}

// A builder resumed at any size from what the source holds continues exactly as
// one that appended every leaf itself.
func TestTreeBuilderResumes(t *testing.T) {
	leaves := testLeaves(70000)
	full, whole := buildTree(t, leaves)
	for _, at := range []uint64{0, 1, 255, 256, 257, 65535, 65536, 65537, 69999} {
		t.Run(fmt.Sprintf("at=%d", at), func(t *testing.T) {
			prefix := &memTree{leaves: leaves[:at], nodes: map[[2]uint64]Hash{}}
			for k, h := range full.nodes {
				if (k[1]+1)<<k[0] <= at {
					prefix.nodes[k] = h
				}
			}
			b, filled, err := NewTreeBuilder(prefix, at)
			if err != nil || len(filled) != 0 {
				t.Fatalf("NewTreeBuilder = %d filled, %v", len(filled), err)
			}
			var done []Subtree
			for _, l := range leaves[at:] {
				if done, err = b.Append(l, done); err != nil {
					t.Fatal(err)
				}
			}
			for _, st := range done {
				if full.nodes[[2]uint64{uint64(st.Level), st.Index}] != st.Hash {
					t.Fatalf("resumed builder reported subtree %d/%d = %s, differs", st.Level, st.Index, st.Hash)
				}
				prefix.nodes[[2]uint64{uint64(st.Level), st.Index}] = st.Hash
			}
			if len(prefix.nodes) != len(full.nodes) {
				t.Fatalf("resumed builder left %d subtrees, want %d", len(prefix.nodes), len(full.nodes))
			}
			r1, _ := b.Root()
			r2, _ := whole.Root()
			if r1 != r2 {
				t.Fatalf("root %s after resuming, %s without", r1, r2)
			}
		})
	}
}

// A proof reads O(log n) hashes through subtrees: at most 2^(TileHeight−1) per
// proof node plus the coalesced leaf reads, against n from leaves alone.
func TestTreeProofReadsAreLogarithmic(t *testing.T) {
	n := uint64(1<<20 + 12345)
	leaves := testLeaves(int(n))
	m, _ := buildTree(t, leaves)
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		i := rnd.Uint64N(n)
		m.read.Store(0)
		path, err := InclusionProof(m, i, n)
		if err != nil {
			t.Fatal(err)
		}
		read := int(m.read.Load())
		if bound := len(path)*(1<<(TileHeight-1)) + 2*maxLeafRead/64; read > bound {
			t.Fatalf("inclusion proof of %d in %d read %d hashes, bound %d", i, n, read, bound)
		}
		if read > 3000 {
			t.Fatalf("inclusion proof of %d in %d read %d hashes; expected a few hundred", i, n, read)
		}
	}
}
