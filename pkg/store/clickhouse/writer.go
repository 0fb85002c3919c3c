package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/trailkeep/trailkeep/internal/parallel"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// WriterConfig configures a Writer. Zero values take the documented defaults.
type WriterConfig struct {
	Brokers []string
	// Group is the writer's own consumer group. Default "trailkeep-clickhouse-writer".
	Group string
	// InstanceID, when set, makes the writer a static group member: a restarted
	// writer with the same id resumes its partitions without waiting for the session
	// timeout. It must be unique among live writers (e.g. the pod name).
	InstanceID string
	// Topics. Defaults audit.chained and audit.checkpoints.
	ChainedTopic, CheckpointTopic string
	// A batch is due when it holds BatchRows rows or its oldest row is BatchAge old.
	// Defaults 10,000 and 1s. A due batch is sent at once unless the previous one is
	// still being inserted; then it keeps growing, up to MaxBatchRows (default 5 ×
	// BatchRows), until that insert is acknowledged. Under a backlog inserts thus
	// become fewer and larger, which is what ClickHouse's MergeTree wants (every
	// insert is a part to write and later merge), while a quiet stream keeps the
	// latency of BatchAge.
	BatchRows    int
	BatchAge     time.Duration
	MaxBatchRows int
	// ClientOpts are appended to the franz-go client options.
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
}

// Writer consumes audit.chained and audit.checkpoints read-committed and inserts them
// into ClickHouse in batches, committing each batch's offsets only after ClickHouse
// acknowledged it. Re-delivery never duplicates: per partition it knows the highest
// stored seq (read from ClickHouse on every assignment) and skips what is already
// there.
//
// One batch is in flight while the next is polled and built, so decoding overlaps the
// server's work; batches are still inserted one after another, in order, so a
// partition's rows land in seq order and a failed batch is retried before any later
// one is sent.
type Writer struct {
	cfg   WriterConfig
	store *Store
	cl    *kgo.Client

	mu      sync.Mutex
	maxSeq  map[int32]int64  // loaded partitions only; -1: nothing stored
	maxCP   map[int32]uint64 // 0: none stored
	stats   WriterStats
	pending *batch
	flying  *flight // nil when no insert is in flight
}

// flight is one batch being inserted in the background.
type flight struct {
	done chan struct{} // closed when err is set
	err  error
}

func (f *flight) landed() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// maxRebalanceDelay bounds how long a writer under constant load keeps a rebalance
// waiting: rebalances are only allowed with nothing pending or in flight, so after
// this long the writer drains synchronously once. Far below franz-go's default 60 s
// rebalance timeout.
const maxRebalanceDelay = 5 * time.Second

// WriterStats are cumulative counters.
type WriterStats struct {
	Rows, Checkpoints, Skipped, Batches int64
}

// batch is what one insert stores, and the offsets to commit once it is stored.
type batch struct {
	rows    []eventRow
	cps     []StoredCheckpoint
	offsets map[string]map[int32]kgo.EpochOffset
	since   time.Time
}

func newBatch() *batch {
	return &batch{offsets: map[string]map[int32]kgo.EpochOffset{}}
}

func (b *batch) empty() bool { return len(b.rows)+len(b.cps) == 0 && len(b.offsets) == 0 }

// consumed records that r was read into this batch (stored or skipped): its offset is
// committed with the batch.
func (b *batch) consumed(r *kgo.Record) {
	ps := b.offsets[r.Topic]
	if ps == nil {
		ps = map[int32]kgo.EpochOffset{}
		b.offsets[r.Topic] = ps
	}
	ps[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
}

// ErrGap means audit.chained holds a seq beyond the next one ClickHouse expects:
// rows ClickHouse acknowledged are missing. The writer stops rather than store a
// chain with a hole; investigate before restarting.
var ErrGap = errors.New("clickhouse writer: seq gap between ClickHouse and audit.chained")

// NewWriter builds a writer on an opened and migrated Store.
func NewWriter(store *Store, cfg WriterConfig) (*Writer, error) {
	if cfg.Group == "" {
		cfg.Group = "trailkeep-clickhouse-writer"
	}
	if cfg.ChainedTopic == "" {
		cfg.ChainedTopic = kafka.ChainedTopic
	}
	if cfg.CheckpointTopic == "" {
		cfg.CheckpointTopic = kafka.CheckpointsTopic
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 10000
	}
	if cfg.BatchAge <= 0 {
		cfg.BatchAge = time.Second
	}
	if cfg.MaxBatchRows < cfg.BatchRows {
		cfg.MaxBatchRows = 5 * cfg.BatchRows
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Writer{cfg: cfg, store: store, maxSeq: map[int32]int64{}, maxCP: map[int32]uint64{}, pending: newBatch()}
	group := kafka.Group{Brokers: cfg.Brokers, Name: cfg.Group, InstanceID: cfg.InstanceID,
		Topics: []string{cfg.ChainedTopic, cfg.CheckpointTopic}, Assigned: w.forget, Revoked: w.forget, Lost: w.forget}
	opts := append(group.Opts(),
		kgo.DisableAutoCommit(),
		// No rebalance between a poll and the commit of its insert: a partition never
		// has two writers inserting at once.
		kgo.BlockRebalanceOnPoll(),
	)
	cl, err := kgo.NewClient(append(opts, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse writer: client: %w", err)
	}
	w.cl = cl
	return w, nil
}

func (w *Writer) forget(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ps := range m {
		for _, p := range ps {
			delete(w.maxSeq, p)
			delete(w.maxCP, p)
		}
	}
}

// Stats returns a snapshot of the counters.
func (w *Writer) Stats() WriterStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Close leaves the group.
func (w *Writer) Close() { w.cl.Close() }

// Run inserts until ctx ends or a fatal error (ErrGap, undecodable input).
func (w *Writer) Run(ctx context.Context) error {
	err := w.run(ctx)
	// Whatever happens, the in-flight insert is waited for: its offsets are committed
	// only if it succeeded, and nothing is left writing behind a returned Run.
	if ferr := w.land(); err == nil && ferr != nil && ctx.Err() == nil {
		err = ferr
	}
	w.cl.AllowRebalance()
	return err
}

func (w *Writer) run(ctx context.Context) error {
	blockedSince := time.Now()
	for {
		wait := w.cfg.BatchAge
		if !w.pending.since.IsZero() {
			wait = max(time.Millisecond, w.cfg.BatchAge-time.Since(w.pending.since))
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		if f := w.flying; f != nil {
			// Return from the poll as soon as the insert lands: a grown batch may be
			// waiting for it.
			go func() {
				select {
				case <-f.done:
					cancel()
				case <-pctx.Done():
				}
			}()
		}
		fs := w.cl.PollRecords(pctx, max(1, w.cfg.MaxBatchRows-len(w.pending.rows)))
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return ctx.Err()
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			w.cfg.Logger.Warn("clickhouse writer: fetch error", "err", ferr)
		}
		var in []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { in = append(in, r) })
		rows, decErrs := w.decode(in)
		for i, r := range in {
			if err := w.add(ctx, r, rows[i], decErrs[i]); err != nil {
				return err
			}
		}
		due := !w.pending.empty() && (len(w.pending.rows) >= w.cfg.BatchRows || time.Since(w.pending.since) >= w.cfg.BatchAge)
		grow := w.flying != nil && !w.flying.landed() && len(w.pending.rows) < w.cfg.MaxBatchRows
		if due && !grow {
			if err := w.launch(ctx); err != nil {
				return err
			}
		}
		// A rebalance may only happen with nothing pending and nothing in flight, so
		// that a partition never has two writers inserting at once.
		idle := len(in) == 0 && w.pending.empty()
		if idle || time.Since(blockedSince) >= maxRebalanceDelay {
			if !w.pending.empty() {
				if err := w.launch(ctx); err != nil {
					return err
				}
			}
			if err := w.land(); err != nil {
				return err
			}
			w.cl.AllowRebalance()
			blockedSince = time.Now()
		}
	}
}

// decode parses the chained records of one poll and builds their rows on all cores
// (checkpoints are rare and parsed in add).
func (w *Writer) decode(in []*kgo.Record) ([]eventRow, []error) {
	rows := make([]eventRow, len(in))
	errs := make([]error, len(in))
	parallel.For(len(in), 256, func(i int) {
		if in[i].Topic != w.cfg.ChainedTopic {
			return
		}
		var rec chain.Record
		if errs[i] = rec.UnmarshalJSON(in[i].Value); errs[i] == nil {
			errs[i] = rows[i].fill(rec)
		}
	})
	return rows, errs
}

// launch waits for the batch in flight, then sends the pending one in the background.
func (w *Writer) launch(ctx context.Context) error {
	if err := w.land(); err != nil {
		return err
	}
	b := w.pending
	w.pending = newBatch()
	f := &flight{done: make(chan struct{})}
	w.flying = f
	go func() {
		f.err = w.flush(ctx, b)
		close(f.done)
	}()
	return nil
}

// land waits for the batch in flight, if any, and returns its error.
func (w *Writer) land() error {
	f := w.flying
	if f == nil {
		return nil
	}
	<-f.done
	w.flying = nil
	return f.err
}

func (w *Writer) add(ctx context.Context, r *kgo.Record, row eventRow, decErr error) error {
	if err := w.load(ctx, r.Partition); err != nil {
		return err
	}
	w.pending.consumed(r)
	if w.pending.since.IsZero() {
		w.pending.since = time.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch r.Topic {
	case w.cfg.ChainedTopic:
		if decErr != nil {
			return fmt.Errorf("clickhouse writer: %s/%d@%d is not a chained record: %w", r.Topic, r.Partition, r.Offset, decErr)
		}
		if row.Partition != uint32(r.Partition) {
			return fmt.Errorf("clickhouse writer: %s/%d@%d holds a record of partition %d", r.Topic, r.Partition, r.Offset, row.Partition)
		}
		next := w.maxSeq[r.Partition] + 1
		switch {
		case int64(row.Seq) < next:
			w.stats.Skipped++
			return nil
		case int64(row.Seq) > next && w.maxSeq[r.Partition] >= 0:
			return fmt.Errorf("%w: partition %d: ClickHouse holds up to seq %d, audit.chained offset %d has seq %d", ErrGap, r.Partition, next-1, r.Offset, row.Seq)
		}
		w.pending.rows = append(w.pending.rows, row)
		w.maxSeq[r.Partition] = int64(row.Seq)
	case w.cfg.CheckpointTopic:
		var cp chain.SignedCheckpoint
		if err := json.Unmarshal(r.Value, &cp); err != nil {
			return fmt.Errorf("clickhouse writer: %s/%d@%d is not a checkpoint: %w", r.Topic, r.Partition, r.Offset, err)
		}
		parsed, err := cp.Unverified()
		if err != nil {
			return fmt.Errorf("clickhouse writer: %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if parsed.Size <= w.maxCP[r.Partition] {
			w.stats.Skipped++
			return nil
		}
		w.pending.cps = append(w.pending.cps, StoredCheckpoint{Partition: r.Partition, SignedCheckpoint: cp})
		w.maxCP[r.Partition] = parsed.Size
	}
	return nil
}

// load reads the stored maxima of partition p after an assignment.
func (w *Writer) load(ctx context.Context, p int32) error {
	w.mu.Lock()
	_, ok := w.maxSeq[p]
	w.mu.Unlock()
	if ok {
		return nil
	}
	if err := w.store.WaitInserts(ctx); err != nil {
		return err
	}
	seq, stored, err := w.store.MaxSeq(ctx, p)
	if err != nil {
		return err
	}
	cp, err := w.store.MaxCheckpoint(ctx, p)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.maxSeq[p] = -1
	if stored {
		w.maxSeq[p] = int64(seq)
	}
	w.maxCP[p] = cp
	return nil
}

// flush inserts batch b — records before checkpoints, so a stored checkpoint never
// covers rows that are not stored — then commits its offsets. A failed insert is
// retried with backoff until ctx ends; before each retry the stored maxima are re-read
// and what already landed is dropped from the batch, because an insert whose
// acknowledgement was lost may have been applied.
func (w *Writer) flush(ctx context.Context, b *batch) error {
	for attempt := 0; ; attempt++ {
		err := w.insert(ctx, b)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		backoff := min(30*time.Second, time.Duration(1<<min(attempt, 5))*time.Second)
		w.cfg.Logger.Warn("clickhouse writer: insert failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		if err := w.dropStored(ctx, b); err != nil {
			w.cfg.Logger.Warn("clickhouse writer: re-reading stored maxima failed", "err", err)
		}
	}
	var commitErr error
	w.cl.CommitOffsetsSync(ctx, b.offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			err = offsetCommitError(resp)
		}
		commitErr = err
	})
	if commitErr != nil {
		// The rows are stored; after a rewind they are skipped as already present.
		w.cfg.Logger.Warn("clickhouse writer: offset commit failed after insert; duplicates will be skipped on re-delivery", "err", commitErr)
	}
	return nil
}

// offsetCommitError returns the first per-partition error of a commit response.
func offsetCommitError(resp *kmsg.OffsetCommitResponse) error {
	if resp == nil {
		return nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("commit %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

func (w *Writer) insert(ctx context.Context, b *batch) error {
	if err := w.store.insertRows(ctx, b.rows); err != nil {
		return err
	}
	n := len(b.rows)
	b.rows = nil // stored: a checkpoint failure must not re-insert them
	w.mu.Lock()
	w.stats.Rows += int64(n)
	w.mu.Unlock()
	if err := w.store.InsertCheckpoints(ctx, b.cps); err != nil {
		return err
	}
	w.mu.Lock()
	w.stats.Checkpoints += int64(len(b.cps))
	w.stats.Batches++
	w.mu.Unlock()
	b.cps = nil
	return nil
}

// dropStored removes from batch b what ClickHouse already holds.
func (w *Writer) dropStored(ctx context.Context, b *batch) error {
	seqs := map[int32]int64{}
	cps := map[int32]uint64{}
	for _, r := range b.rows {
		seqs[int32(r.Partition)] = -1
	}
	for _, c := range b.cps {
		cps[c.Partition] = 0
	}
	for p := range seqs {
		m, ok, err := w.store.MaxSeq(ctx, p)
		if err != nil {
			return err
		}
		if ok {
			seqs[p] = int64(m)
		}
	}
	for p := range cps {
		m, err := w.store.MaxCheckpoint(ctx, p)
		if err != nil {
			return err
		}
		cps[p] = m
	}
	b.rows = slices.DeleteFunc(b.rows, func(r eventRow) bool { return int64(r.Seq) <= seqs[int32(r.Partition)] })
	b.cps = slices.DeleteFunc(b.cps, func(c StoredCheckpoint) bool {
		cp, err := c.Unverified()
		return err != nil || cp.Size <= cps[c.Partition]
	})
	return nil
}
