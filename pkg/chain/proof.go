package chain

import (
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// LeafSource gives proof generation read access to a partition's leaf
// hashes, wherever they are stored (ClickHouse, an S3 archive, memory).
type LeafSource interface {
	// LeafHashes returns the leaf hashes of seq begin up to, not including,
	// end. It must return exactly end−begin hashes or an error.
	LeafHashes(begin, end uint64) ([]Hash, error)
}

// MemoryLeaves is a LeafSource over a slice indexed by seq.
type MemoryLeaves []Hash

// LeafHashes implements LeafSource.
func (m MemoryLeaves) LeafHashes(begin, end uint64) ([]Hash, error) {
	if begin > end || end > uint64(len(m)) {
		return nil, fmt.Errorf("chain: leaves [%d, %d) out of range (have %d)", begin, end, len(m))
	}
	return m[begin:end], nil
}

// InclusionProof returns the RFC 6962 audit path proving that leaf index is
// in the tree of the given size.
func InclusionProof(src LeafSource, index, size uint64) ([]Hash, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("chain: inclusion proof: %w", err)
	}
	return materialise(src, nodes)
}

// ConsistencyProof returns the RFC 6962 proof that the tree of size1 is a
// prefix of the tree of size2.
func ConsistencyProof(src LeafSource, size1, size2 uint64) ([]Hash, error) {
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("chain: consistency proof: %w", err)
	}
	return materialise(src, nodes)
}

// materialise computes the hash of every node a proof needs: from stored subtrees
// when src is a TreeSource (O(log n) hashes read), otherwise from every leaf the
// nodes cover (O(n)).
func materialise(src LeafSource, nodes proof.Nodes) ([]Hash, error) {
	hashes, _, err := nodeHashes(src, nodes.IDs)
	if err != nil {
		return nil, err
	}
	rehashed, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("chain: proof rehash: %w", err)
	}
	out := make([]Hash, len(rehashed))
	for i, h := range rehashed {
		copy(out[i][:], h)
	}
	return out, nil
}

func toBytes(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// VerifyInclusion checks that leaf is at index in the tree described by cp
// (a checkpoint already opened with the public key).
func VerifyInclusion(leaf Hash, index uint64, cp Checkpoint, path []Hash) error {
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leaf[:], toBytes(path), cp.Root[:]); err != nil {
		return fmt.Errorf("chain: leaf %d not included in %s at size %d: %w", index, cp.Origin, cp.Size, err)
	}
	return nil
}

// VerifyConsistency checks that checkpoint older is a prefix of newer: the
// log only grew between them.
func VerifyConsistency(older, newer Checkpoint, path []Hash) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("%w: %q vs %q", ErrOrigin, older.Origin, newer.Origin)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, toBytes(path), older.Root[:], newer.Root[:]); err != nil {
		return fmt.Errorf("chain: checkpoints at sizes %d and %d are inconsistent: %w", older.Size, newer.Size, err)
	}
	return nil
}
