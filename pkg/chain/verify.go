package chain

import (
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/note"
)

// ProblemKind classifies what a verifier found.
type ProblemKind string

// The kinds of problem a Verifier reports.
const (
	// Modified: a record's content (event, time, position or link) does not
	// hash to its stored leaf hash.
	Modified ProblemKind = "modified"
	// BrokenLink: a record's prev_hash is not the leaf hash of the record
	// before it (that record was rewritten with a matching leaf hash, or the
	// link itself was altered).
	BrokenLink ProblemKind = "broken_link"
	// Deleted: records are missing, in the middle (a seq gap) or at the end
	// (a signed checkpoint covers records that are not there).
	Deleted ProblemKind = "deleted"
	// Inserted: a record claims a seq already taken, or belongs to another
	// partition.
	Inserted ProblemKind = "inserted"
	// Reordered: a record appears after a record with a higher seq.
	Reordered ProblemKind = "reordered"
	// BadSignature: a checkpoint's signature does not verify with any known
	// key, or its origin is not this log's.
	BadSignature ProblemKind = "bad_signature"
	// RootMismatch: the records up to a checkpoint do not hash to its signed
	// root: at least one record in the range was altered and re-hashed.
	RootMismatch ProblemKind = "root_mismatch"
	// Inconsistent: two validly signed checkpoints cannot both describe this
	// log (same size, different roots; or a later one does not extend an
	// earlier one): the signer forked the log.
	Inconsistent ProblemKind = "inconsistent_checkpoints"
)

// Problem is the first thing wrong with a partition's records, located as
// precisely as the evidence allows.
type Problem struct {
	Kind      ProblemKind `json:"kind"`
	Partition int32       `json:"partition"`
	// Seq is the first affected seq; LastSeq the last (equal for one record).
	Seq     uint64 `json:"seq"`
	LastSeq uint64 `json:"last_seq"`
	// CheckpointSize is the size of the checkpoint involved, if any.
	CheckpointSize uint64 `json:"checkpoint_size,omitempty"`
	Detail         string `json:"detail"`
}

func (p *Problem) Error() string {
	loc := fmt.Sprintf("partition %d seq %d", p.Partition, p.Seq)
	if p.LastSeq != p.Seq {
		loc = fmt.Sprintf("partition %d seq %d..%d", p.Partition, p.Seq, p.LastSeq)
	}
	return fmt.Sprintf("%s: %s: %s", loc, p.Kind, p.Detail)
}

// Summary describes what a successful verification covered.
type Summary struct {
	Partition int32  `json:"partition"`
	Records   uint64 `json:"records"`
	// FirstSeq and NextSeq bound the verified records: [FirstSeq, NextSeq).
	FirstSeq uint64 `json:"first_seq"`
	NextSeq  uint64 `json:"next_seq"`
	Root     Hash   `json:"root"`
	// Checkpoints is the number of signed checkpoints whose root matched.
	Checkpoints int `json:"checkpoints"`
	// AnchoredSize is the size of the largest verified checkpoint. Records
	// at or after it are correctly chained but not yet covered by a
	// signature: anyone able to write the store could have appended them.
	AnchoredSize uint64 `json:"anchored_size"`
}

// Unanchored returns how many verified records no signed checkpoint covers.
func (s Summary) Unanchored() uint64 {
	if s.AnchoredSize >= s.NextSeq {
		return 0
	}
	return s.NextSeq - max(s.AnchoredSize, s.FirstSeq)
}

type pendingCheckpoint struct {
	cp     SignedCheckpoint
	parsed Checkpoint // valid if err == nil
	err    error      // signature or origin failure
}

// Verifier walks one partition's records in storage order, with its
// checkpoints, and stops at the first problem. It holds O(log n) state plus
// the checkpoints, so memory stays flat however many records stream by.
type Verifier struct {
	origin    string
	partition int32
	chain     *Chain
	cps       []pendingCheckpoint // sorted by claimed size
	next      int                 // index into cps
	pending   *Record             // a record that arrived ahead of its seq
	problem   *Problem
	summary   Summary
}

// VerifyOption configures a Verifier.
type VerifyOption func(*verifyConfig)

type verifyConfig struct{ from *SignedCheckpoint }

// StartAt starts verification after the records cp covers instead of at seq
// 0: the first record must be seq cp.Size. The checkpoint's signature and
// compact range are checked first; earlier checkpoints are ignored.
func StartAt(cp SignedCheckpoint) VerifyOption {
	return func(c *verifyConfig) { c.from = &cp }
}

// NewVerifier prepares verification of one partition's log against the
// trusted public keys. Checkpoints may come in any order.
func NewVerifier(origin string, partition int32, verifiers note.Verifiers, checkpoints []SignedCheckpoint, opts ...VerifyOption) (*Verifier, error) {
	var cfg verifyConfig
	for _, o := range opts {
		o(&cfg)
	}
	v := &Verifier{origin: origin, partition: partition, chain: New(partition)}
	if cfg.from != nil {
		cp, err := cfg.from.Open(origin, verifiers)
		if err != nil {
			return nil, fmt.Errorf("chain: start checkpoint: %w", err)
		}
		if v.chain, err = cfg.from.restoreRange(partition, cp); err != nil {
			return nil, err
		}
		v.summary.FirstSeq = cp.Size
		v.summary.AnchoredSize = cp.Size
	}
	for _, s := range checkpoints {
		pc := pendingCheckpoint{cp: s}
		pc.parsed, pc.err = s.Open(origin, verifiers)
		if pc.err != nil {
			// Order an unverifiable checkpoint by what it claims, so the
			// problem is reported where it sits in the log.
			claimed, err := s.Unverified()
			if err != nil {
				return nil, fmt.Errorf("chain: checkpoint is not a signed note: %w", err)
			}
			pc.parsed = claimed
		}
		if pc.parsed.Size <= v.summary.FirstSeq && cfg.from != nil {
			continue
		}
		v.cps = append(v.cps, pc)
	}
	sort.SliceStable(v.cps, func(i, j int) bool { return v.cps[i].parsed.Size < v.cps[j].parsed.Size })
	v.summary.Partition = partition
	return v, nil
}

func (v *Verifier) fail(kind ProblemKind, seq, last uint64, cpSize uint64, format string, args ...any) error {
	v.problem = &Problem{Kind: kind, Partition: v.partition, Seq: seq, LastSeq: last, CheckpointSize: cpSize, Detail: fmt.Sprintf(format, args...)}
	return v.problem
}

// Add verifies the next record in storage order. It returns a *Problem at
// the first problem and the same problem on every later call.
func (v *Verifier) Add(r Record) error {
	if v.problem != nil {
		return v.problem
	}
	want := v.chain.Size()
	if p := v.pending; p != nil {
		v.pending = nil
		if r.Partition == v.partition && r.Seq == want {
			return v.fail(Reordered, want, want, 0, "record seq %d appears after seq %d", want, p.Seq)
		}
		return v.fail(Deleted, want, p.Seq-1, 0, "records %d..%d are missing (seq %d follows %d)", want, p.Seq-1, p.Seq, want-1)
	}
	switch {
	case r.Partition != v.partition:
		return v.fail(Inserted, r.Seq, r.Seq, 0, "record from partition %d in partition %d's log", r.Partition, v.partition)
	case r.Seq < want:
		if r.Seq == want-1 && r.LeafHash == v.chain.prev && r.ComputeLeafHash() == r.LeafHash {
			return v.fail(Inserted, r.Seq, r.Seq, 0, "an exact duplicate of record seq %d", r.Seq)
		}
		return v.fail(Inserted, r.Seq, r.Seq, 0, "a second record claims seq %d (seen after seq %d)", r.Seq, want-1)
	case r.Seq > want:
		rc := r
		v.pending = &rc
		return nil
	}
	if r.ComputeLeafHash() != r.LeafHash {
		return v.fail(Modified, r.Seq, r.Seq, 0, "content does not hash to the stored leaf hash %s", r.LeafHash)
	}
	if r.PrevHash != v.chain.prev {
		want := fmt.Sprintf("the leaf hash of seq %d", r.Seq-1)
		if first := v.summary.FirstSeq; r.Seq == first && first > 0 {
			want = fmt.Sprintf("the last leaf hash stored with the start checkpoint (size %d)", first)
		}
		return v.fail(BrokenLink, r.Seq, r.Seq, 0, "prev_hash %s is not %s (%s): that record was rewritten or this link altered",
			r.PrevHash, want, v.chain.prev)
	}
	if err := v.chain.appendLeaf(r.LeafHash); err != nil {
		return err
	}
	v.summary.Records++
	return v.checkpointsAt(v.chain.Size())
}

// checkpointsAt checks every checkpoint whose size the walk has reached.
// Checkpoints of equal size are judged together so that a fork (two valid
// signatures over different roots) is reported as such in any order.
func (v *Verifier) checkpointsAt(size uint64) error {
	for v.next < len(v.cps) && v.cps[v.next].parsed.Size <= size {
		cpSize := v.cps[v.next].parsed.Size
		end := v.next
		for end < len(v.cps) && v.cps[end].parsed.Size == cpSize {
			end++
		}
		group := v.cps[v.next:end]
		v.next = end
		lastSeq := max(cpSize, 1) - 1
		for _, pc := range group {
			if pc.err != nil {
				return v.fail(BadSignature, lastSeq, lastSeq, cpSize, "checkpoint at size %d: %v", cpSize, pc.err)
			}
		}
		if cpSize < size { // a size-0 checkpoint seen once the first record is in
			continue
		}
		root := v.chain.Root()
		var good, bad *pendingCheckpoint
		for i := range group {
			if group[i].parsed.Root == root {
				good = &group[i]
			} else {
				bad = &group[i]
			}
		}
		switch {
		case bad != nil && good != nil:
			return v.fail(Inconsistent, lastSeq, lastSeq, cpSize,
				"two validly signed checkpoints at size %d with different roots (%s and %s): the log was forked", cpSize, good.parsed.Root, bad.parsed.Root)
		case bad != nil:
			start := v.summary.AnchoredSize
			return v.fail(RootMismatch, start, lastSeq, cpSize,
				"records %d..%d do not hash to the signed root of the checkpoint at size %d: at least one of them was altered and re-hashed", start, lastSeq, cpSize)
		}
		if good.cp.LastLeaf != v.chain.prev {
			return v.fail(Modified, lastSeq, lastSeq, cpSize, "checkpoint at size %d stores last leaf hash %s, record %d has %s", cpSize, good.cp.LastLeaf, lastSeq, v.chain.prev)
		}
		v.summary.Checkpoints += len(group)
		v.summary.AnchoredSize = cpSize
	}
	return nil
}

// Finish ends the walk: records still pending or checkpoints beyond the
// last record mean records were deleted. It returns the summary, or the
// first problem found.
func (v *Verifier) Finish() (Summary, error) {
	if v.problem != nil {
		return Summary{}, v.problem
	}
	size := v.chain.Size()
	if p := v.pending; p != nil {
		return Summary{}, v.fail(Deleted, size, p.Seq-1, 0, "records %d..%d are missing (seq %d follows %d)", size, p.Seq-1, p.Seq, int64(size)-1)
	}
	if err := v.checkpointsAt(size); err != nil {
		return Summary{}, err
	}
	if v.next < len(v.cps) {
		cp := v.cps[v.next]
		if cp.err != nil {
			return Summary{}, v.fail(BadSignature, cp.parsed.Size-1, cp.parsed.Size-1, cp.parsed.Size, "checkpoint at size %d: %v", cp.parsed.Size, cp.err)
		}
		return Summary{}, v.fail(Deleted, size, cp.parsed.Size-1, cp.parsed.Size,
			"the signed checkpoint at size %d covers records %d..%d, which are missing", cp.parsed.Size, size, cp.parsed.Size-1)
	}
	v.summary.NextSeq = size
	v.summary.Root = v.chain.Root()
	return v.summary, nil
}

// Verify runs a Verifier over records in storage order.
func Verify(origin string, partition int32, verifiers note.Verifiers, records []Record, checkpoints []SignedCheckpoint, opts ...VerifyOption) (Summary, error) {
	v, err := NewVerifier(origin, partition, verifiers, checkpoints, opts...)
	if err != nil {
		return Summary{}, err
	}
	for _, r := range records {
		if err := v.Add(r); err != nil {
			return Summary{}, err
		}
	}
	return v.Finish()
}
