package chain

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/sync/errgroup"
)

// TileHeight is the height of the subtrees a [TreeSource] keeps: the hash of every
// perfect subtree whose level is a positive multiple of TileHeight (256 leaves,
// 65,536 leaves, 16.8M leaves, ...). Any node of the tree is then the fold of at most
// 2^(TileHeight−1) stored hashes (or leaves), so a proof reads O(log n) hashes
// instead of every leaf its nodes cover. The layout is Tessera's tiles, kept one
// hash per row.
const TileHeight = 8

// Subtree is the hash of the perfect subtree at Level (a positive multiple of
// TileHeight) with index Index, which covers leaves [Index<<Level, (Index+1)<<Level).
type Subtree struct {
	Level uint8
	Index uint64
	Hash  Hash
}

// IndexRange is the node indexes [Begin, End) of one level.
type IndexRange struct{ Begin, End uint64 }

// TreeSource is a LeafSource that also keeps subtree hashes (see TileHeight).
// Proofs read through it in a few reads per TileHeight levels; a subtree it does
// not have (a log written before subtrees were kept) is computed from the level
// below, so a partial TreeSource is slower, never wrong.
//
// Proofs read the levels of a TreeSource concurrently: it must be safe for
// concurrent use.
type TreeSource interface {
	LeafSource
	// Subtrees returns the stored hashes of the subtrees at level with an index in
	// any of ranges, keyed by index. A subtree not stored is absent from the map.
	Subtrees(level uint, ranges []IndexRange) (map[uint64]Hash, error)
}

// nodeHashes returns the hashes of the perfect-subtree nodes ids, reading each
// TileHeight stratum with one Subtrees call (and the leaves with one LeafHashes call
// per distinct run). It also returns the subtrees it had to compute because src did
// not have them, for a writer to store.
func nodeHashes(src LeafSource, ids []compact.NodeID) ([][]byte, []Subtree, error) {
	tree, _ := src.(TreeSource)
	r := resolver{leaves: src, tree: tree}
	// Each node is the fold of 2^(level−k) nodes of the stored level k below it.
	byLevel := map[uint][]IndexRange{}
	for _, id := range ids {
		k := r.storedLevel(id.Level)
		byLevel[k] = append(byLevel[k], IndexRange{id.Index << (id.Level - k), (id.Index + 1) << (id.Level - k)})
	}
	// The strata are independent reads: run them side by side, so a proof costs
	// about one round trip to the store rather than one per stratum.
	got := map[uint][][]Hash{}
	var mu sync.Mutex
	var g errgroup.Group
	for k, ranges := range byLevel {
		g.Go(func() error {
			hs, err := r.resolve(k, ranges)
			mu.Lock()
			got[k] = hs
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	out := make([][]byte, len(ids))
	next := map[uint]int{}
	for i, id := range ids {
		k := r.storedLevel(id.Level)
		h := foldPerfect(got[k][next[k]])
		next[k]++
		out[i] = h[:]
	}
	return out, r.filled, nil
}

// resolver reads the hashes of stored levels, computing what the source lacks.
// resolve may run concurrently for different levels.
type resolver struct {
	leaves LeafSource
	tree   TreeSource // nil: only leaves are stored
	mu     sync.Mutex
	filled []Subtree // subtrees computed because tree did not have them
}

// storedLevel is the highest level at or below level whose nodes src keeps.
func (r *resolver) storedLevel(level uint) uint {
	if r.tree == nil {
		return 0
	}
	return level / TileHeight * TileHeight
}

// resolveRun bounds how many subtrees one fallback computes at a time (and so the
// leaves held in memory: 4,096 subtrees of 256 leaves are 32 MiB of hashes).
const resolveRun = 4096

// resolve returns, per range, the hashes of the nodes of stored level k in it.
func (r *resolver) resolve(k uint, ranges []IndexRange) ([][]Hash, error) {
	out := make([][]Hash, len(ranges))
	if k == 0 {
		return r.readLeaves(ranges)
	}
	stored, err := r.tree.Subtrees(k, ranges)
	if err != nil {
		return nil, fmt.Errorf("chain: read subtrees of level %d: %w", k, err)
	}
	for i, rg := range ranges {
		hs := make([]Hash, rg.End-rg.Begin)
		for j := rg.Begin; j < rg.End; j++ {
			h, ok := stored[j]
			if ok {
				hs[j-rg.Begin] = h
				continue
			}
			// Compute the run of missing subtrees starting here from the level below.
			e := j + 1
			for e < rg.End && e-j < resolveRun {
				if _, ok := stored[e]; ok {
					break
				}
				e++
			}
			if err := r.compute(k, j, e, hs[j-rg.Begin:e-rg.Begin]); err != nil {
				return nil, err
			}
			j = e - 1
		}
		out[i] = hs
	}
	return out, nil
}

// leafGap is how far apart two leaf ranges may be and still be read together: a
// proof's low nodes lie in one or two tiles, and one read of a tile is cheaper
// than a read per node.
const leafGap = 1 << TileHeight

// maxLeafRead caps what coalescing reads at once; a source of leaves only reads
// whole large nodes, which are not merged further.
const maxLeafRead = 1 << 16

// readLeaves returns the leaf hashes of each range, reading ranges less than
// leafGap apart with one LeafHashes call.
func (r *resolver) readLeaves(ranges []IndexRange) ([][]Hash, error) {
	order := make([]int, len(ranges))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ranges[a].Begin, ranges[b].Begin) })
	out := make([][]Hash, len(ranges))
	for i := 0; i < len(order); {
		begin, end := ranges[order[i]].Begin, ranges[order[i]].End
		j := i + 1
		for ; j < len(order) && ranges[order[j]].Begin <= end+leafGap && max(end, ranges[order[j]].End)-begin <= maxLeafRead; j++ {
			end = max(end, ranges[order[j]].End)
		}
		hs, err := r.leaves.LeafHashes(begin, end)
		if err != nil {
			return nil, fmt.Errorf("chain: read leaves [%d, %d): %w", begin, end, err)
		}
		if uint64(len(hs)) != end-begin {
			return nil, fmt.Errorf("chain: leaf source returned %d hashes for [%d, %d)", len(hs), begin, end)
		}
		for _, o := range order[i:j] {
			out[o] = hs[ranges[o].Begin-begin : ranges[o].End-begin]
		}
		i = j
	}
	return out, nil
}

// compute fills dst with the hashes of level-k nodes [begin, end), folded from the
// stored level below, and records them as filled.
func (r *resolver) compute(k uint, begin, end uint64, dst []Hash) error {
	const fan = 1 << TileHeight
	below, err := r.resolve(k-TileHeight, []IndexRange{{begin * fan, end * fan}})
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range dst {
		dst[i] = foldPerfect(below[0][i*fan : (i+1)*fan])
		r.filled = append(r.filled, Subtree{Level: uint8(k), Index: begin + uint64(i), Hash: dst[i]})
	}
	return nil
}

// foldPerfect returns the root of the perfect subtree whose bottom row is hs (a
// power of two in length). hs is left unchanged.
func foldPerfect(hs []Hash) Hash {
	if len(hs) == 1 {
		return hs[0]
	}
	row := make([]Hash, len(hs)/2)
	for i := range row {
		copy(row[i][:], rfc6962.DefaultHasher.HashChildren(hs[2*i][:], hs[2*i+1][:]))
	}
	for len(row) > 1 {
		for i := 0; i < len(row)/2; i++ {
			copy(row[i][:], rfc6962.DefaultHasher.HashChildren(row[2*i][:], row[2*i+1][:]))
		}
		row = row[:len(row)/2]
	}
	return row[0]
}

// TreeBuilder continues a partition's tree leaf by leaf for a writer that keeps
// subtrees: it reports each subtree a TreeSource stores as the leaf completing it is
// appended. It holds the compact range of the tree so far (O(log n) hashes). It is
// not safe for concurrent use.
type TreeBuilder struct {
	rng *compact.Range
}

// NewTreeBuilder returns a builder for the tree of size leaves whose nodes src
// holds, reading the O(log size) nodes on its right border. It also returns the
// subtrees it had to compute because src did not have them (a log written before
// subtrees were kept): storing them makes the next reads fast.
func NewTreeBuilder(src LeafSource, size uint64) (*TreeBuilder, []Subtree, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes, filled, err := nodeHashes(src, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("chain: tree border at size %d: %w", size, err)
	}
	rng, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, nil, fmt.Errorf("chain: tree border at size %d: %w", size, err)
	}
	return &TreeBuilder{rng: rng}, filled, nil
}

// Size is the number of leaves appended so far (the next leaf's seq).
func (b *TreeBuilder) Size() uint64 { return b.rng.End() }

// Append adds the next leaf and appends to done every subtree it completes.
func (b *TreeBuilder) Append(leaf Hash, done []Subtree) ([]Subtree, error) {
	err := b.rng.Append(leaf[:], func(id compact.NodeID, h []byte) {
		if id.Level > 0 && id.Level%TileHeight == 0 {
			st := Subtree{Level: uint8(id.Level), Index: id.Index}
			copy(st.Hash[:], h)
			done = append(done, st)
		}
	})
	return done, err
}

// Root returns the root of the tree so far.
func (b *TreeBuilder) Root() (Hash, error) {
	if b.rng.End() == 0 {
		return hashFromBytes(rfc6962.DefaultHasher.EmptyRoot())
	}
	h, err := b.rng.GetRootHash(nil)
	if err != nil {
		return Hash{}, err
	}
	return hashFromBytes(h)
}

// LeavesOnly hides the subtrees of src: proofs through it fold leaves only (O(n)).
// A reader retries with it when a proof read through stored subtrees does not lead
// to the signed root, so a damaged subtree costs time, not the proof.
func LeavesOnly(src LeafSource) LeafSource { return leavesOnly{src} }

type leavesOnly struct{ src LeafSource }

func (l leavesOnly) LeafHashes(begin, end uint64) ([]Hash, error) {
	return l.src.LeafHashes(begin, end)
}
