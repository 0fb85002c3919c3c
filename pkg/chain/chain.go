package chain

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

var rangeFactory = compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Chain is the state of one partition's chain: the next seq, the last leaf
// hash and the Merkle compact range over every leaf so far. It is not safe
// for concurrent use; a partition has exactly one writer.
type Chain struct {
	partition int32
	prev      Hash
	rng       *compact.Range
	// sib are the left siblings of the last leaf inside the compact range's
	// last perfect subtree (its inclusion proof there, in range order), so a
	// checkpoint can authenticate LastLeaf; nil when unknown (a chain restored
	// from a checkpoint that did not carry them).
	sib   [][]byte
	known bool
}

// New returns the empty chain of a partition.
func New(partition int32) *Chain {
	return &Chain{partition: partition, rng: rangeFactory.NewEmptyRange(0), known: true}
}

// Partition returns the partition this chain belongs to.
func (c *Chain) Partition() int32 { return c.partition }

// Size returns the number of records appended so far, which is also the next
// seq.
func (c *Chain) Size() uint64 { return c.rng.End() }

// LastLeafHash returns the leaf hash of the last record (zeros when empty):
// the prev_hash of the next record.
func (c *Chain) LastLeafHash() Hash { return c.prev }

// Root returns the Merkle tree root over all records so far (the RFC 6962
// empty-tree hash for an empty chain).
func (c *Chain) Root() Hash {
	if c.rng.End() == 0 {
		h, _ := hashFromBytes(rfc6962.DefaultHasher.EmptyRoot())
		return h
	}
	root, err := c.rng.GetRootHash(nil)
	if err != nil {
		panic(fmt.Sprintf("chain: compact range root: %v", err)) // cannot happen for a range starting at 0
	}
	h, _ := hashFromBytes(root)
	return h
}

// RangeHashes returns the compact-range hashes of [0, Size): the state a
// checkpoint stores so that the tree can be continued later.
func (c *Chain) RangeHashes() []Hash { return hashesOf(c.rng.Hashes()) }

// hashesOf copies the compact range's node slices into Hashes.
func hashesOf(hs [][]byte) []Hash {
	out := make([]Hash, len(hs))
	for i, h := range hs {
		copy(out[i][:], h)
	}
	return out
}

// slicesOf is hashesOf's inverse, sharing hs's arrays.
func slicesOf(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// ErrEmptyEvent is returned by Append for an empty event.
var ErrEmptyEvent = errors.New("chain: event bytes are empty")

// Append chains one canonical event. chainedAt must come from the input
// record (its Kafka timestamp), not from a clock: the output is then a pure
// function of the input and the previous state. The returned record shares
// event's backing array.
func (c *Chain) Append(event []byte, chainedAt time.Time) (Record, error) {
	if len(event) == 0 {
		return Record{}, ErrEmptyEvent
	}
	if len(event) > 1<<32-1 {
		return Record{}, fmt.Errorf("chain: event of %d bytes does not fit the leaf encoding", len(event))
	}
	r := Record{Partition: c.partition, Seq: c.Size(), ChainedAt: chainedAt.UTC(), PrevHash: c.prev, Event: event}
	r.LeafHash = r.ComputeLeafHash()
	if err := c.appendLeaf(r.LeafHash); err != nil {
		return Record{}, err
	}
	return r, nil
}

// appendLeaf adds a leaf whose position and link the caller has checked.
func (c *Chain) appendLeaf(leaf Hash) error {
	// The nodes the append merges away are the new leaf's left siblings in
	// the last perfect subtree: as many as the new size has trailing zeros.
	// The range never mutates a node's bytes, so keeping the slices is safe.
	hs := c.rng.Hashes()
	k := bits.TrailingZeros64(c.rng.End() + 1)
	if k > len(hs) {
		return fmt.Errorf("chain: merkle append: range of size %d has %d nodes", c.rng.End(), len(hs))
	}
	c.sib = append(c.sib[:0], hs[len(hs)-k:]...)
	c.known = true
	if err := c.rng.Append(leaf[:], nil); err != nil {
		return fmt.Errorf("chain: merkle append: %w", err)
	}
	c.prev = leaf
	return nil
}
