// Package kafka wires github.com/twmb/franz-go for trailkeep's topics: creating them
// at start-up, and a producer whose memory is bounded and whose every write is
// acknowledged by all in-sync replicas before a caller hears "ok".
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The topics of the data flow, by their default names. Every binary lets the
// operator rename them (TRAILKEEP_*_TOPIC; internal/configref's test holds those
// defaults to these), and every package that needs one defaults to these.
const (
	// EventsTopic holds canonical events keyed by tenant (ingest -> chainer; the
	// query API's access events too).
	EventsTopic = "audit.events"
	// ChainedTopic holds chained records: partition p is chain p (chainer ->
	// ClickHouse writer, exporters). Its name is part of every checkpoint origin.
	ChainedTopic = "audit.chained"
	// CheckpointsTopic holds signed checkpoints (chainer -> writer, S3 archive).
	CheckpointsTopic = "audit.checkpoints"
	// DeadLetterTopic holds input the chainer could not chain, with the reason.
	DeadLetterTopic = "audit.deadletter"
	// WriterDeadLetterTopic holds audit.chained values the ClickHouse writer could
	// not decode, with the reason and source (exporters have their own,
	// audit.exporter.<sink>.deadletter).
	WriterDeadLetterTopic = "audit.writer.deadletter"
)

// Group is a consumer-group member of the data flow (the chainer, the ClickHouse
// writer, each exporter sink). Every one of them reads committed records only (a
// chainer's aborted transaction is never chained, stored or exported), starts a
// partition it has never committed at its beginning (an audit consumer must not skip
// history), and with InstanceID is a static member: a restarted instance takes its
// partitions back at once instead of after the session timeout.
type Group struct {
	Brokers    []string
	Name       string
	InstanceID string
	Topics     []string
	// Fetch is how long the broker may gather records for one fetch (zero:
	// DefaultFetchMaxWait and DefaultFetchMinBytes). It applies to the group's
	// fetches only: a member's own partition reads (the chainer's restore) keep
	// franz-go's answer-at-once default.
	Fetch Fetch
	// Assigned, Revoked and Lost are the rebalance callbacks (nil: none).
	Assigned, Revoked, Lost func(context.Context, *kgo.Client, map[string][]int32)
}

// RecordsDeleted reports whether a fetch error means the broker no longer holds the
// records at the member's position: they were deleted (retention.ms, retention.bytes
// or DeleteRecords) before the member read them. For an audit log that is data
// lost to this consumer, so members stop rather than continue past it.
func RecordsDeleted(err error) bool { return errors.Is(err, kerr.OffsetOutOfRange) }

// Opts are g's client options; the member adds its own (commit policy, producer).
func (g Group) Opts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(g.Brokers...),
		kgo.ConsumerGroup(g.Name),
		kgo.ConsumeTopics(g.Topics...),
		// A new group starts at the beginning of the log. Records deleted
		// (retention) before a member read them are never skipped: the
		// partition fails with OffsetOutOfRange (see RecordsDeleted) instead of
		// resuming at the log start, and every member stops on it.
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}
	opts = append(opts, g.Fetch.opts()...)
	if g.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(g.InstanceID))
	}
	if g.Assigned != nil {
		opts = append(opts, kgo.OnPartitionsAssigned(g.Assigned))
	}
	if g.Revoked != nil {
		opts = append(opts, kgo.OnPartitionsRevoked(g.Revoked))
	}
	if g.Lost != nil {
		opts = append(opts, kgo.OnPartitionsLost(g.Lost))
	}
	return opts
}

// Topic describes one topic trailkeep owns.
type Topic struct {
	Name        string
	Partitions  int32
	Replication int16
	// Configs are topic-level settings (e.g. "min.insync.replicas"); nil values are
	// left at the broker default.
	Configs map[string]*string
}

// TopicSettings are the settings trailkeep gives the topics it creates (read from
// the environment by every binary that creates topics).
type TopicSettings struct {
	// MinInsyncReplicas is min.insync.replicas of the topics trailkeep creates: with
	// the producers' acks=all, a write is acknowledged only once this many replicas
	// hold it. 0 leaves the broker default. Production: 2, with replication 3.
	MinInsyncReplicas int `env:"TRAILKEEP_KAFKA_MIN_INSYNC_REPLICAS, default=0"`
}

// Configs are the topic-level settings for Topic.Configs.
func (s TopicSettings) Configs() map[string]*string {
	if s.MinInsyncReplicas <= 0 {
		return nil
	}
	v := strconv.Itoa(s.MinInsyncReplicas)
	return map[string]*string{"min.insync.replicas": &v}
}

// EnsureTopics creates the topics that do not exist yet. An existing topic is left as
// it is, even if its partition count differs: repartitioning an audit topic changes
// which chain an event joins and must be a deliberate operation, never a side effect
// of a restart.
func EnsureTopics(ctx context.Context, cl *kgo.Client, topics ...Topic) error {
	adm := kadm.NewClient(cl)
	for _, t := range topics {
		resp, err := adm.CreateTopic(ctx, t.Partitions, t.Replication, t.Configs, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s (%d partitions, replication %d): %w", t.Name, t.Partitions, t.Replication, err)
		}
	}
	return waitTopics(ctx, adm, topics)
}

// waitTopics returns once every topic's metadata shows all its partitions with a
// leader. CreateTopics answers when the controller accepted the topic; a broker that
// has just started can still report the topic without partitions for a moment, and
// a reader of offsets in that moment (the chainer's restore) fails.
func waitTopics(ctx context.Context, adm *kadm.Client, topics []Topic) error {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		td, err := adm.ListTopics(ctx, names...)
		missing := ""
		for _, t := range topics {
			d, ok := td[t.Name]
			ready := err == nil && ok && d.Err == nil && len(d.Partitions) >= int(t.Partitions)
			for _, p := range d.Partitions {
				ready = ready && p.Err == nil && p.Leader >= 0
			}
			if !ready {
				missing = t.Name
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka: topic %s was created but its partitions have no leader after 30s (%v); check the broker", missing, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Message is one record to produce.
type Message struct {
	Key, Value []byte
}

// ErrBufferFull means the producer already holds its maximum of unacknowledged bytes;
// the caller should answer 503 and let the client retry later.
var ErrBufferFull = errors.New("kafka: producer buffer full; retry later")

// ProducerConfig configures NewProducer. Zero values take the documented defaults.
type ProducerConfig struct {
	Brokers []string
	Topic   string
	// MaxBufferedBytes bounds the memory of records waiting for acknowledgement;
	// beyond it Publish fails fast with ErrBufferFull. Default 64 MiB.
	MaxBufferedBytes int
	// DeliveryTimeout bounds how long a record may wait for an acknowledgement
	// (for instance while the broker is down) before Publish reports it failed.
	// Default 10s: long enough to ride out a leader election, short enough for a
	// hook sender's own timeout.
	DeliveryTimeout time.Duration
	// Linger lets concurrent requests share produce batches: a record waits up to
	// this long for others to the same partition. Longer means fewer, larger produce
	// requests (less work for the broker per record) and a later acknowledgement.
	// Default 2ms.
	Linger time.Duration
	// Compression of produce batches: "lz4" (the default), "zstd", "snappy", "gzip"
	// or "none". The brokers store batches as sent and consumers decompress them, so
	// this trades CPU on every hop against bytes on the network and disk.
	Compression string
	// Extra options, appended last (tests use them to shorten timeouts).
	Opts []kgo.Opt
}

// Producer produces to one topic with franz-go's idempotent producer and acks=all.
// It is safe for concurrent use.
type Producer struct {
	cl    *kgo.Client
	topic string
	// lastContact is when a broker last answered (a probe or an acknowledgement),
	// in Unix nanoseconds; 0 before the first answer.
	lastContact atomic.Int64
	stop        chan struct{}
	once        sync.Once
	done        chan struct{}
}

// NewProducer connects a producer. It does not wait for the broker: readiness is
// tracked in the background (Ready) so that ingest can start, answer /healthz and
// report not-ready while Kafka is still coming up.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return nil, errors.New("kafka: producer needs brokers and a topic")
	}
	if cfg.MaxBufferedBytes <= 0 {
		cfg.MaxBufferedBytes = 64 << 20
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 10 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 2 * time.Millisecond
	}
	codec, err := CompressionCodec(cfg.Compression)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		// Idempotence is franz-go's default; acks=all is required for it and
		// stated here because durability depends on it.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Keys hash like the Java client (murmur2), so every producer sends a
		// tenant's events to the same partition, i.e. the same chain.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.MaxBufferedBytes(cfg.MaxBufferedBytes),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout + cfg.Linger),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchCompression(codec, kgo.NoCompression()),
	}
	opts = append(opts, cfg.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client for %v: %w", cfg.Brokers, err)
	}
	p := &Producer{cl: cl, topic: cfg.Topic, stop: make(chan struct{}), done: make(chan struct{})}
	go p.watch()
	return p, nil
}

// CompressionCodec maps a ProducerConfig.Compression name to franz-go's codec; ""
// is lz4.
func CompressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("kafka: compression %q: want lz4, zstd, snappy, gzip or none", name)
}

// Client exposes the underlying client (topic creation, metrics).
func (p *Producer) Client() *kgo.Client { return p.cl }

func (p *Producer) watch() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := p.cl.Ping(ctx); err == nil {
			p.contact()
		}
		cancel()
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// ReadyWithin is how recently a broker must have answered for Ready to hold.
const ReadyWithin = 5 * time.Second

// Ready reports whether a broker answered a probe (sent every second) or
// acknowledged a record within ReadyWithin. One slow probe on a saturated machine
// does not make a broker that keeps acknowledging records "unreachable".
func (p *Producer) Ready() bool {
	last := p.lastContact.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < ReadyWithin
}

func (p *Producer) contact() { p.lastContact.Store(time.Now().UnixNano()) }

// TopicExists asks the brokers whether the producer's topic exists with
// partitions. A producer whose topic is missing reaches Kafka but cannot make
// anything durable: for a service that must record before it answers (the query
// API's access log), that is not ready.
func (p *Producer) TopicExists(ctx context.Context) error {
	tds, err := kadm.NewClient(p.cl).ListTopics(ctx, p.topic)
	if err != nil {
		return err
	}
	td, ok := tds[p.topic]
	switch {
	case !ok:
		return fmt.Errorf("topic %s: not in the metadata", p.topic)
	case td.Err != nil:
		return fmt.Errorf("topic %s: %w", p.topic, td.Err)
	case len(td.Partitions) == 0:
		return fmt.Errorf("topic %s has no partitions", p.topic)
	}
	return nil
}

// Buffered reports records produced but not yet acknowledged (the producer lag).
func (p *Producer) Buffered() int64 { return p.cl.BufferedProduceRecords() }

// Publish produces msgs and waits until each is acknowledged by all in-sync
// replicas or has failed. errs[i] is nil exactly when msgs[i] is durable.
// A full buffer fails the affected messages with ErrBufferFull at once.
func (p *Producer) Publish(ctx context.Context, msgs []Message) []error {
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	wg.Add(len(msgs))
	for i, m := range msgs {
		i := i
		p.cl.TryProduce(ctx, &kgo.Record{Key: m.Key, Value: m.Value}, func(_ *kgo.Record, err error) {
			switch {
			case err == nil:
				p.contact()
			case errors.Is(err, kgo.ErrMaxBuffered):
				err = ErrBufferFull
			}
			errs[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	return errs
}

// Close flushes what is buffered (bounded by ctx) and closes the client.
func (p *Producer) Close(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		if ferr := p.cl.Flush(ctx); ferr != nil {
			err = fmt.Errorf("kafka: flush %d unacknowledged records: %w", p.cl.BufferedProduceRecords(), ferr)
		}
		p.cl.Close()
	})
	return err
}

// PartitionCount returns the number of partitions of topic.
func PartitionCount(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: describe %s: %w", topic, err)
	}
	t, ok := td[topic]
	if !ok || t.Err != nil {
		return 0, fmt.Errorf("kafka: topic %s does not exist (%v); start ingest first or create it", topic, t.Err)
	}
	return int32(len(t.Partitions)), nil
}
