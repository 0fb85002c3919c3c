package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// Config configures a Runner. Zero values take the documented defaults.
type Config struct {
	// Brokers are the Kafka seed brokers. Required.
	Brokers []string
	// Group is the sink's consumer group. Default "trailkeep-exporter-<sink name>":
	// each sink has its own, so each keeps its own position and pace.
	Group string
	// InstanceID, when set, is the sink's static group membership id (stable per
	// exporter instance, e.g. a StatefulSet pod name): a restarted exporter takes
	// its partitions back at once instead of after the session timeout.
	InstanceID string
	// ChainedTopic and CheckpointTopic default to audit.chained and
	// audit.checkpoints. The checkpoint topic is consumed only for a CheckpointSink.
	ChainedTopic, CheckpointTopic string
	// DeadLetterTopic receives the records the sink rejected. Default
	// "audit.exporter.<sink name>.deadletter". It is created at start with the
	// chained topic's partition count and Replication (default 1).
	DeadLetterTopic string
	Replication     int16
	// TopicConfigs are topic-level settings of the created dead-letter topic
	// (kafka.TopicSettings.Configs).
	TopicConfigs map[string]*string
	// BatchRecords and BatchBytes bound one delivery. Defaults 1000 and 1 MiB. A
	// partition whose buffer is full (BufferBytes) delivers what it holds without
	// waiting for them or for Linger.
	BatchRecords, BatchBytes int
	// Linger is how long a partition waits for a full batch before sending a
	// partial one: the latency a sink trades for fewer, larger requests or
	// objects. Default 200ms.
	Linger time.Duration
	// BufferBytes is how much fetched data a partition may hold while its batch is
	// in flight; while any partition holds more, the Runner stops polling. Default
	// 8 MiB. A stalled sink holds at most BufferBytes plus one poll (1000 records)
	// per assigned partition, plus the client's one buffered fetch (16 MiB).
	BufferBytes int
	// MaxPendingBatches bounds, per partition, the batches an AckSink accepted
	// and whose acknowledgement is still awaited; sending waits beyond it.
	// Default 16.
	MaxPendingBatches int
	// MinBackoff and MaxBackoff bound the exponential backoff between retries.
	// Defaults 100ms and 30s. A Retry-After longer than MaxBackoff is honoured.
	MinBackoff, MaxBackoff time.Duration
	// StallTimeout is how long the sink may acknowledge nothing while its consumer
	// group has lag before the watchdog reports a stall (log, and
	// trailkeep_exporter_stalls_total) and restarts the consumer: a fresh client
	// rejoins the group and resumes from the last committed offset. Default 5m;
	// negative disables the watchdog.
	StallTimeout time.Duration
	// Logger defaults to slog.Default(); Metrics to a private registry.
	Logger  *slog.Logger
	Metrics *Metrics
	// Fetch is how long the broker may gather records for one of the group's
	// fetches (zero: the kafka package's defaults).
	Fetch kafka.Fetch
	// ClientOpts are appended to the Kafka client's options (tests).
	ClientOpts []kgo.Opt
}

func (c *Config) defaults(name string) error {
	if len(c.Brokers) == 0 {
		return errors.New("sink: Config.Brokers is required")
	}
	if err := c.Fetch.Validate(); err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Group, "trailkeep-exporter-"+name)
	def(&c.ChainedTopic, kafka.ChainedTopic)
	def(&c.CheckpointTopic, kafka.CheckpointsTopic)
	def(&c.DeadLetterTopic, "audit.exporter."+name+".deadletter")
	if c.Replication == 0 {
		c.Replication = 1
	}
	if c.BatchRecords <= 0 {
		c.BatchRecords = 1000
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.Linger <= 0 {
		c.Linger = 200 * time.Millisecond
	}
	if c.BufferBytes <= 0 {
		c.BufferBytes = 8 << 20
	}
	if c.MaxPendingBatches <= 0 {
		c.MaxPendingBatches = 16
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	return nil
}

// Runner feeds one Sink from audit.chained. Create it with NewRunner and call Run.
type Runner struct {
	cfg    Config
	sink   Sink
	cps    CheckpointSink // nil unless the sink archives checkpoints
	acks   AckSink        // nil unless the sink acknowledges asynchronously
	opener Opener         // nil unless the sink keeps per-partition state
	decode func(offset int64, value []byte) (Record, error)
	name   string
	log    *slog.Logger
	m      *Metrics
	cl     *kgo.Client
	opts   []kgo.Opt // to build a fresh client when the watchdog restarts the consumer

	mu    sync.Mutex
	parts map[topicPartition]*partition
	// space is signalled when a partition's queue shrank (the poll loop may be
	// waiting for room).
	space chan struct{}
	// fail stops Run with the error of a partition that hit a Fatal failure.
	fail context.CancelCauseFunc

	sent, retried, dead atomic.Int64
	acked               atomic.Int64
	buffered            atomic.Int64
	stalls              atomic.Int64
}

type topicPartition struct {
	topic string
	p     int32
}

// NewRunner connects to Kafka in s's consumer group. Nothing is consumed before Run.
func NewRunner(s Sink, cfg Config) (*Runner, error) {
	name := s.Name()
	if err := cfg.defaults(name); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, sink: s, name: name, log: cfg.Logger.With("sink", name), m: cfg.Metrics,
		parts: map[topicPartition]*partition{}, space: make(chan struct{}, 1)}
	r.cps, _ = s.(CheckpointSink)
	r.opener, _ = s.(Opener)
	r.acks, _ = s.(AckSink)
	r.decode = Decode
	if d, ok := s.(Decoder); ok {
		r.decode = d.DecodeRecord
	}
	topics := []string{cfg.ChainedTopic}
	if r.cps != nil {
		topics = append(topics, cfg.CheckpointTopic)
	}
	group := kafka.Group{Brokers: cfg.Brokers, Name: cfg.Group, InstanceID: cfg.InstanceID, Topics: topics,
		Fetch: cfg.Fetch, Assigned: r.assigned, Revoked: r.revoked, Lost: r.lost}
	opts := append(group.Opts(),
		// Only what a sink acknowledged is ever committed (MarkCommitOffsets).
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.ProducerLinger(0),
	)
	r.opts = append(opts, cfg.ClientOpts...)
	cl, err := kgo.NewClient(r.opts...)
	if err != nil {
		return nil, fmt.Errorf("sink %s: kafka client: %w", name, err)
	}
	r.cl = cl
	return r, nil
}

// Stats are the Runner's counters since start. Sent counts items the sink accepted;
// Acknowledged counts fetched records whose batch is done (acknowledged, or
// dead-lettered) and whose offsets may be committed.
type Stats struct{ Sent, Acknowledged, Retried, DeadLettered, BufferedBytes, Stalls int64 }

// Stats returns the Runner's counters.
func (r *Runner) Stats() Stats {
	return Stats{Sent: r.sent.Load(), Acknowledged: r.acked.Load(), Retried: r.retried.Load(), DeadLettered: r.dead.Load(), BufferedBytes: r.buffered.Load(), Stalls: r.stalls.Load()}
}

// Run consumes until ctx ends (nil) or the sink fails fatally (its error). The
// dead-letter topic is created first. Acknowledged offsets are committed before Run
// returns; the Runner cannot be reused.
func (r *Runner) Run(ctx context.Context) error {
	defer func() { r.cl.Close() }()
	if err := r.ensureDeadLetter(ctx); err != nil {
		return err
	}
	r.m.up.WithLabelValues(r.name).Set(1)
	ctx, fail := context.WithCancelCause(ctx)
	r.mu.Lock()
	r.fail = fail
	r.mu.Unlock()
	for ctx.Err() == nil {
		stalled := r.consume(ctx)
		r.stopAll()
		r.commitMarked(ctx)
		if !stalled || ctx.Err() != nil {
			break
		}
		if err := r.restartClient(); err != nil {
			return err
		}
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		r.m.up.WithLabelValues(r.name).Set(0)
		return cause
	}
	return nil
}

// consume polls and hands records to the partitions' workers until ctx ends or the
// watchdog finds the consumer stalled (true).
func (r *Runner) consume(ctx context.Context) (stalled bool) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stall atomic.Bool
	go r.watch(pctx, r.cl, func() { stall.Store(true); cancel() })
	for pctx.Err() == nil {
		if !r.waitForRoom(pctx) {
			break
		}
		fs := r.cl.PollRecords(pctx, pollRecords)
		if fs.IsClientClosed() {
			break
		}
		fs.EachError(func(t string, p int32, err error) {
			switch {
			case errors.Is(err, context.Canceled):
			case kafka.RecordsDeleted(err):
				r.stopOn(&RecordsDeletedError{Sink: r.name, Topic: t, Partition: p, Err: err})
			default:
				r.log.Warn("fetch failed; the client retries", "topic", t, "partition", p, "err", err)
			}
		})
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			r.mu.Lock()
			pt := r.parts[topicPartition{fp.Topic, fp.Partition}]
			r.mu.Unlock()
			if pt == nil {
				// Revoked while the fetch was buffered; the next owner reads them.
				return
			}
			pt.push(fp.Records, fp.HighWatermark)
		})
	}
	return stall.Load()
}

// commitMarked commits what was acknowledged, even after ctx ended.
func (r *Runner) commitMarked(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.cl.CommitMarkedOffsets(cctx); err != nil {
		r.log.Warn("offset commit failed; the uncommitted tail will be delivered again", "err", err)
	}
}

// restartClient replaces the consumer with a fresh client, which rejoins the group
// (with a static InstanceID it takes the old member's place at once) and resumes
// from the committed offsets. Every partition worker has stopped by then.
func (r *Runner) restartClient() error {
	r.cl.Close()
	cl, err := kgo.NewClient(r.opts...)
	if err != nil {
		return fmt.Errorf("sink %s: kafka client: %w", r.name, err)
	}
	r.cl = cl
	r.log.Info("consumer restarted after a stall; resuming from the committed offsets")
	return nil
}

// watch is the stall watchdog: every quarter of StallTimeout (at most 30 s) it reads
// the group's lag from the broker, and calls stalled once the group has had lag for
// StallTimeout with no record acknowledged. The broker's view is what counts: a
// consumer that silently stopped fetching shows no lag of its own.
func (r *Runner) watch(ctx context.Context, cl *kgo.Client, stalled func()) {
	if r.cfg.StallTimeout < 0 {
		return
	}
	// At least 100ms: a StallTimeout of a few nanoseconds (a mistyped variable)
	// would otherwise make a zero ticker period, which panics.
	every := max(min(r.cfg.StallTimeout/4, 30*time.Second), 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	adm := kadm.NewClient(cl)
	lastAcked, since := r.acked.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a := r.acked.Load(); a != lastAcked || !r.hasPartitions() {
			// Before its first assignment (a fresh or restarted client still
			// joining the group) a consumer cannot acknowledge anything: counting
			// that time made a join slower than StallTimeout a stall, and the
			// restart that followed began the same join again.
			lastAcked, since = a, time.Now()
			continue
		}
		lag, err := r.groupLag(ctx, adm)
		if err != nil {
			r.log.Warn("watchdog: reading the group's lag failed", "err", err)
			continue
		}
		if lag == 0 {
			since = time.Now()
			continue
		}
		if idle := time.Since(since); idle >= r.cfg.StallTimeout {
			r.stalls.Add(1)
			r.m.stalls.WithLabelValues(r.name).Inc()
			r.log.Error("sink stalled: lag left and nothing acknowledged; restarting the consumer", "lag", lag, "idle", idle.Round(time.Second), "buffered_bytes", r.buffered.Load())
			stalled()
			return
		}
	}
}

// hasPartitions reports whether the consumer holds an assigned partition.
func (r *Runner) hasPartitions() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.parts) > 0
}

// holdsWork reports whether partition tp has records it received and has not yet
// acknowledged (queued or in flight).
func (r *Runner) holdsWork(tp topicPartition) bool {
	r.mu.Lock()
	pt := r.parts[tp]
	r.mu.Unlock()
	if pt == nil {
		return false
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.fetched > pt.ackedNext
}

// groupLag is the records of the sink's topics the group has not committed. A
// caught-up partition of a transactionally written topic (audit.chained is) ends
// with a commit marker that a read-committed consumer never receives and so never
// commits past: a lag of exactly 1 on a partition holding no work is that marker,
// not a record, and is not counted. (A real single record there is fetched at once,
// and then the partition holds work.)
func (r *Runner) groupLag(ctx context.Context, adm *kadm.Client) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lags, err := adm.Lag(lctx, r.cfg.Group)
	if err != nil {
		return 0, err
	}
	g, ok := lags[r.cfg.Group]
	if !ok {
		return 0, nil
	}
	if err := g.Error(); err != nil {
		return 0, err
	}
	var total int64
	for topic, ps := range g.Lag {
		for p, l := range ps {
			if l.Err != nil || l.Lag <= 0 || (l.Lag == 1 && !r.holdsWork(topicPartition{topic, p})) {
				continue
			}
			total += l.Lag
		}
	}
	return total, nil
}

// pollRecords bounds one poll: what a full partition may overshoot its buffer by.
const pollRecords = 1000

// waitForRoom blocks while a partition's queue is full, so that a slow sink holds
// at most BufferBytes (plus one poll) per partition and the client stops fetching.
// Pausing single partitions at the fetcher (PauseFetchPartitions) would let the other
// partitions of the same sink go on, but under load it was seen to leave partitions
// unfetched after resuming, which for an audit exporter means silently stuck
// delivery; a whole sink waiting for its slowest partition is the safe trade.
func (r *Runner) waitForRoom(ctx context.Context) bool {
	for {
		full := false
		r.mu.Lock()
		for _, pt := range r.parts {
			pt.mu.Lock()
			full = full || pt.bytes >= r.cfg.BufferBytes
			pt.mu.Unlock()
		}
		r.mu.Unlock()
		if !full {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-r.space:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ensureDeadLetter creates the dead-letter topic with the chained topic's partition
// count, waiting for the chained topic if it does not exist yet: on a fresh
// deployment the consumers start before the chainer has created its topics, and a
// Runner that exited then would only be restarted into the same wait.
func (r *Runner) ensureDeadLetter(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := r.createDeadLetter(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		d := min(r.backoff(attempt, 0), 2*time.Second)
		r.log.Warn("dead-letter topic not created yet (is the chained topic there?); retrying", "topic", r.cfg.DeadLetterTopic, "in", d, "err", err)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

func (r *Runner) createDeadLetter(ctx context.Context) error {
	// An existing dead-letter topic is used as it is, whatever its partition count:
	// dead letters keep their source position in headers, not in the partition.
	if td, err := kadm.NewClient(r.cl).ListTopics(ctx, r.cfg.DeadLetterTopic); err == nil {
		if d, ok := td[r.cfg.DeadLetterTopic]; ok && d.Err == nil && len(d.Partitions) > 0 {
			return nil
		}
	}
	n, err := kafka.PartitionCount(ctx, r.cl, r.cfg.ChainedTopic)
	if err != nil {
		return fmt.Errorf("sink %s: %w", r.name, err)
	}
	return kafka.EnsureTopics(ctx, r.cl, kafka.Topic{Name: r.cfg.DeadLetterTopic, Partitions: n, Replication: r.cfg.Replication, Configs: r.cfg.TopicConfigs})
}

func (r *Runner) assigned(_ context.Context, cl *kgo.Client, m map[string][]int32) {
	r.log.Info("partitions assigned", "partitions", m)
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			key := topicPartition{t, p}
			if r.parts[key] != nil {
				continue
			}
			ctx, cancel := context.WithCancel(context.Background())
			pt := &partition{topicPartition: key, r: r, cl: cl, ctx: ctx, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1)}
			r.parts[key] = pt
			go pt.work()
		}
	}
}

// revoked stops the partitions' workers (cancelling an in-flight delivery, which is
// then re-delivered by the next owner) and commits what was acknowledged.
func (r *Runner) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	r.log.Info("partitions revoked", "partitions", m)
	r.stop(m)
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		r.log.Warn("offset commit on revoke failed; the uncommitted tail will be delivered again", "err", err)
	}
}

func (r *Runner) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	r.log.Warn("partitions lost (session expired); their uncommitted tail will be delivered again", "partitions", m)
	r.stop(m)
}

func (r *Runner) stop(m map[string][]int32) {
	var stopping []*partition
	r.mu.Lock()
	for t, ps := range m {
		for _, p := range ps {
			key := topicPartition{t, p}
			if pt := r.parts[key]; pt != nil {
				delete(r.parts, key)
				stopping = append(stopping, pt)
			}
		}
	}
	r.mu.Unlock()
	for _, pt := range stopping {
		pt.cancel()
		<-pt.done
		r.buffered.Add(-int64(pt.dropBuffered()))
	}
}

func (r *Runner) stopAll() {
	m := map[string][]int32{}
	r.mu.Lock()
	for k := range r.parts {
		m[k.topic] = append(m[k.topic], k.p)
	}
	r.mu.Unlock()
	r.stop(m)
}

func (r *Runner) fatal(err error) {
	r.log.Error("sink stopped: delivery refused for a reason retrying cannot fix; nothing was committed past the last acknowledged batch. Fix the sink's configuration or credentials and restart the exporter", "err", err)
	r.stopOn(err)
}

// stopOn ends Run with err (after committing what was acknowledged).
func (r *Runner) stopOn(err error) {
	if _, ok := err.(*RecordsDeletedError); ok {
		r.log.Error("sink stopped: records were deleted from Kafka before it read them", "err", err)
	}
	r.mu.Lock()
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		fail(err)
	}
}

// backoff returns the delay before retry attempt n (1-based): full jitter over an
// exponentially growing window, or the server's Retry-After plus a little jitter so
// that partitions told the same delay do not return in lockstep.
func (r *Runner) backoff(n int, after time.Duration) time.Duration {
	if after > 0 {
		return after + rand.N(r.cfg.MinBackoff)
	}
	window := r.cfg.MaxBackoff
	if n < 30 {
		window = min(r.cfg.MaxBackoff, r.cfg.MinBackoff<<n)
	}
	return r.cfg.MinBackoff/2 + rand.N(window)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// partition is one assigned topic-partition: a bounded queue filled by the poll loop
// and drained, one batch at a time, by its worker.
type partition struct {
	topicPartition
	r      *Runner
	cl     *kgo.Client // the client that assigned it (the watchdog may replace the Runner's)
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu    sync.Mutex
	queue []*kgo.Record
	bytes int
	hwm   int64
	// fetched and ackedNext are the offsets after the last record received and the
	// last acknowledged (or dead-lettered): the partition holds work while
	// fetched > ackedNext.
	fetched, ackedNext int64
	// caughtUp and full are what take found for the batch it returned last
	// (Batch.CaughtUp, Batch.Full); the worker goroutine alone reads them.
	caughtUp, full bool
}

func (pt *partition) push(recs []*kgo.Record, hwm int64) {
	n := 0
	for _, rec := range recs {
		n += len(rec.Value)
	}
	pt.mu.Lock()
	pt.queue = append(pt.queue, recs...)
	pt.bytes += n
	pt.hwm = hwm
	pt.fetched = recs[len(recs)-1].Offset + 1
	pt.mu.Unlock()
	pt.r.buffered.Add(int64(n))
	pt.r.m.buffered.WithLabelValues(pt.r.name).Set(float64(pt.r.buffered.Load()))
	select {
	case pt.wake <- struct{}{}:
	default:
	}
}

func (pt *partition) dropBuffered() int {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	n := pt.bytes
	pt.queue, pt.bytes = nil, 0
	return n
}

// take waits for records and returns the next batch: as many queued records as the
// batch limits allow, once the batch is full, the partition's buffer is full, or the
// oldest queued record waited Linger. A full buffer stops the fetching
// (waitForRoom), so no more records can arrive: waiting for a batch limit that the
// buffer cannot hold (an S3 object of 16 MiB through an 8 MiB buffer) would wait out
// the linger with the whole sink's fetching stopped, every time.
func (pt *partition) take() []*kgo.Record {
	cfg := &pt.r.cfg
	var deadline time.Time
	for {
		pt.mu.Lock()
		if n := len(pt.queue); n > 0 {
			if deadline.IsZero() {
				deadline = time.Now().Add(cfg.Linger)
			}
			if n >= cfg.BatchRecords || pt.bytes >= cfg.BatchBytes || pt.bytes >= cfg.BufferBytes || !time.Now().Before(deadline) {
				k, size := 0, 0
				for k < n && k < cfg.BatchRecords && (k == 0 || size+len(pt.queue[k].Value) <= cfg.BatchBytes) {
					size += len(pt.queue[k].Value)
					k++
				}
				pt.full = pt.bytes >= cfg.BufferBytes
				out := pt.queue[:k:k]
				pt.queue = pt.queue[k:]
				if len(pt.queue) == 0 {
					pt.queue = nil
				}
				pt.bytes -= size
				// At most a transaction marker after the last record: caught up.
				pt.caughtUp = len(pt.queue) == 0 && pt.hwm-(out[k-1].Offset+1) <= 1
				pt.mu.Unlock()
				pt.r.buffered.Add(-int64(size))
				select {
				case pt.r.space <- struct{}{}:
				default:
				}
				return out
			}
		}
		pt.mu.Unlock()
		var timer *time.Timer
		var expired <-chan time.Time
		if !deadline.IsZero() {
			timer = time.NewTimer(time.Until(deadline))
			expired = timer.C
		}
		select {
		case <-pt.ctx.Done():
			return nil
		case <-pt.wake:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (pt *partition) work() {
	defer close(pt.done)
	r := pt.r
	ctx := pt.ctx
	checkpoints := r.cps != nil && pt.topic == r.cfg.CheckpointTopic
	if !checkpoints && r.opener != nil {
		for n := 1; ; n++ {
			err := r.opener.OpenPartition(ctx, pt.p)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if e := classify(err); e.Kind == Fatal {
				r.fatal(fmt.Errorf("open partition %d: %w", pt.p, err))
				return
			}
			r.log.Warn("opening partition failed; retrying", "partition", pt.p, "attempt", n, "err", err)
			if sleep(ctx, r.backoff(n, 0)) != nil {
				return
			}
		}
		defer r.opener.ClosePartition(pt.p)
	}
	// With an AckSink, sending runs ahead of acknowledgement: batches wait for their
	// acks in a bounded FIFO (backpressure when full) and are committed in order.
	var acks chan *inflight
	var ackerDone chan struct{}
	if r.acks != nil && !checkpoints {
		acks = make(chan *inflight, r.cfg.MaxPendingBatches)
		ackerDone = make(chan struct{})
		go pt.acker(acks, ackerDone)
		defer func() { close(acks); <-ackerDone }()
	}
	for {
		in := pt.take()
		if in == nil {
			return
		}
		var err error
		var fl *inflight
		switch {
		case checkpoints:
			err = pt.deliverCheckpoints(ctx, in)
		case acks != nil:
			fl, err = pt.sendRecords(ctx, in)
		default:
			err = pt.deliverRecords(ctx, in)
		}
		if err != nil {
			if ctx.Err() == nil {
				r.fatal(fmt.Errorf("partition %d: %w", pt.p, err))
			}
			return
		}
		if fl != nil {
			select {
			case acks <- fl:
			case <-ctx.Done():
				fl.release()
				return
			}
			continue
		}
		pt.acked(in[len(in)-1], len(in))
	}
}

// acked marks a batch ending with last as delivered: its offsets may be committed.
func (pt *partition) acked(last *kgo.Record, n int) {
	r := pt.r
	pt.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{pt.topic: {pt.p: {Epoch: last.LeaderEpoch, Offset: last.Offset + 1}}})
	r.acked.Add(int64(n))
	pt.mu.Lock()
	lag := pt.hwm - (last.Offset + 1)
	pt.ackedNext = last.Offset + 1
	pt.mu.Unlock()
	r.m.lag.WithLabelValues(r.name, pt.topic, part(pt.p)).Set(float64(max(lag, 0)))
	r.m.buffered.WithLabelValues(r.name).Set(float64(r.buffered.Load()))
}

// inflight is a batch accepted by an AckSink and waiting for its acknowledgements
// (one per request the batch took, after splitting).
type inflight struct {
	d    decoded
	acks []pendingAck
	in   []*kgo.Record
}

type pendingAck struct {
	lo, hi int
	ack    Ack
}

// release gives up the batch's pending acks (the partition is stopping).
func (fl *inflight) release() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, a := range fl.acks {
		_ = a.ack.Wait(ctx)
	}
}

// sendRecords sends a batch to an AckSink, with the same retry, split and
// dead-letter rules as deliverRecords, and returns it with its pending acks.
func (pt *partition) sendRecords(ctx context.Context, in []*kgo.Record) (*inflight, error) {
	d, err := pt.decode(ctx, in)
	if err != nil {
		return nil, err
	}
	fl := &inflight{d: d, in: in}
	err = pt.deliverRange(ctx, d, func(ctx context.Context, lo, hi int) error {
		a, err := pt.r.acks.Send(ctx, pt.batch(d, lo, hi))
		if err == nil {
			fl.acks = append(fl.acks, pendingAck{lo, hi, a})
		}
		return err
	})
	if err != nil {
		fl.release()
		return nil, err
	}
	return fl, nil
}

// acker waits, in order, for the acknowledgements of the partition's batches and
// commits each batch once all of its own and the earlier ones are in. A batch whose
// ack failed (timed out) is delivered again synchronously before anything after it
// is committed.
func (pt *partition) acker(acks <-chan *inflight, done chan<- struct{}) {
	defer close(done)
	r := pt.r
	ctx := pt.ctx
	for fl := range acks {
		if ctx.Err() != nil {
			fl.release()
			continue
		}
		for _, a := range fl.acks {
			err := a.ack.Wait(ctx)
			if err == nil || ctx.Err() != nil {
				continue
			}
			if e := classify(err); e.Kind == Fatal {
				r.fatal(fmt.Errorf("partition %d: %w", pt.p, err))
				continue
			}
			r.retried.Add(1)
			r.m.retried.WithLabelValues(r.name).Inc()
			r.log.Warn("acknowledgement failed; sending the batch again", "partition", pt.p, "items", a.hi-a.lo, "err", err)
			if err := pt.deliverDecoded(ctx, fl.d.slice(a.lo, a.hi)); err != nil && ctx.Err() == nil {
				r.fatal(fmt.Errorf("partition %d: %w", pt.p, err))
			}
		}
		if ctx.Err() != nil {
			continue
		}
		if n := len(fl.d.recs); n > 0 {
			r.m.lastSeq.WithLabelValues(r.name, part(pt.p)).Set(float64(fl.d.recs[n-1].Chain.Seq))
		}
		pt.acked(fl.in[len(fl.in)-1], len(fl.in))
	}
}

// header is the part of a canonical event a sink needs besides the raw bytes.
type header struct {
	ID         string     `json:"id"`
	Tenant     string     `json:"tenant"`
	Action     string     `json:"action"`
	OccurredAt event.Time `json:"occurred_at"`
}

// Decode reads one audit.chained value into a Record.
func Decode(offset int64, value []byte) (Record, error) {
	rec := Record{Offset: offset, Value: value}
	if err := rec.Chain.UnmarshalJSON(value); err != nil {
		return rec, err
	}
	var h header
	if err := jsonv2.Unmarshal(rec.Chain.Event, &h); err != nil {
		return rec, fmt.Errorf("record %d/%d: event: %w", rec.Chain.Partition, rec.Chain.Seq, err)
	}
	if h.Tenant == "" || h.ID == "" {
		return rec, fmt.Errorf("record %d/%d: event has no id or tenant", rec.Chain.Partition, rec.Chain.Seq)
	}
	rec.Tenant, rec.ID, rec.Action, rec.OccurredAt = h.Tenant, h.ID, h.Action, h.OccurredAt.Time
	return rec, nil
}

// decoded is a batch's sink records, each beside the Kafka record it came from (the
// one to dead-letter if the sink rejects it).
// batch is the Batch of d.recs[lo:hi]; only the part that ends the taken records
// can be CaughtUp.
func (pt *partition) batch(d decoded, lo, hi int) *Batch {
	return &Batch{Partition: pt.p, Records: d.recs[lo:hi], CaughtUp: pt.caughtUp && hi == len(d.recs), Full: pt.full}
}

type decoded struct {
	recs []Record
	src  []*kgo.Record
}

func (d decoded) slice(lo, hi int) decoded { return decoded{d.recs[lo:hi], d.src[lo:hi]} }

// decode turns fetched records into sink records; a value that is not a chained
// record cannot be exported, and holding the partition for it would stop the log,
// so it is parked on the dead-letter topic with the reason.
func (pt *partition) decode(ctx context.Context, in []*kgo.Record) (decoded, error) {
	d := decoded{recs: make([]Record, 0, len(in)), src: make([]*kgo.Record, 0, len(in))}
	for _, kr := range in {
		rec, err := pt.r.decode(kr.Offset, kr.Value)
		if err != nil {
			if err := pt.r.deadLetter(ctx, pt.cl, kr, "undecodable", err); err != nil {
				return decoded{}, err
			}
			continue
		}
		d.recs = append(d.recs, rec)
		d.src = append(d.src, kr)
	}
	return d, nil
}

// deliverRange sends d's records [lo, hi) through send under Runner.deliver's retry,
// split and dead-letter rules.
func (pt *partition) deliverRange(ctx context.Context, d decoded, send func(ctx context.Context, lo, hi int) error) error {
	dead := func(ctx context.Context, i int, e *Error) error {
		return pt.r.deadLetter(ctx, pt.cl, d.src[i], e.Kind.String(), e)
	}
	return pt.r.deliver(ctx, len(d.recs), send, dead, "records")
}

// deliverDecoded delivers d synchronously (Sink.Deliver).
func (pt *partition) deliverDecoded(ctx context.Context, d decoded) error {
	return pt.deliverRange(ctx, d, func(ctx context.Context, lo, hi int) error {
		return pt.r.sink.Deliver(ctx, pt.batch(d, lo, hi))
	})
}

func (pt *partition) deliverRecords(ctx context.Context, in []*kgo.Record) error {
	d, err := pt.decode(ctx, in)
	if err != nil || len(d.recs) == 0 {
		return err
	}
	if err := pt.deliverDecoded(ctx, d); err != nil {
		return err
	}
	pt.r.m.lastSeq.WithLabelValues(pt.r.name, part(pt.p)).Set(float64(d.recs[len(d.recs)-1].Chain.Seq))
	return nil
}

func (pt *partition) deliverCheckpoints(ctx context.Context, in []*kgo.Record) error {
	r := pt.r
	cps := make([]Checkpoint, 0, len(in))
	keep := make([]*kgo.Record, 0, len(in))
	for _, kr := range in {
		var sc chain.SignedCheckpoint
		err := jsonv2.Unmarshal(kr.Value, &sc)
		var cp chain.Checkpoint
		if err == nil {
			cp, err = sc.Unverified()
		}
		if err != nil {
			if err := r.deadLetter(ctx, pt.cl, kr, "undecodable", fmt.Errorf("checkpoint: %w", err)); err != nil {
				return err
			}
			continue
		}
		cps = append(cps, Checkpoint{Offset: kr.Offset, Value: kr.Value, Signed: sc, Size: cp.Size})
		keep = append(keep, kr)
	}
	send := func(ctx context.Context, lo, hi int) error { return r.cps.DeliverCheckpoints(ctx, pt.p, cps[lo:hi]) }
	dead := func(ctx context.Context, i int, e *Error) error {
		return r.deadLetter(ctx, pt.cl, keep[i], e.Kind.String(), e)
	}
	return r.deliver(ctx, len(cps), send, dead, "checkpoints")
}

// deliver sends items [0, n) with retries, splitting rejected ranges down to the
// offending item, which is dead-lettered. It returns nil once every item was
// acknowledged or dead-lettered, ctx's error, or a Fatal error.
func (r *Runner) deliver(ctx context.Context, n int, send func(ctx context.Context, lo, hi int) error,
	dead func(ctx context.Context, i int, e *Error) error, kind string) error {
	var rng func(lo, hi int) error
	rng = func(lo, hi int) error {
		if lo >= hi {
			return nil
		}
		for attempt := 1; ; attempt++ {
			err := send(ctx, lo, hi)
			if err == nil {
				r.sent.Add(int64(hi - lo))
				r.m.sent.WithLabelValues(r.name, kind).Add(float64(hi - lo))
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e := classify(err)
			switch e.Kind {
			case Fatal:
				return e
			case Reject:
				switch {
				case hi-lo == 1:
					if err := dead(ctx, lo, e); err != nil {
						return err
					}
					r.dead.Add(1)
					r.m.dead.WithLabelValues(r.name).Inc()
					return nil
				case e.Index >= 0 && e.Index < hi-lo:
					i := lo + e.Index
					if err := rng(lo, i); err != nil {
						return err
					}
					if err := rng(i, i+1); err != nil {
						return err
					}
					return rng(i+1, hi)
				default:
					mid := lo + (hi-lo)/2
					if err := rng(lo, mid); err != nil {
						return err
					}
					return rng(mid, hi)
				}
			default:
				r.retried.Add(1)
				r.m.retried.WithLabelValues(r.name).Inc()
				d := r.backoff(attempt, e.RetryAfter)
				r.log.Warn("delivery failed; retrying", "items", hi-lo, "attempt", attempt, "in", d, "err", err)
				if err := sleep(ctx, d); err != nil {
					return err
				}
			}
		}
	}
	return rng(0, n)
}

// deadLetter writes rec to the sink's dead-letter topic with the reason, retrying
// until Kafka acknowledges: the source offset must not be committed before then.
func (r *Runner) deadLetter(ctx context.Context, cl *kgo.Client, rec *kgo.Record, kind string, reason error) error {
	out := &kgo.Record{Topic: r.cfg.DeadLetterTopic, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp,
		Headers: []kgo.RecordHeader{
			{Key: "sink", Value: []byte(r.name)},
			{Key: "kind", Value: []byte(kind)},
			{Key: "reason", Value: []byte(reason.Error())},
			{Key: "source", Value: []byte(rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "@" + strconv.FormatInt(rec.Offset, 10))},
		}}
	r.log.Error("record dead-lettered", "source", string(out.Headers[3].Value), "reason", reason)
	for attempt := 1; ; attempt++ {
		err := cl.ProduceSync(ctx, out).FirstErr()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Warn("dead-letter write failed; retrying", "topic", r.cfg.DeadLetterTopic, "err", err)
		if err := sleep(ctx, r.backoff(attempt, 0)); err != nil {
			return err
		}
	}
}
