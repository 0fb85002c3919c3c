package chain

import (
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// Restore rebuilds a partition's chain from its durable tail, as a
// restarted chainer must (never from memory or a side file): the last
// signed checkpoint (nil if none was made yet) and every record after it,
// in seq order. It runs the same checks as [Verifier] — the checkpoint's
// signature, origin and compact range, then every record's seq, link and
// leaf hash — so a tail that would fail verification is never continued.
// The result continues the same tree: its next Append gets seq
// cp.Size+len(after).
func Restore(origin string, partition int32, cp *SignedCheckpoint, verifiers note.Verifiers, after []Record) (*Chain, error) {
	var opts []VerifyOption
	if cp != nil {
		opts = append(opts, StartAt(*cp))
	}
	v, err := NewVerifier(origin, partition, verifiers, nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("chain: restore partition %d: %w", partition, err)
	}
	for _, r := range after {
		if err := v.Add(r); err != nil {
			return nil, fmt.Errorf("chain: restore partition %d: %w", partition, err)
		}
	}
	if _, err := v.Finish(); err != nil {
		return nil, fmt.Errorf("chain: restore partition %d: %w", partition, err)
	}
	return v.chain, nil
}

// RestoreCheckpoint rebuilds a partition's chain from its last signed
// checkpoint alone, for a caller that has established that no record was
// chained after it (the chainer: its committed input position equals the
// one the checkpoint covers) and whose records before it are gone
// (retention). Without the record at cp.Size to check LastLeaf against, the
// checkpoint's LastLeafProof must authenticate it; a checkpoint without one
// fails with an error wrapping [ErrLastLeafUnproven].
func RestoreCheckpoint(origin string, partition int32, cp SignedCheckpoint, verifiers note.Verifiers) (*Chain, error) {
	parsed, err := cp.Open(origin, verifiers)
	if err != nil {
		return nil, fmt.Errorf("chain: restore partition %d: %w", partition, err)
	}
	// restoreRange checks the proof when there is one; here there must be.
	c, err := cp.restoreRange(partition, parsed)
	if err != nil {
		return nil, fmt.Errorf("chain: restore partition %d: %w", partition, err)
	}
	if !c.known {
		return nil, fmt.Errorf("chain: restore partition %d from its checkpoint at size %d: %w", partition, parsed.Size, ErrLastLeafUnproven)
	}
	return c, nil
}
