package chain

import (
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// Restore rebuilds a partition's chain from its durable tail, as a
// restarted chainer must (never from memory or a side file): the last
// signed checkpoint (nil if none was made yet) and every record after it,
// in seq order. It verifies the checkpoint's signature and origin, that its
// compact range folds to the signed root, and that every later record sits
// at the next seq, links to its predecessor and hashes to its leaf hash. The
// result continues the same tree: its next Append gets seq cp.Size+len(after).
func Restore(origin string, partition int32, cp *SignedCheckpoint, verifiers note.Verifiers, after []Record) (*Chain, error) {
	c := New(partition)
	if cp != nil {
		parsed, err := cp.Open(origin, verifiers)
		if err != nil {
			return nil, fmt.Errorf("chain: restore partition %d: %w", partition, err)
		}
		if c, err = cp.restoreRange(partition, parsed); err != nil {
			return nil, fmt.Errorf("chain: restore partition %d: %w", partition, err)
		}
	}
	for i := range after {
		r := &after[i]
		switch {
		case r.Partition != partition:
			return nil, fmt.Errorf("chain: restore partition %d: record seq %d belongs to partition %d", partition, r.Seq, r.Partition)
		case r.Seq != c.Size():
			return nil, fmt.Errorf("chain: restore partition %d: expected seq %d, got %d", partition, c.Size(), r.Seq)
		case r.PrevHash != c.prev:
			return nil, fmt.Errorf("chain: restore partition %d: seq %d prev_hash %s does not link to %s", partition, r.Seq, r.PrevHash, c.prev)
		case r.ComputeLeafHash() != r.LeafHash:
			return nil, fmt.Errorf("chain: restore partition %d: seq %d content does not match its leaf hash", partition, r.Seq)
		}
		if err := c.appendLeaf(r.LeafHash); err != nil {
			return nil, err
		}
	}
	return c, nil
}
