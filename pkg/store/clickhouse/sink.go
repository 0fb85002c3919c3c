package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/trailkeep/trailkeep/internal/parallel"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/sink"
)

// Sink stores chained records and signed checkpoints in ClickHouse. It is the
// ClickHouse writer's destination behind a sink.Runner (see Writer), so the writer
// consumes, batches, commits, dead-letters and watches for stalls exactly as every
// exporter does; what is particular to ClickHouse lives here:
//
//   - Idempotence on (partition, seq): per partition it knows the highest stored seq
//     (read from ClickHouse when the Runner opens the partition) and skips what is
//     already stored, so a re-delivery never duplicates a row.
//   - No holes: a record beyond the next expected seq means rows ClickHouse
//     acknowledged are missing; the Sink refuses it as Fatal (ErrGap) and the Runner
//     stops without committing, rather than store a chain with a hole.
//   - Few, large inserts (group commit): every insert is a MergeTree part the server
//     writes and later merges, so the batches of all partitions go to ClickHouse
//     together. The next insert starts once the rows queued by all partitions reach
//     BatchRows or the oldest has waited BatchAge (and the running insert ended):
//     the threshold is the whole writer's, not each partition's, so a partition's
//     remainder does not wait out BatchAge while others' rows could fill the
//     insert. Two exceptions: after a full insert, once every partition has caught
//     up (Batch.CaughtUp) the remainder goes at once, so working off a backlog does
//     not end with a BatchAge wait. Nor does a group holding a batch taken from a
//     full buffer (Batch.Full) wait: its partition sends no more until the insert
//     ends, so with large events BatchRows could never be reached. Batches are
//     accepted (Send) while earlier ones are being inserted, so decoding overlaps
//     the server's work.
//   - Inserts happen one at a time, in the order batches were accepted, and a
//     failed insert is retried (after dropping what ClickHouse did store: an insert
//     whose acknowledgement was lost may have been applied; not resent until
//     ClickHouse has answered what it holds) before any later one is sent: a
//     partition's rows never land out of order or twice, so a later batch never
//     hides an earlier one that failed.
//   - A stored checkpoint never covers rows that are not stored: a checkpoint waits
//     until its partition's rows up to its size are in ClickHouse.
//   - A closed (revoked) partition's rows leave the queue, and closing waits for an
//     insert attempt that carries them, so the next owner, which reads what is
//     stored, never inserts the same rows beside it.
type Sink struct {
	store *Store
	cfg   SinkConfig

	mu     sync.Mutex
	parts  map[int32]*stored // chained partitions the Runner opened
	moved  chan struct{}     // closed (and replaced) when a stored seq advances
	totals WriterStats
	// lastFull: the last insert carried BatchRows or more, i.e. the writer was
	// working off a backlog (see maybeInsert).
	lastFull bool
	next     *group        // accepting rows for the insert after the running one
	flying   *group        // being inserted (or retried); nil when idle
	wake     chan struct{} // cuts a retry's backoff short (a partition closed)

	// building admits one batch at a time into buildRows, which already uses
	// every core: partitions decoding side by side would only crowd out the
	// running insert and the ClickHouse server on the same cores.
	building chan struct{}
}

// stored is what the Sink knows of one partition.
type stored struct {
	maxSeq   int64 // highest seq in ClickHouse; -1: none
	accepted int64 // highest seq stored or queued for insert
	caughtUp bool  // the partition's last batch was Batch.CaughtUp
	// tree is the partition's Merkle tree up to accepted; filled holds subtrees
	// computed at open because the store lacked them, to go with the next insert.
	tree   *chain.TreeBuilder
	filled []chain.Subtree
}

// group is the rows of one insert, from every partition that sent a batch while
// the previous insert ran: one chunk per batch, each of one partition in seq order.
type group struct {
	chunks []chunk
	// tree is the chunks' part of the Merkle tree tables (leaves, subtrees),
	// taken when the insert starts and inserted beside the events; nil once
	// stored. It is retried on its own: events stored without it still need it.
	tree    []chunk
	since   time.Time     // when the first chunk was queued: BatchAge runs from here
	full    bool          // a chunk's batch was sink.Batch.Full: go without waiting for BatchAge
	timer   *time.Timer   // starts the insert at since+BatchAge if BatchRows is not reached first
	done    chan struct{} // closed once the rows are stored (or dropped: their partition closed)
	attempt chan struct{} // closed when the running insert attempt ends; nil between attempts
}

// chunk is one batch's rows, and the subtrees of the partition's tree they
// complete.
type chunk struct {
	p        int32
	rows     []eventRow
	subtrees []chain.Subtree
}

func (g *group) size() (n int) {
	for _, c := range g.chunks {
		n += len(c.rows)
	}
	return n
}

// carries says whether g holds rows of partition p, events or tree.
func (g *group) carries(p int32) bool {
	return slices.ContainsFunc(g.chunks, func(c chunk) bool { return c.p == p }) ||
		slices.ContainsFunc(g.tree, func(c chunk) bool { return c.p == p })
}

// drop takes partition p's chunks out of g (into new slices: the old ones may be
// being inserted).
func (g *group) drop(p int32) {
	other := func(c chunk) bool { return c.p != p }
	g.chunks = keepChunks(g.chunks, other)
	if g.tree != nil {
		g.tree = keepChunks(g.tree, other)
	}
}

// keepChunks returns the chunks keep accepts, in a new slice.
func keepChunks(cs []chunk, keep func(chunk) bool) []chunk {
	out := make([]chunk, 0, len(cs))
	for _, c := range cs {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

var (
	_ sink.AckSink        = (*Sink)(nil)
	_ sink.CheckpointSink = (*Sink)(nil)
	_ sink.Opener         = (*Sink)(nil)
	_ sink.Decoder        = (*Sink)(nil)
)

// SinkConfig configures a Sink. Zero values take the documented defaults.
type SinkConfig struct {
	// An insert starts once the rows queued by all partitions reach BatchRows or
	// the oldest of them has waited BatchAge, and the previous insert ended.
	// Defaults 10,000 and 1s.
	BatchRows int
	BatchAge  time.Duration
	// InsertTimeout bounds one insert; a slower one fails and is retried.
	// Default 1m.
	InsertTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// NewSink returns a Sink on an opened and migrated Store.
func NewSink(store *Store, cfg SinkConfig) *Sink {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 10000
	}
	if cfg.BatchAge <= 0 {
		cfg.BatchAge = time.Second
	}
	if cfg.InsertTimeout <= 0 {
		cfg.InsertTimeout = time.Minute
	}
	return &Sink{store: store, cfg: cfg, parts: map[int32]*stored{},
		moved: make(chan struct{}), wake: make(chan struct{}, 1), building: make(chan struct{}, 1)}
}

// Name is "clickhouse": the label of the writer's series among the Runner's metrics.
func (s *Sink) Name() string { return "clickhouse" }

// DecodeRecord reads the chained record only: Send parses the event into its row,
// so the Runner's header parse would be a second pass over every event.
func (s *Sink) DecodeRecord(offset int64, value []byte) (sink.Record, error) {
	rec := sink.Record{Offset: offset, Value: value}
	err := rec.Chain.UnmarshalJSON(value)
	return rec, err
}

// Stats returns a snapshot of the counters.
func (s *Sink) Stats() WriterStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.totals
}

// OpenPartition reads partition p's highest stored seq, after waiting for inserts
// still running on the server (a previous owner's).
func (s *Sink) OpenPartition(ctx context.Context, p int32) error {
	if err := s.store.WaitInserts(ctx); err != nil {
		return err
	}
	top, err := s.storedTop(ctx, p)
	if err != nil {
		return err
	}
	tree, filled, err := s.store.treeBuilder(ctx, p, uint64(top+1))
	if err != nil {
		return err
	}
	if len(filled) > 0 {
		s.cfg.Logger.Info("clickhouse writer: computed subtrees the store lacked (records stored before audit_subtrees existed); storing them with the next insert", "partition", p, "subtrees", len(filled))
	}
	s.mu.Lock()
	s.parts[p] = &stored{maxSeq: top, accepted: top, tree: tree, filled: filled}
	s.mu.Unlock()
	return nil
}

// storedTop returns the highest seq of partition p in ClickHouse, -1 when none.
func (s *Sink) storedTop(ctx context.Context, p int32) (int64, error) {
	seq, ok, err := s.store.MaxSeq(ctx, p)
	if err != nil || !ok {
		return -1, err
	}
	return int64(seq), nil
}

// ClosePartition forgets partition p and takes its rows out of the queue; if an
// insert attempt carrying them runs, it returns once that attempt ended.
func (s *Sink) ClosePartition(p int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.parts, p)
	if s.next != nil {
		s.next.drop(p)
	}
	for g := s.flying; g != nil && g.carries(p); g = s.flying {
		if a := g.attempt; a != nil {
			s.mu.Unlock()
			<-a
			s.mu.Lock()
			continue
		}
		g.drop(p)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Deliver stores the batch's records that ClickHouse does not hold yet.
func (s *Sink) Deliver(ctx context.Context, b *sink.Batch) error {
	a, err := s.Send(ctx, b)
	if err != nil {
		return err
	}
	return a.Wait(ctx)
}

// Send queues the batch's records that are neither stored nor queued for the next
// insert; the Ack is done once they are stored.
func (s *Sink) Send(_ context.Context, b *sink.Batch) (sink.Ack, error) {
	s.mu.Lock()
	st := s.parts[b.Partition]
	var accepted int64
	if st != nil {
		accepted = st.accepted
	}
	s.mu.Unlock()
	if st == nil {
		return nil, sink.Fatalf("partition %d was not opened", b.Partition)
	}
	// The Runner sends a partition's batches one at a time, so accepted cannot
	// change between here and the update below.
	keep, skipped, err := admit(b, accepted)
	if err != nil {
		return nil, err
	}
	s.building <- struct{}{}
	rows, err := buildRows(b.Records, keep)
	<-s.building
	if err != nil {
		return nil, err
	}
	var subtrees []chain.Subtree
	if len(keep) > 0 {
		if subtrees, err = extendTree(st.tree, b.Partition, len(keep), func(i int) (uint64, chain.Hash) {
			c := &b.Records[keep[i]].Chain
			return c.Seq, c.LeafHash
		}, st.filled); err != nil {
			return nil, sink.Fatalf("%w", err)
		}
		st.filled = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.totals.Skipped += int64(skipped)
	if len(rows) == 0 {
		return storedAck{}, nil
	}
	st.accepted = int64(rows[len(rows)-1].Seq)
	st.caughtUp = b.CaughtUp
	g := s.next
	if g == nil {
		g = &group{done: make(chan struct{}), since: time.Now()}
		s.next = g
	}
	g.chunks = append(g.chunks, chunk{p: b.Partition, rows: rows, subtrees: subtrees})
	g.full = g.full || b.Full
	s.maybeInsert()
	return groupAck{g}, nil
}

// storedAck is the Ack of a batch that was stored already.
type storedAck struct{}

func (storedAck) Wait(context.Context) error { return nil }

// groupAck waits for the insert carrying a batch.
type groupAck struct{ g *group }

func (a groupAck) Wait(ctx context.Context) error {
	select {
	case <-a.g.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maybeInsert starts inserting the next group if no insert runs and the group is
// due (BatchRows rows, its oldest waited BatchAge, or it holds a batch taken from a
// full buffer: that partition cannot send more until this insert ends, so with
// large events BatchRows might never be reached); otherwise it makes sure a timer
// will look again when the group's age is up. Called with s.mu held.
func (s *Sink) maybeInsert() {
	g := s.next
	if s.flying != nil || g == nil {
		return
	}
	due := g.since.Add(s.cfg.BatchAge)
	if g.size() < s.cfg.BatchRows && !g.full && time.Now().Before(due) && !s.backlogDrained() {
		if g.timer == nil {
			g.timer = time.AfterFunc(time.Until(due), func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				s.maybeInsert()
			})
		}
		return
	}
	if g.timer != nil {
		g.timer.Stop()
	}
	s.next, s.flying = nil, g
	go s.insertGroup(g)
}

// backlogDrained: the last insert was a full one and every partition has caught
// up since, so the rows queued are a backlog's remainder and nothing more is
// coming soon. They go at once instead of waiting out BatchAge. A steady trickle
// never has a full insert before it, so it stays at about one insert per
// BatchAge. Called with s.mu held.
func (s *Sink) backlogDrained() bool {
	if !s.lastFull || len(s.parts) == 0 {
		return false
	}
	for _, st := range s.parts {
		if !st.caughtUp {
			return false
		}
	}
	return true
}

// insertGroup inserts g, retrying until it is stored, then starts the next group
// if it is due. The events and the tree's rows go side by side (two inserts on the
// store's two insert connections); each is retried until it is stored.
func (s *Sink) insertGroup(g *group) {
	s.mu.Lock()
	g.tree = g.chunks
	for attempt := 1; ; attempt++ {
		chunks, tree := g.chunks, g.tree
		if len(chunks) == 0 && len(tree) == 0 {
			break // stored, or every partition of the group closed; s.mu stays held for below
		}
		g.attempt = make(chan struct{})
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.InsertTimeout)
		rowsErr, treeErr := s.store.insertRows(ctx, chunks, tree)
		cancel()
		s.mu.Lock()
		close(g.attempt)
		g.attempt = nil
		if treeErr == nil {
			g.tree = nil
		}
		if rowsErr == nil && len(chunks) > 0 {
			s.stored(chunks)
			g.chunks = nil
		}
		if rowsErr == nil && treeErr == nil {
			break
		}
		s.mu.Unlock()
		s.retryAfter(g, attempt, errors.Join(rowsErr, treeErr))
		s.mu.Lock()
	}
	close(g.done)
	s.flying = nil
	s.maybeInsert()
	s.mu.Unlock()
}

// rowsOf returns the rows of each chunk.
func rowsOf(chunks []chunk) [][]eventRow {
	rows := make([][]eventRow, len(chunks))
	for i, c := range chunks {
		rows[i] = c.rows
	}
	return rows
}

// stored records that chunks are in ClickHouse. Called with s.mu held.
func (s *Sink) stored(chunks []chunk) {
	s.totals.Batches++
	n := 0
	for _, c := range chunks {
		n += len(c.rows)
		if st := s.parts[c.p]; st != nil {
			st.maxSeq = max(st.maxSeq, int64(c.rows[len(c.rows)-1].Seq))
		}
	}
	s.totals.Rows += int64(n)
	s.lastFull = n >= s.cfg.BatchRows
	close(s.moved)
	s.moved = make(chan struct{})
}

// retryAfter waits out the backoff after a failed insert (cut short when a
// partition closes), then drops from g what ClickHouse stored nonetheless. It
// returns only once that is known: the failed insert may have been applied (its
// acknowledgement lost), so sending g again before reading what is stored would
// store those rows twice. While ClickHouse cannot answer (it is down, which is
// often why the insert failed), it keeps waiting and asking, with the backoff
// growing as for inserts.
func (s *Sink) retryAfter(g *group, attempt int, err error) {
	s.cfg.Logger.Warn("clickhouse writer: insert failed; retrying", "rows", g.size(), "attempt", attempt, "in", insertBackoff(attempt), "err", err)
	for ; ; attempt++ {
		select {
		case <-time.After(insertBackoff(attempt)):
		case <-s.wake:
		}
		err := s.dropStored(g)
		if err == nil {
			return
		}
		s.cfg.Logger.Warn("clickhouse writer: re-reading stored maxima failed; not retrying the insert until it succeeds", "attempt", attempt, "in", insertBackoff(attempt+1), "err", err)
	}
}

// insertBackoff is the wait before retry attempt n+1: 1s, doubling to 30s.
func insertBackoff(attempt int) time.Duration {
	return min(30*time.Second, time.Duration(1<<min(attempt-1, 5))*time.Second)
}

// dropStored removes from g the rows ClickHouse already holds.
func (s *Sink) dropStored(g *group) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.InsertTimeout)
	defer cancel()
	s.mu.Lock()
	parts := map[int32]bool{}
	for _, c := range g.chunks {
		parts[c.p] = true
	}
	s.mu.Unlock()
	// One read of what ClickHouse holds serves every partition of g.
	heads, err := s.store.maxSeqs(ctx, nil)
	if err != nil {
		return err
	}
	tops := map[int32]int64{}
	for p := range parts {
		tops[p] = -1
		if seq, ok := heads[p]; ok {
			tops[p] = int64(seq)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// What ClickHouse holds is now known; a partition this Sink holds learns it
	// here, since a group whose every row was stored before its acknowledgement
	// was lost is never reported by stored(), and waitStored trusts maxSeq.
	advanced := false
	for p, top := range tops {
		if st := s.parts[p]; st != nil && top > st.maxSeq {
			st.maxSeq, advanced = top, true
		}
	}
	if advanced {
		close(s.moved)
		s.moved = make(chan struct{})
	}
	keep := make([]chunk, 0, len(g.chunks))
	for _, c := range g.chunks {
		top, ok := tops[c.p]
		if !ok {
			keep = append(keep, c)
			continue
		}
		// A chunk is one partition's rows in seq order: what is stored is a prefix.
		i := 0
		for i < len(c.rows) && int64(c.rows[i].Seq) <= top {
			i++
		}
		if i < len(c.rows) {
			keep = append(keep, chunk{p: c.p, rows: c.rows[i:], subtrees: c.subtrees})
		}
	}
	g.chunks = keep
	return nil
}

// admit returns the positions in b of the records to store, in seq order, and how
// many are already stored or queued, given the partition's highest such seq top
// (-1: none); a record of another partition or beyond the next seq is a Fatal error.
func admit(b *sink.Batch, top int64) (keep []int, skipped int, err error) {
	next, have := top+1, top >= 0
	for i := range b.Records {
		r := &b.Records[i]
		if r.Chain.Partition != b.Partition {
			return nil, 0, sink.Fatalf("audit.chained partition %d offset %d holds a record of partition %d", b.Partition, r.Offset, r.Chain.Partition)
		}
		seq := int64(r.Chain.Seq)
		switch {
		case seq < next:
			skipped++
			continue
		case seq > next && have:
			return nil, 0, sink.Fatalf("%w: partition %d: ClickHouse holds up to seq %d, audit.chained offset %d has seq %d", ErrGap, b.Partition, next-1, r.Offset, seq)
		}
		keep = append(keep, i)
		next, have = seq+1, true
	}
	return keep, skipped, nil
}

// buildRows builds the rows of recs[keep] on all cores.
func buildRows(recs []sink.Record, keep []int) ([]eventRow, error) {
	rows := make([]eventRow, len(keep))
	errs := make([]error, len(keep))
	parallel.For(len(keep), 256, func(i int) { errs[i] = rows[i].fill(recs[keep[i]].Chain) })
	for i, err := range errs {
		if err != nil {
			r := recs[keep[i]]
			return nil, sink.Fatalf("audit.chained partition %d offset %d (seq %d) cannot be stored: %w", r.Chain.Partition, r.Offset, r.Chain.Seq, err)
		}
	}
	return rows, nil
}

// DeliverCheckpoints stores the checkpoints ClickHouse does not hold yet, once the
// rows they cover are stored.
func (s *Sink) DeliverCheckpoints(ctx context.Context, p int32, cps []sink.Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	if err := s.store.WaitInserts(ctx); err != nil {
		return err
	}
	// Only whether a checkpoint at least as large as the smallest of cps is stored
	// matters to which of cps are kept: the read is bounded to those.
	least := cps[0].Size
	for _, c := range cps {
		least = min(least, c.Size)
	}
	have, err := s.store.MaxCheckpointFrom(ctx, p, least)
	if err != nil {
		return err
	}
	var keep []StoredCheckpoint
	for _, c := range cps {
		if c.Size > have {
			keep = append(keep, StoredCheckpoint{Partition: p, SignedCheckpoint: c.Signed})
			have = c.Size
		}
	}
	s.mu.Lock()
	s.totals.Skipped += int64(len(cps) - len(keep))
	s.mu.Unlock()
	if len(keep) == 0 {
		return nil
	}
	if err := s.waitStored(ctx, p, int64(have)-1); err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.InsertTimeout)
	defer cancel()
	if err := s.store.InsertCheckpoints(ictx, keep); err != nil {
		return err
	}
	s.mu.Lock()
	s.totals.Checkpoints += int64(len(keep))
	s.mu.Unlock()
	return nil
}

// waitStored returns once partition p's rows up to seq are in ClickHouse: at once
// when this Sink stored them; when it holds the partition, as soon as its own
// inserts reach seq; otherwise (the partition is another writer's: the group
// does not keep a checkpoint partition with its audit.chained partition, so with
// several writers this can be the steady state) by asking ClickHouse every second
// whether the record at seq is stored (Store.HasRecord).
//
// A checkpoint nearly always arrives before the rows it covers are inserted (they
// wait for the batch). The question used to be the partition's highest seq, a scan
// of every row it ever stored (audit_events' sort key does not start with the
// partition), once a second per waiting checkpoint: with 39M rows stored that was
// most of the ClickHouse server's CPU under a light load. A partition this Sink
// holds is never asked about: its rows reach ClickHouse only through this Sink's
// inserts, so maxSeq is what ClickHouse holds; for another's, HasRecord reads the
// record's leaf and then its event row in that second only.
func (s *Sink) waitStored(ctx context.Context, p int32, seq int64) error {
	for {
		s.mu.Lock()
		st, moved := s.parts[p], s.moved
		held, done := st != nil, st != nil && st.maxSeq >= seq
		s.mu.Unlock()
		if done {
			return nil
		}
		if !held {
			stored, err := s.store.HasRecord(ctx, p, uint64(seq))
			if err != nil {
				return fmt.Errorf("checkpoint of partition %d: %w", p, err)
			}
			if stored {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-moved:
		case <-time.After(time.Second):
		}
	}
}
