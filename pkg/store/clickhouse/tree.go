package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

// The Merkle tree of each partition in tree order (migration 0003): audit_leaves
// holds every record's leaf hash by (partition, seq) and audit_subtrees the hashes of
// perfect subtrees of 256^k leaves, so a proof reads O(log n) rows instead of
// scanning audit_events (ordered by tenant and time) for every leaf it covers.
// The writer inserts both beside the events they describe (Sink.insertParts), each
// retried until stored, and both are a cache: a proof is checked against the signed
// root before it is served, a range they lack (records stored before the tables
// existed) is read from audit_events, and CheckTree / RebuildTree find and repair
// damage.

func treeLeavesQuery(db string, p int32, begin, end uint64) Query {
	return Query{"tree_leaves", "SELECT seq, leaf_hash FROM " + db + ".audit_leaves WHERE chain_partition = ? AND seq >= ? AND seq < ? ORDER BY seq", []any{uint32(p), begin, end}}
}

func leafHashesQuery(db string, p int32, begin, end uint64, days, all []uint32) Query {
	cond, dargs := dayFilter(days, all)
	return Query{"leaf_hashes", "SELECT seq, leaf_hash FROM " + db + ".audit_events WHERE chain_partition = ? AND seq >= ? AND seq < ? AND " + cond + " ORDER BY seq",
		append([]any{uint32(p), begin, end}, dargs...)}
}

func subtreesQuery(db string, p int32, level uint, ranges []chain.IndexRange) Query {
	conds := make([]string, len(ranges))
	args := []any{uint32(p), uint8(level)}
	for i, r := range ranges {
		conds[i] = "(idx >= ? AND idx < ?)"
		args = append(args, r.Begin, r.End)
	}
	return Query{"subtrees", "SELECT idx, hash FROM " + db + ".audit_subtrees WHERE chain_partition = ? AND level = ? AND (" + strings.Join(conds, " OR ") + ")", args}
}

// Leaves returns partition p's stored Merkle tree as a chain.TreeSource, for
// inclusion and consistency proofs. A missing seq is an error, never a silently
// shorter list.
func (s *Store) Leaves(ctx context.Context, p int32) chain.LeafSource {
	return storeTree{ctx: ctx, s: s, p: p}
}

// storeTree reads one partition's tree.
type storeTree struct {
	ctx context.Context
	s   *Store
	p   int32
}

var _ chain.TreeSource = storeTree{}

// LeafHashes reads audit_leaves, and audit_events where audit_leaves lacks a seq.
func (l storeTree) LeafHashes(begin, end uint64) ([]chain.Hash, error) {
	out := make([]chain.Hash, 0, end-begin)
	var days *seqDays // where the partition's rows are, read at the first fallback
	w := l.s.seqWindow()
	for lo := begin; lo < end; lo += min(w, end-lo) {
		hi := min(lo+w, end)
		got, err := l.read(treeLeavesQuery(l.s.db, l.p, lo, hi), lo)
		if err == nil && uint64(len(got)) != hi-lo {
			if days == nil {
				sd, err := l.s.seqDaysOf(l.ctx, l.p)
				if err != nil {
					return nil, err
				}
				days = &sd
			}
			got, err = l.eventLeaves(*days, lo, hi)
		}
		if err != nil {
			return nil, err
		}
		if uint64(len(got)) != hi-lo {
			return nil, fmt.Errorf("clickhouse: partition %d has no record at seq %d; run trailctl verify --store", l.p, lo+uint64(len(got)))
		}
		out = append(out, got...)
	}
	return out, nil
}

// eventLeaves reads the leaf hashes of seqs [lo, hi) from audit_events, in the day
// partitions sd says can hold them. Trusting the day summary is safe here: a day
// it wrongly leaves out makes a seq missing, an error, and a proof is checked
// against the signed root before it is served.
func (l storeTree) eventLeaves(sd seqDays, lo, hi uint64) ([]chain.Hash, error) {
	in := sd.mayHold(lo, hi)
	if len(in) == 0 {
		return nil, nil
	}
	return l.read(leafHashesQuery(l.s.db, l.p, lo, hi, in, sd.all), lo)
}

// read runs a (seq, leaf_hash) query ordered by seq and returns the contiguous run of
// hashes from seq begin, one per seq (a re-inserted row appears twice). It stops at
// the first missing seq.
func (l storeTree) read(q Query, begin uint64) ([]chain.Hash, error) {
	rows, err := l.s.conn.Query(l.ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: leaf hashes of partition %d: %w", l.p, err)
	}
	defer rows.Close()
	var out []chain.Hash
	for rows.Next() {
		var seq uint64
		var hex string
		if err := rows.Scan(&seq, &hex); err != nil {
			return nil, err
		}
		next := begin + uint64(len(out))
		if seq+1 == next {
			continue // the same seq again
		}
		if seq != next {
			break
		}
		var h chain.Hash
		if err := h.UnmarshalText([]byte(hex)); err != nil {
			return nil, fmt.Errorf("clickhouse: partition %d seq %d leaf_hash: %w", l.p, seq, err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// SubtreesMismatch implements proof.MismatchReporter: a proof had to be folded from
// the leaves because the stored subtrees did not lead to the signed root.
func (l storeTree) SubtreesMismatch(seq, size uint64) {
	slog.Default().Warn("clickhouse: stored subtrees of a partition do not lead to its signed root; the proof was folded from the leaves instead (slower). Delete the partition's rows from audit_subtrees and run Store.FillTree (or restart its writer) to rebuild them",
		"partition", l.p, "seq", seq, "tree_size", size)
}

// Subtrees implements chain.TreeSource.
func (l storeTree) Subtrees(level uint, ranges []chain.IndexRange) (map[uint64]chain.Hash, error) {
	out := map[uint64]chain.Hash{}
	if len(ranges) == 0 {
		return out, nil
	}
	q := subtreesQuery(l.s.db, l.p, level, ranges)
	rows, err := l.s.conn.Query(l.ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: subtrees of partition %d: %w", l.p, err)
	}
	defer rows.Close()
	for rows.Next() {
		var idx uint64
		var hex string
		if err := rows.Scan(&idx, &hex); err != nil {
			return nil, err
		}
		var h chain.Hash
		if err := h.UnmarshalText([]byte(hex)); err != nil {
			return nil, fmt.Errorf("clickhouse: partition %d subtree %d/%d: %w", l.p, level, idx, err)
		}
		out[idx] = h
	}
	return out, rows.Err()
}

// insertTree inserts the leaves of the chunks' rows and their subtrees into the tree
// tables.
func (s *Store) insertTree(ctx context.Context, chunks []chunk) error {
	if err := s.insertSubtrees(ctx, chunks); err != nil {
		return err
	}
	return s.insertColumns(ctx, "audit_leaves", leafColumnList, rowsOf(chunks))
}

// leafColumnList is the column order of audit_leaves inserts.
var leafColumnList = []eventColumn{
	column("chain_partition", func(x *eventRow) uint32 { return x.Partition }),
	column("seq", func(x *eventRow) uint64 { return x.Seq }),
	column("chained_at", func(x *eventRow) time.Time { return x.ChainedAt }),
	column("leaf_hash", func(x *eventRow) string { return x.LeafHash }),
}

// insertSubtrees inserts subtree hashes (a retried insert stores identical rows,
// which ReplacingMergeTree folds and readers take once).
func (s *Store) insertSubtrees(ctx context.Context, chunks []chunk) error {
	n := 0
	for _, c := range chunks {
		n += len(c.subtrees)
	}
	if n == 0 {
		return nil
	}
	b, err := s.prepareBatch(ctx, "INSERT INTO "+s.db+".audit_subtrees (chain_partition, level, idx, hash)")
	if err != nil {
		return fmt.Errorf("clickhouse: prepare subtrees insert: %w", err)
	}
	for _, c := range chunks {
		for _, st := range c.subtrees {
			if err := b.Append(uint32(c.p), st.Level, st.Index, st.Hash.String()); err != nil {
				b.Abort()
				return fmt.Errorf("clickhouse: append subtree: %w", err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d subtrees: %w", n, err)
	}
	return nil
}

// treeBuilder returns a builder continuing partition p's stored tree at size leaves,
// with the subtrees it computed because the store lacked them (to insert with the
// next rows).
func (s *Store) treeBuilder(ctx context.Context, p int32, size uint64) (*chain.TreeBuilder, []chain.Subtree, error) {
	b, filled, err := chain.NewTreeBuilder(s.Leaves(ctx, p), size)
	if err != nil {
		return nil, nil, fmt.Errorf("clickhouse: partition %d: %w", p, err)
	}
	return b, filled, nil
}

// extendTree appends n leaves to b, the i-th at(i) = (seq, leaf hash) in seq order
// from b.Size(), and returns the subtrees they complete appended to done.
func extendTree(b *chain.TreeBuilder, p int32, n int, at func(int) (uint64, chain.Hash), done []chain.Subtree) ([]chain.Subtree, error) {
	for i := range n {
		seq, leaf := at(i)
		if seq != b.Size() {
			return done, fmt.Errorf("clickhouse: partition %d: seq %d follows a tree of %d leaves", p, seq, b.Size())
		}
		var err error
		if done, err = b.Append(leaf, done); err != nil {
			return done, fmt.Errorf("clickhouse: partition %d seq %d: %w", p, seq, err)
		}
	}
	return done, nil
}

// FillTree stores the subtrees of partition p's first size leaves that
// audit_subtrees lacks, computed from the stored leaves, and returns how many. The
// writer does the same when it opens a partition; FillTree is for tools that fill a
// store without a writer (an upgrade of a quiet partition, benchmarks).
func (s *Store) FillTree(ctx context.Context, p int32, size uint64) (int, error) {
	_, filled, err := s.treeBuilder(ctx, p, size)
	if err != nil {
		return 0, err
	}
	return len(filled), s.insertSubtrees(ctx, []chunk{{p: p, subtrees: filled}})
}

// TreeCheck is what CheckTree found for one partition.
type TreeCheck struct {
	Partition int32
	// Size is the tree size checked: the partition's latest stored checkpoint.
	Size uint64
	// Missing counts subtrees the store lacked (computed from the leaves to check).
	Missing int
	// Match: the tree read through the stored leaves and subtrees has the
	// checkpoint's root. The checkpoint's signature is verify --store's to check.
	Match bool
}

// CheckTree folds partition p's tree at its latest stored checkpoint from the tree
// tables and compares the root with the checkpoint's. A mismatch means damaged
// leaves or subtrees: proofs still verify (they fall back to the events' leaves) but
// slowly, and RebuildTree repairs them. ok is false when p has no checkpoint.
func (s *Store) CheckTree(ctx context.Context, p int32) (c TreeCheck, ok bool, err error) {
	all, err := s.LatestCheckpoints(ctx)
	latest, has := all[p]
	if err != nil || !has {
		return c, false, err
	}
	cp, err := latest.Unverified()
	if err != nil {
		return c, false, fmt.Errorf("clickhouse: partition %d checkpoint: %w", p, err)
	}
	b, filled, err := s.treeBuilder(ctx, p, cp.Size)
	if err != nil {
		return c, false, err
	}
	root, err := b.Root()
	if err != nil {
		return c, false, err
	}
	return TreeCheck{Partition: p, Size: cp.Size, Missing: len(filled), Match: root == cp.Root}, true, nil
}

// RebuildTree replaces partition p's rows in the tree tables: its leaves are copied
// again from audit_events (server-side) and its subtrees computed from them. It
// returns the subtrees stored. Searches and proofs keep working meanwhile (a proof
// reads audit_events where leaves are missing); run it with the partition's writer
// stopped, or the writer's next rows may be deleted with the old ones.
func (s *Store) RebuildTree(ctx context.Context, p int32) (int, error) {
	for _, table := range []string{"audit_subtrees", "audit_leaves"} {
		if err := s.conn.Exec(ctx, "ALTER TABLE "+s.db+"."+table+" DELETE WHERE chain_partition = ?", uint32(p)); err != nil {
			return 0, fmt.Errorf("clickhouse: delete partition %d from %s: %w", p, table, err)
		}
	}
	if err := s.waitMutations(ctx); err != nil {
		return 0, err
	}
	if err := s.conn.Exec(ctx, "INSERT INTO "+s.db+".audit_leaves (chain_partition, seq, chained_at, leaf_hash) SELECT chain_partition, seq, chained_at, leaf_hash FROM "+s.db+".audit_events WHERE chain_partition = ?", uint32(p)); err != nil {
		return 0, fmt.Errorf("clickhouse: copy partition %d's leaves: %w", p, err)
	}
	// A repair trusts no summary: the highest seq comes from the rows.
	sd, err := s.scanSeqDays(ctx, p, 0, math.MaxUint64)
	if err != nil || len(sd.known) == 0 {
		return 0, err
	}
	return s.FillTree(ctx, p, sd.maxSeq()+1)
}

// waitMutations waits until the database's mutations (ALTER ... DELETE) are done.
func (s *Store) waitMutations(ctx context.Context) error {
	for {
		n, err := s.PendingMutations(ctx)
		if err != nil || n == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
