package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/parallel"
	"github.com/trailkeep/trailkeep/pkg/chain"
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
	// A batch is inserted when it holds BatchRows rows or its oldest row is BatchAge
	// old. Defaults 10,000 and 1s.
	BatchRows int
	BatchAge  time.Duration
	// ClientOpts are appended to the franz-go client options.
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
}

// Writer consumes audit.chained and audit.checkpoints read-committed and inserts them
// into ClickHouse in batches, committing offsets only after ClickHouse acknowledged.
// Re-delivery never duplicates: per partition it knows the highest stored seq (read
// from ClickHouse on every assignment) and skips what is already there.
type Writer struct {
	cfg   WriterConfig
	store *Store
	cl    *kgo.Client

	mu      sync.Mutex
	maxSeq  map[int32]int64  // loaded partitions only; -1: nothing stored
	maxCP   map[int32]uint64 // 0: none stored
	stats   WriterStats
	pending batch
}

// WriterStats are cumulative counters.
type WriterStats struct {
	Rows, Checkpoints, Skipped, Batches int64
}

type batch struct {
	recs  []chain.Record
	cps   []StoredCheckpoint
	since time.Time
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
		cfg.ChainedTopic = "audit.chained"
	}
	if cfg.CheckpointTopic == "" {
		cfg.CheckpointTopic = "audit.checkpoints"
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 10000
	}
	if cfg.BatchAge <= 0 {
		cfg.BatchAge = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Writer{cfg: cfg, store: store, maxSeq: map[int32]int64{}, maxCP: map[int32]uint64{}}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.ChainedTopic, cfg.CheckpointTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		// No rebalance between a poll and the commit of its insert: a partition never
		// has two writers inserting at once.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(w.forget),
		kgo.OnPartitionsRevoked(w.forget),
		kgo.OnPartitionsLost(w.forget),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
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
	for {
		wait := w.cfg.BatchAge
		if !w.pending.since.IsZero() {
			wait = max(time.Millisecond, w.cfg.BatchAge-time.Since(w.pending.since))
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := w.cl.PollRecords(pctx, w.cfg.BatchRows-len(w.pending.recs))
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			w.cl.AllowRebalance()
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
		decoded, decErrs := w.decode(in)
		var addErr error
		for i, r := range in {
			if addErr = w.add(ctx, r, decoded[i], decErrs[i]); addErr != nil {
				break
			}
		}
		if addErr != nil {
			w.cl.AllowRebalance()
			return addErr
		}
		if len(w.pending.recs)+len(w.pending.cps) > 0 &&
			(len(w.pending.recs) >= w.cfg.BatchRows || time.Since(w.pending.since) >= w.cfg.BatchAge) {
			if err := w.flush(ctx); err != nil {
				w.cl.AllowRebalance()
				return err
			}
		}
		if len(w.pending.recs)+len(w.pending.cps) == 0 {
			w.cl.AllowRebalance()
		}
	}
}

// decode parses the chained records of one poll on all cores (checkpoints are rare
// and parsed in add).
func (w *Writer) decode(in []*kgo.Record) ([]chain.Record, []error) {
	recs := make([]chain.Record, len(in))
	errs := make([]error, len(in))
	parallel.For(len(in), 256, func(i int) {
		if in[i].Topic == w.cfg.ChainedTopic {
			errs[i] = recs[i].UnmarshalJSON(in[i].Value)
		}
	})
	return recs, errs
}

func (w *Writer) add(ctx context.Context, r *kgo.Record, rec chain.Record, decErr error) error {
	if err := w.load(ctx, r.Partition); err != nil {
		return err
	}
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
		next := w.maxSeq[r.Partition] + 1
		switch {
		case int64(rec.Seq) < next:
			w.stats.Skipped++
			return nil
		case int64(rec.Seq) > next && w.maxSeq[r.Partition] >= 0:
			return fmt.Errorf("%w: partition %d: ClickHouse holds up to seq %d, audit.chained offset %d has seq %d", ErrGap, r.Partition, next-1, r.Offset, rec.Seq)
		}
		w.pending.recs = append(w.pending.recs, rec)
		w.maxSeq[r.Partition] = int64(rec.Seq)
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

// flush inserts the pending batch — records before checkpoints, so a stored
// checkpoint never covers rows that are not stored — then commits the offsets. A
// failed insert is retried with backoff until ctx ends; before each retry the stored
// maxima are re-read and what already landed is dropped from the batch, because an
// insert whose acknowledgement was lost may have been applied.
func (w *Writer) flush(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := w.insert(ctx)
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
		if err := w.dropStored(ctx); err != nil {
			w.cfg.Logger.Warn("clickhouse writer: re-reading stored maxima failed", "err", err)
		}
	}
	if err := w.cl.CommitUncommittedOffsets(ctx); err != nil {
		// The rows are stored; after a rewind they are skipped as already present.
		w.cfg.Logger.Warn("clickhouse writer: offset commit failed after insert; duplicates will be skipped on re-delivery", "err", err)
	}
	w.pending = batch{}
	return nil
}

func (w *Writer) insert(ctx context.Context) error {
	b := w.pending
	if err := w.store.InsertRecords(ctx, b.recs); err != nil {
		return err
	}
	w.pending.recs = nil // stored: a checkpoint failure must not re-insert them
	w.mu.Lock()
	w.stats.Rows += int64(len(b.recs))
	w.mu.Unlock()
	if err := w.store.InsertCheckpoints(ctx, b.cps); err != nil {
		return err
	}
	w.mu.Lock()
	w.stats.Checkpoints += int64(len(b.cps))
	w.stats.Batches++
	w.mu.Unlock()
	return nil
}

// dropStored removes from the pending batch what ClickHouse already holds.
func (w *Writer) dropStored(ctx context.Context) error {
	seqs := map[int32]int64{}
	cps := map[int32]uint64{}
	for _, r := range w.pending.recs {
		seqs[r.Partition] = -1
	}
	for _, c := range w.pending.cps {
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
	recs := w.pending.recs[:0]
	for _, r := range w.pending.recs {
		if int64(r.Seq) > seqs[r.Partition] {
			recs = append(recs, r)
		}
	}
	w.pending.recs = recs
	kept := w.pending.cps[:0]
	for _, c := range w.pending.cps {
		if cp, err := c.Unverified(); err == nil && cp.Size > cps[c.Partition] {
			kept = append(kept, c)
		}
	}
	w.pending.cps = kept
	return nil
}
