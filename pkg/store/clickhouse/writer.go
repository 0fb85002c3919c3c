package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/sink"
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
	// DeadLetterTopic receives chained records that cannot be decoded (with the
	// reason in headers). Default "audit.writer.deadletter"; created at start with
	// Replication (default 1) and TopicConfigs.
	DeadLetterTopic string
	Replication     int16
	TopicConfigs    map[string]*string
	// An insert starts once the rows received from all partitions reach
	// BatchRows or the oldest of them waited BatchAge (SinkConfig). Defaults
	// 10,000 and 1s: a quiet stream makes about one insert per BatchAge, however
	// many partitions the writer holds.
	BatchRows int
	BatchAge  time.Duration
	// BufferBytes is how much fetched data one partition may hold while its insert
	// runs. Default 32 MiB.
	BufferBytes int
	// InsertTimeout bounds one insert; a slower one fails and is retried. Default 1m.
	InsertTimeout time.Duration
	// StallTimeout is the Runner's watchdog (sink.Config.StallTimeout). Default 5m.
	StallTimeout time.Duration
	// Metrics receives the writer's series, labelled sink="clickhouse" (nil: a
	// private registry).
	Metrics *sink.Metrics
	// Fetch is the consumer's fetch wait (sink.Config.Fetch).
	Fetch kafka.Fetch
	// ClientOpts are appended to the franz-go client options.
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
}

// Writer consumes audit.chained and audit.checkpoints read-committed and inserts them
// into ClickHouse, committing a batch's offsets only after ClickHouse acknowledged it.
// It is a Sink (this package) fed by a sink.Runner: the consume loop, batching,
// ordering, commit, retry and stall-watchdog rules are the Runner's (package sink),
// the idempotence, gap and checkpoint rules the Sink's.
type Writer struct {
	sink   *Sink
	runner *sink.Runner
}

// WriterStats are cumulative counters.
type WriterStats struct {
	Rows, Checkpoints, Skipped, Batches int64
}

// ErrGap means audit.chained holds a seq beyond the next one ClickHouse expects:
// rows ClickHouse acknowledged are missing. The writer stops rather than store a
// chain with a hole; investigate before restarting.
var ErrGap = errors.New("seq gap between ClickHouse and audit.chained")

// handoverLinger is how long the Runner holds a partition's partial batch before
// passing it to the Sink, which does the real batching across partitions.
const handoverLinger = 20 * time.Millisecond

// NewWriter builds a writer on an opened and migrated Store.
func NewWriter(store *Store, cfg WriterConfig) (*Writer, error) {
	if cfg.Group == "" {
		cfg.Group = "trailkeep-clickhouse-writer"
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = kafka.WriterDeadLetterTopic
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 10000
	}
	if cfg.BatchAge <= 0 {
		cfg.BatchAge = time.Second
	}
	if cfg.BufferBytes <= 0 {
		cfg.BufferBytes = 32 << 20
	}
	s := NewSink(store, SinkConfig{BatchRows: cfg.BatchRows, BatchAge: cfg.BatchAge, InsertTimeout: cfg.InsertTimeout, Logger: cfg.Logger})
	r, err := sink.NewRunner(s, sink.Config{
		Brokers: cfg.Brokers, Group: cfg.Group, InstanceID: cfg.InstanceID,
		ChainedTopic: cfg.ChainedTopic, CheckpointTopic: cfg.CheckpointTopic,
		DeadLetterTopic: cfg.DeadLetterTopic, Replication: cfg.Replication, TopicConfigs: cfg.TopicConfigs,
		// Rows, not bytes, bound a batch: BatchBytes only keeps one insert's
		// memory sane when records are unusually large.
		BatchRecords: cfg.BatchRows, BatchBytes: max(64<<20, cfg.BufferBytes/2),
		// The Sink applies BatchRows and BatchAge to all partitions together, so
		// a partition hands its rows over almost at once instead of lingering
		// on its own share of the threshold.
		Linger:      min(cfg.BatchAge, handoverLinger),
		BufferBytes: cfg.BufferBytes, StallTimeout: cfg.StallTimeout,
		// One batch per partition in the running insert and one in the next: what
		// group commit needs, and a bound on the rows held in memory.
		MaxPendingBatches: 1,
		Logger:            cfg.Logger, Metrics: cfg.Metrics, Fetch: cfg.Fetch, ClientOpts: cfg.ClientOpts,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse writer: %w", err)
	}
	return &Writer{sink: s, runner: r}, nil
}

// Stats returns a snapshot of the counters.
func (w *Writer) Stats() WriterStats { return w.sink.Stats() }

// Close is a no-op kept for callers: Run leaves the group when it returns.
func (w *Writer) Close() {}

// Run inserts until ctx ends (nil) or a fatal error (ErrGap, a record that cannot
// be stored). What was stored is committed before Run returns.
func (w *Writer) Run(ctx context.Context) error {
	if err := w.runner.Run(ctx); err != nil {
		return fmt.Errorf("clickhouse writer: %w", err)
	}
	return ctx.Err()
}
