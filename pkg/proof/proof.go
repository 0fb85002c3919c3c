// Package proof builds and checks self-contained inclusion proofs: one audit record,
// the RFC 6962 audit path and the signed checkpoint it leads to. A bundle is checked
// offline with nothing but the log's public key.
//
// # Checking a bundle by hand
//
//  1. Verify the Ed25519 signature on checkpoint (a golang.org/x/mod/sumdb/note
//     signed note) with the trusted public key. Its body is three lines: the origin
//     (<deployment>/<topic>/<partition>), the tree size N and the base64 root hash R.
//     If you know which log the record must come from, compare the origin too.
//  2. Check tree_size = N and record.seq < N.
//  3. Recompute the leaf hash: SHA-256 of 0x00 followed by the leaf input (version
//     byte 1, partition as 4 big-endian bytes, seq as 8, chained_at as 8 bytes of Unix
//     nanoseconds, the 32-byte prev_hash, the 4-byte length of the event and the
//     event's canonical bytes as they appear in record.event). It must equal
//     record.leaf_hash.
//  4. Fold the audit path (RFC 6962 section 2.1.1, inclusion proof of index seq in
//     a tree of size N) from the leaf hash; the result must equal R.
//
// Changing any byte of the event, the record's position, the path or the checkpoint
// makes one of these steps fail.
package proof

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

// Version is the bundle format this package writes.
const Version = 1

// Bundle proves that Record is in the log whose signed checkpoint is Checkpoint.
type Bundle struct {
	Version int `json:"version"`
	// Origin is the checkpoint's origin, repeated for readers; the signed note is
	// authoritative.
	Origin     string       `json:"origin"`
	Record     chain.Record `json:"record"`
	TreeSize   uint64       `json:"tree_size"`
	Inclusion  []chain.Hash `json:"inclusion"`
	Checkpoint string       `json:"checkpoint"`
}

// Build proves rec in the tree of the signed checkpoint cp, reading leaf hashes from
// leaves. It checks the result before returning it, so a store whose leaves do not
// add up to the signed root yields an error, never a bundle that fails later.
func Build(rec chain.Record, cp chain.SignedCheckpoint, leaves chain.LeafSource) (Bundle, error) {
	c, err := cp.Unverified()
	if err != nil {
		return Bundle{}, fmt.Errorf("proof: %w", err)
	}
	if rec.Seq >= c.Size {
		return Bundle{}, fmt.Errorf("proof: checkpoint of size %d does not cover seq %d yet; retry once the next checkpoint is signed", c.Size, rec.Seq)
	}
	path, err := chain.InclusionProof(leaves, rec.Seq, c.Size)
	if err != nil {
		return Bundle{}, fmt.Errorf("proof: %w", err)
	}
	err = chain.VerifyInclusion(rec.ComputeLeafHash(), rec.Seq, c, path)
	if _, tree := leaves.(chain.TreeSource); err != nil && tree {
		// The stored subtrees are a cache of the leaves: if they do not lead to the
		// signed root, the leaves alone decide.
		if path, err = chain.InclusionProof(chain.LeavesOnly(leaves), rec.Seq, c.Size); err != nil {
			return Bundle{}, fmt.Errorf("proof: %w", err)
		}
		if err = chain.VerifyInclusion(rec.ComputeLeafHash(), rec.Seq, c, path); err == nil {
			if r, ok := leaves.(MismatchReporter); ok {
				r.SubtreesMismatch(rec.Seq, c.Size)
			}
		}
	}
	if err != nil {
		return Bundle{}, fmt.Errorf("proof: the stored log does not prove partition %d seq %d against its own checkpoint (run trailctl verify --store): %w", rec.Partition, rec.Seq, err)
	}
	return Bundle{Version: Version, Origin: c.Origin, Record: rec, TreeSize: c.Size, Inclusion: path, Checkpoint: string(cp.Note)}, nil
}

// MismatchReporter is implemented by a leaf source that wants to hear when its
// stored subtrees did not lead to the signed root while its leaves did: the proof
// was served from the leaves, and the subtrees are damaged.
type MismatchReporter interface {
	SubtreesMismatch(seq, size uint64)
}

// ErrInvalid wraps every reason a bundle fails verification.
var ErrInvalid = errors.New("proof: bundle does not verify")

// Parse reads a bundle. Bundles written before the version field existed are
// accepted as version 1.
func Parse(b []byte) (Bundle, error) {
	var pb Bundle
	if err := json.Unmarshal(b, &pb); err != nil {
		return pb, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if pb.Version == 0 {
		pb.Version = Version
	}
	if pb.Version != Version {
		return pb, fmt.Errorf("%w: version %d; this build reads version %d", ErrInvalid, pb.Version, Version)
	}
	return pb, nil
}

// Verify checks the bundle with the trusted keys and returns the checkpoint it is
// proven against. origin, when not empty, is the origin the checkpoint must have.
func (b Bundle) Verify(origin string, verifiers note.Verifiers) (chain.Checkpoint, error) {
	sc := chain.SignedCheckpoint{Note: chain.NoteText(b.Checkpoint)}
	cp, err := sc.Open(origin, verifiers)
	if err != nil {
		return cp, fmt.Errorf("%w: checkpoint: %v", ErrInvalid, err)
	}
	if b.Origin != "" && b.Origin != cp.Origin {
		return cp, fmt.Errorf("%w: origin %q differs from the signed origin %q", ErrInvalid, b.Origin, cp.Origin)
	}
	if cp.Size != b.TreeSize {
		return cp, fmt.Errorf("%w: tree_size %d differs from the signed size %d", ErrInvalid, b.TreeSize, cp.Size)
	}
	if want := fmt.Sprintf("/%d", b.Record.Partition); len(cp.Origin) < len(want) || cp.Origin[len(cp.Origin)-len(want):] != want {
		return cp, fmt.Errorf("%w: record of partition %d proven against the log %s", ErrInvalid, b.Record.Partition, cp.Origin)
	}
	leaf := b.Record.ComputeLeafHash()
	if leaf != b.Record.LeafHash {
		return cp, fmt.Errorf("%w: the record does not hash to its leaf_hash (content or position changed)", ErrInvalid)
	}
	if err := chain.VerifyInclusion(leaf, b.Record.Seq, cp, b.Inclusion); err != nil {
		return cp, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return cp, nil
}

// Source is a stored log proofs are read from (*clickhouse.Store is one).
type Source interface {
	// ProofCheckpoint returns the first signed checkpoint of partition p covering
	// seq (latest: the partition's latest), and whether there is one.
	ProofCheckpoint(ctx context.Context, p int32, seq uint64, latest bool) (chain.SignedCheckpoint, bool, error)
	// Leaves reads partition p's leaf hashes.
	Leaves(ctx context.Context, p int32) chain.LeafSource
}

// NotCoveredError: the record is stored, but no signed checkpoint covers it yet.
// Retrying after the next checkpoint (seconds, at the chainer's interval) succeeds.
type NotCoveredError struct {
	Partition int32
	Seq       uint64
}

func (e *NotCoveredError) Error() string {
	return fmt.Sprintf("partition %d seq %d is not covered by a signed checkpoint yet; retry after the next one", e.Partition, e.Seq)
}

// ForRecord proves the stored record rec against the first signed checkpoint that
// covers it (the same bundle every time), or with latest against its partition's
// latest checkpoint. The query API and trailctl both prove through it.
func ForRecord(ctx context.Context, src Source, rec chain.Record, latest bool) (Bundle, error) {
	cp, ok, err := src.ProofCheckpoint(ctx, rec.Partition, rec.Seq, latest)
	if err != nil {
		return Bundle{}, err
	}
	if !ok {
		return Bundle{}, &NotCoveredError{Partition: rec.Partition, Seq: rec.Seq}
	}
	return Build(rec, cp, src.Leaves(ctx, rec.Partition))
}
