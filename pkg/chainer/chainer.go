package chainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// Config configures a Chainer. Zero values take the documented defaults.
type Config struct {
	Brokers []string
	// Group is the consumer group of all chainer instances. Default "trailkeep-chainer".
	Group string
	// TransactionalID must be stable per instance and unique among live instances
	// (e.g. the pod name): a restarted instance with the same id fences its previous
	// incarnation. Required.
	TransactionalID string
	// Deployment names this trailkeep installation in checkpoint origins
	// (<deployment>/<chained topic>/<partition>). Required; changing it starts new chains.
	Deployment string
	// Topics. Defaults audit.events, audit.chained, audit.checkpoints, audit.deadletter.
	InputTopic, ChainedTopic, CheckpointTopic, DeadLetterTopic string
	// Partitions and Replication are used to create missing output topics; the
	// output topics must have at least as many partitions as the input. Default:
	// the input topic's partition count, replication 1.
	Replication int16
	// TopicConfigs are topic-level settings of created output topics
	// (kafka.TopicSettings.Configs), e.g. min.insync.replicas.
	TopicConfigs map[string]*string
	// Signer signs checkpoints; Verifiers must include its key (and older keys
	// during a rotation) so the chainer can verify the tail it restores. Required.
	Signer    note.Signer
	Verifiers note.Verifiers
	// CheckpointEvery and CheckpointInterval: a checkpoint is signed after this
	// many records, or when records are waiting this long. Defaults 1000 and 5s.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// CheckpointRefresh: a partition whose last checkpoint is this old has it
	// signed and published again (the same note), so that retention on the
	// checkpoint topic never empties a quiet partition: restore needs its
	// latest checkpoint. It must be well under the checkpoint topic's
	// retention.ms. Default 24h.
	CheckpointRefresh time.Duration
	// MaxPollRecords bounds one transaction. Default 10000.
	MaxPollRecords int
	// TransactionTimeout is how long the broker lets a transaction stay open before
	// aborting it; it bounds how long a crashed instance's partitions stay blocked.
	// Default 10s.
	TransactionTimeout time.Duration
	// Limits for Admit. Default event.DefaultLimits.
	Limits event.Limits
	// Fetch is how long the broker may gather input for one fetch, and so how
	// many records one transaction chains under trickling input (zero: the
	// kafka package's defaults).
	Fetch kafka.Fetch
	// ClientOpts are appended to every franz-go client (tests shorten timeouts).
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
}

// Chainer is one chainer instance.
type Chainer struct {
	cfg  Config
	sess *kgo.GroupTransactSession

	mu     sync.Mutex
	chains map[int32]*partitionState // only partitions currently owned and restored
	// owned are the input partitions assigned to this instance; refused those
	// of them whose chain cannot be restored (fetching them is paused).
	owned, refused map[int32]bool

	stats Stats
}

type partitionState struct {
	ch      *chain.Chain
	sinceCP int // records appended since the last checkpoint
	// next is the input offset after the last record consumed (chained or
	// dead-lettered); cpNext was next when the last checkpoint was made (−1:
	// unknown). A checkpoint carries it, so that restore can tell, from the
	// group's committed offset, that nothing was chained after it.
	next, cpNext int64
	dirtySince   time.Time // wall time the state first moved past the last checkpoint
	cpAt         time.Time // when the last checkpoint was published (the refresh clock)
	// lastChainedAt is the chain time of the last record appended by this
	// instance (zero after a restore).
	lastChainedAt time.Time
}

// dirty reports whether the partition moved past its last checkpoint: records
// were chained, or input was consumed (dead letters) since.
func (st *partitionState) dirty() bool { return st.sinceCP > 0 || st.next != st.cpNext }

// consumed records that the input record at offset was consumed.
func (st *partitionState) consumed(offset int64, now time.Time) {
	if !st.dirty() {
		st.dirtySince = now
	}
	st.next = offset + 1
}

// Stats are cumulative counters, for metrics and tests.
type Stats struct {
	Chained, DeadLettered, Checkpoints, Commits, Aborts, Restores int64
	// Refused counts partitions this instance stopped fetching because their
	// chain cannot be restored (TrimmedError).
	Refused int64
}

// Errors.
var (
	ErrConfig = errors.New("chainer: configuration")
)

// New validates cfg and joins the consumer group (lazily, on the first Run poll).
func New(cfg Config) (*Chainer, error) {
	if cfg.Group == "" {
		cfg.Group = "trailkeep-chainer"
	}
	if cfg.InputTopic == "" {
		cfg.InputTopic = kafka.EventsTopic
	}
	if cfg.ChainedTopic == "" {
		cfg.ChainedTopic = kafka.ChainedTopic
	}
	if cfg.CheckpointTopic == "" {
		cfg.CheckpointTopic = kafka.CheckpointsTopic
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = kafka.DeadLetterTopic
	}
	if cfg.Replication == 0 {
		cfg.Replication = 1
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 1000
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = 5 * time.Second
	}
	if cfg.CheckpointRefresh <= 0 {
		cfg.CheckpointRefresh = 24 * time.Hour
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 10000
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case len(cfg.Brokers) == 0:
		return nil, fmt.Errorf("%w: no brokers", ErrConfig)
	case cfg.TransactionalID == "":
		return nil, fmt.Errorf("%w: a stable TransactionalID per instance is required (e.g. the pod name)", ErrConfig)
	case cfg.Deployment == "":
		return nil, fmt.Errorf("%w: Deployment (the checkpoint origin prefix) is required", ErrConfig)
	case cfg.Signer == nil || cfg.Verifiers == nil:
		return nil, fmt.Errorf("%w: a checkpoint Signer and Verifiers are required", ErrConfig)
	}
	if err := cfg.Fetch.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if _, err := cfg.Verifiers.Verifier(cfg.Signer.Name(), cfg.Signer.KeyHash()); err != nil {
		return nil, fmt.Errorf("%w: the verifier list does not contain the signing key %s: %v", ErrConfig, cfg.Signer.Name(), err)
	}
	c := &Chainer{cfg: cfg, chains: map[int32]*partitionState{}, owned: map[int32]bool{}, refused: map[int32]bool{}}
	// Static membership under the transactional id: a restarted instance (a crashed
	// pod coming back) takes its partitions back at once.
	group := kafka.Group{Brokers: cfg.Brokers, Name: cfg.Group, InstanceID: cfg.TransactionalID, Topics: []string{cfg.InputTopic},
		Fetch: cfg.Fetch, Assigned: c.assigned, Revoked: c.revoked, Lost: c.revoked}
	opts := append(group.Opts(),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.RequireStableFetchOffsets(),
		// Output partition = input partition: the chain of partition p lives in
		// partition p of every output topic.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// A crashed instance's open transaction blocks the partitions' committed
		// offsets (read with require_stable) until the broker aborts it after this
		// timeout, unless the instance comes back first and fences it. One chaining
		// transaction lasts well under a second, so keep the stall short.
		kgo.TransactionTimeout(cfg.TransactionTimeout),
		// Produce must never block while a transaction's records are being added.
		kgo.MaxBufferedRecords(2*cfg.MaxPollRecords+10000),
	)
	opts = append(opts, cfg.ClientOpts...)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("chainer: new transactional session: %w", err)
	}
	c.sess = sess
	return c, nil
}

// assigned and revoked track ownership and drop in-memory state of partitions
// whose ownership changed: whatever happens next, their state is rebuilt from
// Kafka.
func (c *Chainer) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range m[c.cfg.InputTopic] {
		delete(c.chains, p)
		c.owned[p] = true
	}
}

func (c *Chainer) revoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range m[c.cfg.InputTopic] {
		delete(c.chains, p)
		delete(c.owned, p)
		delete(c.refused, p)
	}
}

// restoreOwned restores the owned partitions no poll has brought records for:
// a quiet partition's checkpoint must be re-published (CheckpointRefresh)
// before retention deletes it, and only a restored partition is. A failure is
// logged and retried on the next round; a TrimmedError refuses the partition.
func (c *Chainer) restoreOwned(ctx context.Context) {
	c.mu.Lock()
	var idle []int32
	for p := range c.owned {
		if c.chains[p] == nil && !c.refused[p] {
			idle = append(idle, p)
		}
	}
	c.mu.Unlock()
	for _, p := range idle {
		if err := c.ensure(ctx, p); err != nil {
			var trimmed *TrimmedError
			if errors.As(err, &trimmed) {
				c.refuse(p, err)
				continue
			}
			if ctx.Err() == nil {
				c.cfg.Logger.Warn("chainer: restoring an idle partition failed; retrying", "partition", p, "err", err)
			}
		}
	}
}

func (c *Chainer) origin(p int32) string {
	return chain.Origin(c.cfg.Deployment, c.cfg.ChainedTopic, p)
}

// Stats returns a snapshot of the counters.
func (c *Chainer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// EnsureTopics creates the output topics with the input topic's partition count.
func (c *Chainer) EnsureTopics(ctx context.Context) error {
	cl := c.sess.Client()
	n, err := kafka.PartitionCount(ctx, cl, c.cfg.InputTopic)
	if err != nil {
		return fmt.Errorf("chainer: %w", err)
	}
	var ts []kafka.Topic
	for _, t := range []string{c.cfg.ChainedTopic, c.cfg.CheckpointTopic, c.cfg.DeadLetterTopic} {
		ts = append(ts, kafka.Topic{Name: t, Partitions: n, Replication: c.cfg.Replication, Configs: c.cfg.TopicConfigs})
	}
	if err := kafka.EnsureTopics(ctx, cl, ts...); err != nil {
		return err
	}
	return c.checkRefresh(ctx)
}

// checkRefresh refuses a CheckpointRefresh that retention on the checkpoint
// topic would outrun: a quiet partition's only checkpoint would be deleted
// before it is published again, and the partition could not be restored.
func (c *Chainer) checkRefresh(ctx context.Context) error {
	retention, err := c.checkpointRetention(ctx)
	if err != nil {
		// Describing configs may be denied by ACLs: the check is advice then.
		c.cfg.Logger.Warn("chainer: cannot read the checkpoint topic's retention to check the refresh against it", "topic", c.cfg.CheckpointTopic, "err", err)
		return nil
	}
	if retention > 0 && c.cfg.CheckpointRefresh > retention/2 {
		return fmt.Errorf("%w: CheckpointRefresh %s is more than half of %s's retention.ms (%s): a quiet partition's checkpoint could be deleted before it is published again; lower the refresh or raise retention.ms",
			ErrConfig, c.cfg.CheckpointRefresh, c.cfg.CheckpointTopic, retention)
	}
	return nil
}

// checkpointRetention returns the checkpoint topic's retention.ms (0: none, or
// not a number the broker reports).
func (c *Chainer) checkpointRetention(ctx context.Context) (time.Duration, error) {
	rcs, err := kadm.NewClient(c.sess.Client()).DescribeTopicConfigs(ctx, c.cfg.CheckpointTopic)
	if err != nil {
		return 0, err
	}
	rc, err := rcs.On(c.cfg.CheckpointTopic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return 0, err
	}
	for _, kv := range rc.Configs {
		if kv.Key == "retention.ms" && kv.Value != nil {
			if ms, err := strconv.ParseInt(*kv.Value, 10, 64); err == nil && ms > 0 {
				return time.Duration(ms) * time.Millisecond, nil
			}
		}
	}
	return 0, nil
}

// Close leaves the group (aborting any open transaction) and closes the client.
func (c *Chainer) Close() { c.sess.Close() }

// Run chains until ctx is cancelled or a fatal error (e.g. this instance was fenced).
func (c *Chainer) Run(ctx context.Context) error {
	// Initialise the transactional producer before joining the group: this fences a
	// previous incarnation with the same transactional id and aborts its open
	// transaction now. Otherwise the committed offsets of its partitions stay
	// pending (require_stable) until the broker's transaction timeout.
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, err := c.sess.Client().ProducerID(pctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fenced(err) {
			return fatal(fmt.Errorf("chainer: initialise transactional producer %q: %w", c.cfg.TransactionalID, err))
		}
		c.cfg.Logger.Warn("chainer: initialising the transactional producer failed; retrying", "err", err)
		time.Sleep(time.Second)
	}
	for {
		c.restoreOwned(ctx)
		// Wake up at least every quarter interval so time-based checkpoints are
		// signed on an idle partition too.
		pctx, cancel := context.WithTimeout(ctx, c.cfg.CheckpointInterval/4)
		fetches := c.sess.PollRecords(pctx, c.cfg.MaxPollRecords)
		cancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return ctx.Err()
		}
		var fetchErr, deleted error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				fetchErr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
				if kafka.RecordsDeleted(err) {
					deleted = fetchErr
				}
			}
		})
		if deleted != nil {
			// Events ingest acknowledged were deleted before they were chained:
			// continuing would leave them out of the log without a trace.
			return fmt.Errorf("chainer: %w: the events at this position were deleted from the input topic (retention) before they were chained; stopping rather than skip them. Raise retention.ms on it above the longest chainer outage", deleted)
		}
		if fetchErr != nil {
			// Errors are per partition: the poll's records of the other
			// partitions are chained below. Skipping them instead would leave
			// them consumed, and the next transaction would commit past them.
			c.cfg.Logger.Warn("chainer: fetch error; the client retries that partition", "err", fetchErr)
		}
		if err := c.transaction(ctx, fetches); err != nil {
			if isFatal(err) {
				return err
			}
			var trimmed *TrimmedError
			if !errors.As(err, &trimmed) { // refuse logged that one
				c.cfg.Logger.Warn("chainer: transaction aborted; partitions will be restored", "err", err)
			}
			// The aborted records come back with the next poll at once: wait, so
			// a failure that persists is retried once a second, not in a hot loop.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(abortBackoff):
			}
		}
	}
}

// abortBackoff is the pause after an aborted transaction before the next poll.
const abortBackoff = time.Second

// transaction chains one poll's records (possibly none, to emit due checkpoints).
func (c *Chainer) transaction(ctx context.Context, fetches kgo.Fetches) error {
	byPart := map[int32][]*kgo.Record{}
	fetches.EachRecord(func(r *kgo.Record) {
		if r.Topic == c.cfg.InputTopic {
			byPart[r.Partition] = append(byPart[r.Partition], r)
		}
	})
	due := c.dueCheckpoints()
	if len(byPart) == 0 && len(due) == 0 {
		return nil
	}
	// Restore before Begin: restoring reads Kafka with other clients and may take a
	// while; no transaction should be open meanwhile.
	for p := range byPart {
		if err := c.ensure(ctx, p); err != nil {
			var trimmed *TrimmedError
			if errors.As(err, &trimmed) {
				c.refuse(p, err)
			}
			return c.rewind(ctx, byPart, err)
		}
	}
	out, n, err := c.build(byPart, due)
	if err != nil {
		return c.rewind(ctx, byPart, err)
	}
	if err := c.sess.Begin(); err != nil {
		return fatal(fmt.Errorf("chainer: begin transaction: %w", err))
	}
	var (
		prodErr error
		pmu     sync.Mutex
		wg      sync.WaitGroup
	)
	wg.Add(len(out))
	for _, r := range out {
		c.sess.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				pmu.Lock()
				if prodErr == nil {
					prodErr = err // the first failure says why; the rest repeat it
				}
				pmu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if prodErr != nil {
		c.abortTx(ctx, byPart)
		if fenced(prodErr) {
			return fatal(fmt.Errorf("chainer: this instance was fenced by another with transactional id %q; stopping: %w", c.cfg.TransactionalID, prodErr))
		}
		return fmt.Errorf("chainer: produce: %w", prodErr)
	}
	committed, err := c.sess.End(ctx, kgo.TryCommit)
	if err != nil || !committed {
		// The session aborted (rebalance, fencing, broker trouble): the appended
		// state is not durable, so forget it and restore from Kafka next time.
		c.forgetParts(byPart, due)
		c.mu.Lock()
		c.stats.Aborts++
		c.mu.Unlock()
		if err != nil {
			if fenced(err) {
				return fatal(fmt.Errorf("chainer: this instance was fenced — another instance with transactional id %q, or a newer group generation, owns its partitions; stopping: %w", c.cfg.TransactionalID, err))
			}
			return fmt.Errorf("chainer: end transaction: %w", err)
		}
		return errors.New("chainer: transaction aborted (group rebalance); records will be re-chained by the owner")
	}
	c.mu.Lock()
	c.stats.Chained += n.chained
	c.stats.DeadLettered += n.dead
	c.stats.Checkpoints += n.checkpoints
	c.stats.Commits++
	c.mu.Unlock()
	return nil
}

type counts struct{ chained, dead, checkpoints int64 }

// build appends byPart's records to their partitions' chains and returns every record
// the transaction must produce: chained records, dead letters, and the checkpoints
// that are due by count or (for the partitions in due) by time. The chains advance in
// memory only; if the transaction does not commit, the caller forgets them.
func (c *Chainer) build(byPart map[int32][]*kgo.Record, due []int32) ([]*kgo.Record, counts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*kgo.Record
	var n counts
	for p, recs := range byPart {
		st := c.chains[p]
		if st == nil {
			return nil, n, fmt.Errorf("chainer: partition %d was revoked while its records were being chained", p)
		}
		now := time.Now()
		for _, in := range recs {
			st.consumed(in.Offset, now)
			if err := event.Admit(in.Value, c.cfg.Limits); err != nil {
				out = append(out, deadLetter(c.cfg.DeadLetterTopic, in, err))
				n.dead++
				continue
			}
			rec, err := st.ch.Append(in.Value, in.Timestamp)
			if err != nil {
				out = append(out, deadLetter(c.cfg.DeadLetterTopic, in, err))
				n.dead++
				continue
			}
			// Admit accepted the event above: it is canonical JSON.
			val := rec.MarshalAdmitted()
			out = append(out, &kgo.Record{Topic: c.cfg.ChainedTopic, Partition: p, Key: in.Key, Value: val, Timestamp: rec.ChainedAt,
				Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.FormatUint(rec.Seq, 10))}}})
			n.chained++
			st.sinceCP++
			st.lastChainedAt = rec.ChainedAt
			if st.sinceCP >= c.cfg.CheckpointEvery {
				r, err := c.checkpoint(p, st)
				if err != nil {
					return nil, n, err
				}
				out = append(out, r)
				n.checkpoints++
			}
		}
	}
	for _, p := range due {
		st := c.chains[p]
		if st == nil {
			continue
		}
		r, err := c.checkpoint(p, st)
		if err != nil {
			return nil, n, err
		}
		out = append(out, r)
		n.checkpoints++
	}
	return out, n, nil
}

func (c *Chainer) ensure(ctx context.Context, p int32) error {
	c.mu.Lock()
	_, ok := c.chains[p]
	c.mu.Unlock()
	if ok {
		return nil
	}
	st, err := c.restore(ctx, p)
	if err != nil {
		return err
	}
	if st.dirty() {
		st.dirtySince = time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.owned[p] {
		// Revoked while it was being restored: a state kept now would make
		// this instance sign checkpoints for another owner's partition.
		return fmt.Errorf("chainer: partition %d was revoked while it was being restored", p)
	}
	c.chains[p] = st
	c.stats.Restores++
	c.cfg.Logger.Info("chainer: restored partition", "partition", p, "size", st.ch.Size())
	return nil
}

// checkpoint signs the state of p and returns the record to produce; it resets the
// counters (the caller holds c.mu).
func (c *Chainer) checkpoint(p int32, st *partitionState) (*kgo.Record, error) {
	cp, err := st.ch.Sign(c.origin(p), c.cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("chainer: sign checkpoint of partition %d: %w", p, err)
	}
	val, err := json.Marshal(cp)
	if err != nil {
		return nil, err
	}
	// A checkpoint of new records takes their time, so the output stays a
	// function of the input; a re-publication takes the wall clock, because
	// retention deletes by record time.
	now := time.Now()
	ts := st.lastChainedAt
	if st.sinceCP == 0 || ts.IsZero() {
		ts = now
	}
	st.sinceCP, st.cpNext, st.cpAt = 0, st.next, now
	return &kgo.Record{Topic: c.cfg.CheckpointTopic, Partition: p, Value: val, Timestamp: ts,
		Headers: []kgo.RecordHeader{
			{Key: "size", Value: []byte(strconv.FormatUint(st.ch.Size(), 10))},
			{Key: inputOffsetHeader, Value: []byte(strconv.FormatInt(st.next, 10))},
		}}, nil
}

// inputOffsetHeader names the checkpoint record header holding the input
// offset after the last input record the checkpoint accounts for (chained or
// dead-lettered): what the chainer group commits when it stops there.
const inputOffsetHeader = "input_offset"

// dueCheckpoints returns the partitions whose state is past their last
// checkpoint for CheckpointInterval, and those whose last checkpoint is older
// than CheckpointRefresh.
func (c *Chainer) dueCheckpoints() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var due []int32
	for p, st := range c.chains {
		if st.ch.Size() == 0 {
			continue // nothing to anchor: an empty chain restores without a checkpoint
		}
		if (st.dirty() && time.Since(st.dirtySince) >= c.cfg.CheckpointInterval) || time.Since(st.cpAt) >= c.cfg.CheckpointRefresh {
			due = append(due, p)
		}
	}
	return due
}

func (c *Chainer) abortTx(ctx context.Context, byPart map[int32][]*kgo.Record) {
	if _, err := c.sess.End(ctx, kgo.TryAbort); err != nil {
		c.cfg.Logger.Warn("chainer: abort", "err", err)
	}
	c.abortTouched(byPart)
}

// rewind gives up a poll that failed before its transaction began (a restore or
// build error): an empty transaction is opened and aborted, which puts the
// session back at the committed offsets. Without it the poll's records would stay
// consumed, and the next transaction would commit past events no chain holds.
func (c *Chainer) rewind(ctx context.Context, byPart map[int32][]*kgo.Record, cause error) error {
	if err := c.sess.Begin(); err != nil {
		return fatal(fmt.Errorf("chainer: begin the transaction that rewinds a failed poll (%v): %w", cause, err))
	}
	c.abortTx(ctx, byPart)
	return cause
}

// refuse stops fetching input partition p, whose chain cannot be restored
// (cause): its events stay unconsumed in the input topic (nothing is lost, the
// lag shows it) while the other partitions go on. A restart tries again.
func (c *Chainer) refuse(p int32, cause error) {
	c.sess.Client().PauseFetchPartitions(map[string][]int32{c.cfg.InputTopic: {p}})
	c.mu.Lock()
	if !c.refused[p] {
		c.stats.Refused++
	}
	c.refused[p] = true
	c.mu.Unlock()
	c.cfg.Logger.Error("chainer: a partition cannot be restored; its events are not chained until the cause is fixed", "partition", p, "err", cause)
}

func (c *Chainer) abortTouched(byPart map[int32][]*kgo.Record) {
	c.forgetParts(byPart, nil)
	c.mu.Lock()
	c.stats.Aborts++
	c.mu.Unlock()
}

func (c *Chainer) forgetParts(byPart map[int32][]*kgo.Record, more []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range byPart {
		delete(c.chains, p)
	}
	for _, p := range more {
		delete(c.chains, p)
	}
}

func deadLetter(topic string, in *kgo.Record, reason error) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: in.Partition, Key: in.Key, Value: in.Value, Timestamp: in.Timestamp,
		Headers: []kgo.RecordHeader{
			{Key: "reason", Value: []byte(reason.Error())},
			{Key: "source", Value: []byte(in.Topic + "/" + strconv.Itoa(int(in.Partition)) + "@" + strconv.FormatInt(in.Offset, 10))},
		}}
}

// fenced reports whether err means a newer incarnation took over this instance's
// transactional id: the only correct reaction is to stop.
func fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.InvalidProducerIDMapping)
}

type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }
func fatal(err error) error        { return fatalError{err} }
func isFatal(err error) bool       { var f fatalError; return errors.As(err, &f) }
