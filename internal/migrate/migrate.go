// Package migrate moves the log of a `trailkeep dev` data directory into a Kafka
// cluster, so that a trial outgrows one machine without losing its history.
//
// Only the log moves. audit.chained, audit.checkpoints and audit.deadletter are
// copied record for record, partition for partition and in order — the chained
// records carry their seq, hashes and tenant, the checkpoints their signatures —
// and of audit.events only what the dev chainer had not yet chained (after its
// committed offset). ClickHouse and the archive are not copied: the destination's
// writer and exporter build them from the copied log with the same code that
// built them in dev, and its chainer restores every chain from the copied tails
// and continues it. Checkpoint origins name the deployment and topic, so the
// destination keeps the topic names and runs with the dev deployment name (Run
// reports it) and the dev signing key.
//
// The destination topics must be empty (or absent: they are created with the
// source's partition counts), and the destination pipeline must not run until the
// copy is done.
package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/devlog"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// Options say what to move where.
type Options struct {
	// DataDir is the stopped trailkeep dev's data directory.
	DataDir string
	// Brokers and ClientOpts reach the destination cluster (ClientOpts: TLS, SASL).
	Brokers    []string
	ClientOpts []kgo.Opt
	// Replication of the topics migrate creates; -1 (the default when 0) is the
	// broker's default.
	Replication int16
	// ChainerGroup is the dev chainer's consumer group, whose committed offsets on
	// audit.events mark what is already chained. Default "trailkeep-chainer".
	ChainerGroup string
	// Progress receives a line per topic copied (nil: none).
	Progress io.Writer
	Logger   *slog.Logger
}

// RefusedError is a destination that cannot take the copy: a topic that holds
// records or has another partition count. Nothing was written; empty or delete
// the topic (or create it with the source's partition count) and run again.
type RefusedError struct {
	Topic  string
	Reason string
}

func (e *RefusedError) Error() string { return "topic " + e.Topic + " " + e.Reason }

// Partition is what was copied of one partition.
type Partition struct {
	Topic     string
	Partition int32
	// From and To are the source offsets copied, [From, To); Records were
	// written (control records, which markers of transactions are, are not).
	From, To int64
	Records  int64
}

// Result is what Run moved.
type Result struct {
	// Deployment is the name in the checkpoints' origins: run the destination with
	// it (TRAILKEEP_DEPLOYMENT), or its chainer refuses the copied chains.
	Deployment string
	Partitions []Partition
}

// topics are copied in this order; events last, so that a destination chainer
// started too early finds the chains before the events to chain.
var topics = []string{kafka.CheckpointsTopic, kafka.ChainedTopic, kafka.DeadLetterTopic, kafka.EventsTopic}

// Run copies the log. On error nothing in the source has changed, and the
// destination may hold part of the copy: empty its topics before trying again.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Replication == 0 {
		o.Replication = -1
	}
	if o.ChainerGroup == "" {
		o.ChainerGroup = "trailkeep-chainer"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	broker, closeLog, err := devlog.OpenLog(ctx, o.DataDir, o.Logger)
	if err != nil {
		return Result{}, err
	}
	defer closeLog()
	src, err := kgo.NewClient(kgo.SeedBrokers(broker.ListenAddrs()...))
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	dst, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5 * time.Millisecond), kgo.ProducerBatchMaxBytes(1 << 20), kgo.MaxBufferedRecords(50000)}, o.ClientOpts...)...)
	if err != nil {
		return Result{}, fmt.Errorf("destination: %w", err)
	}
	defer dst.Close()
	plan, err := planCopy(ctx, src, o.ChainerGroup)
	if err != nil {
		return Result{}, fmt.Errorf("source: %w", err)
	}
	if err := prepareDestination(ctx, dst, plan, o.Replication); err != nil {
		return Result{}, fmt.Errorf("destination: %w", err)
	}
	var res Result
	for _, part := range plan.parts {
		n, dep, err := copyPartition(ctx, broker.ListenAddrs(), dst, part)
		if err != nil {
			return res, fmt.Errorf("copy %s/%d: %w", part.Topic, part.Partition, err)
		}
		part.Records = n
		if dep != "" {
			res.Deployment = dep
		}
		res.Partitions = append(res.Partitions, part)
		if n > 0 {
			fmt.Fprintf(o.Progress, "copied %s/%d: %d records (source offsets %d..%d)\n", part.Topic, part.Partition, n, part.From, part.To)
		}
	}
	if err := checkCopied(ctx, dst, res.Partitions); err != nil {
		return res, fmt.Errorf("destination: %w", err)
	}
	return res, nil
}

// plan is the partitions to copy and each topic's partition count.
type plan struct {
	counts map[string]int32
	parts  []Partition
}

// planCopy reads the source's offsets: the committed (stable) end of each
// partition, and for audit.events the dev chainer's committed offset.
func planCopy(ctx context.Context, src *kgo.Client, group string) (plan, error) {
	adm := kadm.NewClient(src)
	p := plan{counts: map[string]int32{}}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return p, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return p, fmt.Errorf("list committed end offsets: %w", err)
	}
	chained, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return p, fmt.Errorf("fetch the committed offsets of group %s: %w", group, err)
	}
	for _, topic := range topics {
		n, err := kafka.PartitionCount(ctx, src, topic)
		if err != nil {
			if topic == kafka.EventsTopic {
				return p, fmt.Errorf("nothing to migrate: %w", err)
			}
			continue // never chained: the destination chainer creates it
		}
		p.counts[topic] = n
		for part := range n {
			start, ok := starts.Lookup(topic, part)
			end, ok2 := ends.Lookup(topic, part)
			if !ok || !ok2 || start.Err != nil || end.Err != nil {
				return p, fmt.Errorf("offsets of %s/%d: %v", topic, part, errors.Join(start.Err, end.Err))
			}
			from := start.Offset
			if topic == kafka.EventsTopic {
				if c, ok := chained.Lookup(topic, part); ok && c.At > from {
					from = c.At
				}
			}
			p.parts = append(p.parts, Partition{Topic: topic, Partition: part, From: from, To: end.Offset})
		}
	}
	return p, nil
}

// prepareDestination creates the topics that do not exist and refuses a topic
// with another partition count or with records: a copy must land on the same
// partitions of an empty log.
func prepareDestination(ctx context.Context, dst *kgo.Client, p plan, replication int16) error {
	adm := kadm.NewClient(dst)
	var create []kafka.Topic
	for _, topic := range topics {
		want, ok := p.counts[topic]
		if !ok {
			continue
		}
		n, err := kafka.PartitionCount(ctx, dst, topic)
		if err != nil {
			create = append(create, kafka.Topic{Name: topic, Partitions: want, Replication: replication})
			continue
		}
		if n != want {
			return &RefusedError{Topic: topic, Reason: fmt.Sprintf("has %d partitions, the source %d: chains are per partition, so they must match (delete it or create it with %d)", n, want, want)}
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return fmt.Errorf("list end offsets of %s: %w", topic, err)
		}
		var nonEmpty []string
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 {
				nonEmpty = append(nonEmpty, fmt.Sprintf("%d (end offset %d)", o.Partition, o.Offset))
			}
		})
		if len(nonEmpty) > 0 {
			return &RefusedError{Topic: topic, Reason: fmt.Sprintf("is not empty on partition %s: migrate copies into an empty log only", strings.Join(nonEmpty, ", "))}
		}
	}
	if len(create) > 0 {
		return kafka.EnsureTopics(ctx, dst, create...)
	}
	return nil
}

// copyPartition copies the committed records of part in order to the same
// partition of the destination and waits until every one is acknowledged. For
// audit.checkpoints it also returns the deployment named in their origins.
func copyPartition(ctx context.Context, srcAddrs []string, dst *kgo.Client, part Partition) (int64, string, error) {
	var (
		n          int64
		deployment string
		perr       error
		failed     = make(chan error, 1)
	)
	err := devlog.Scan(ctx, srcAddrs, part.Topic, part.Partition, part.From, part.To, kgo.ReadCommitted(), func(r *kgo.Record) bool {
		if r.Attrs.IsControl() {
			return true
		}
		if part.Topic == kafka.CheckpointsTopic && deployment == "" {
			if deployment, perr = checkpointDeployment(r.Value); perr != nil {
				perr = fmt.Errorf("source offset %d: %w", r.Offset, perr)
				return false
			}
		}
		n++
		out := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
		dst.Produce(ctx, out, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		})
		return true
	})
	if err = errors.Join(err, perr); err != nil {
		return n, "", fmt.Errorf("read the source: %w", err)
	}
	if err := dst.Flush(ctx); err != nil {
		return n, "", err
	}
	select {
	case err := <-failed:
		return n, "", fmt.Errorf("write to the destination: %w", err)
	default:
	}
	return n, deployment, nil
}

// checkpointDeployment is the deployment in a checkpoint record's origin
// ("<deployment>/audit.chained/<partition>").
func checkpointDeployment(value []byte) (string, error) {
	var cp chain.SignedCheckpoint
	if err := json.Unmarshal(value, &cp); err != nil {
		return "", fmt.Errorf("checkpoint record: %w", err)
	}
	body, _, _ := strings.Cut(string(cp.Note), "\n\n")
	c, err := chain.ParseCheckpoint(body + "\n")
	if err != nil {
		return "", fmt.Errorf("checkpoint record: %w", err)
	}
	dep, _, ok := strings.Cut(c.Origin, "/"+kafka.ChainedTopic+"/")
	if !ok {
		return "", fmt.Errorf("checkpoint origin %q does not name %s", c.Origin, kafka.ChainedTopic)
	}
	return dep, nil
}

// checkCopied compares each destination partition's end with what was written:
// the destination was empty, so a difference is a record lost or duplicated.
func checkCopied(ctx context.Context, dst *kgo.Client, parts []Partition) error {
	ends, err := kadm.NewClient(dst).ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	for _, p := range parts {
		o, ok := ends.Lookup(p.Topic, p.Partition)
		if !ok || o.Err != nil {
			return fmt.Errorf("end offset of %s/%d: %v", p.Topic, p.Partition, o.Err)
		}
		if o.Offset != p.Records {
			return fmt.Errorf("%s/%d holds %d records after the copy of %d", p.Topic, p.Partition, o.Offset, p.Records)
		}
	}
	return nil
}
