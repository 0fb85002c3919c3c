package devlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// recoverBroker repairs what a killed run leaves in the embedded broker, before any
// component connects.
func recoverBroker(ctx context.Context, c *kfake.Cluster, logger *slog.Logger) error {
	sealed, err := sealCrashedTransactions(ctx, c, []string{kafka.ChainedTopic, kafka.CheckpointsTopic, kafka.DeadLetterTopic})
	if err != nil {
		return err
	}
	if len(sealed) > 0 {
		logger.Warn("dev: the last run was killed inside a transaction; wrote its abort marker", "partitions", sealed)
	}
	moved, err := resumeChainer(ctx, c, ChainerGroup)
	if err != nil {
		return err
	}
	if len(moved) > 0 {
		logger.Warn("dev: the last run was killed while committing a transaction; moved the chainer past what it had chained", "partitions", moved)
	}
	return nil
}

// sealCrashedTransactions writes the abort marker that the embedded broker's crash
// recovery leaves out, and returns the partitions ("topic/partition") it sealed.
//
// When kfake loads a data directory that a killed process left (no snapshot), it
// treats every transaction still open as aborted — in memory only: no abort marker
// is appended to the log (kfake persist.go, loadPartitionFullReplay: "Implicitly
// abort in-flight transactions"). Kafka clients (franz-go as the Java client) drop a
// producer's batches from an aborted transaction's first offset until they read
// that producer's abort marker, so without one a read_committed reader
//   - drops every later committed batch of the same producer id in a fetch that
//     reaches past the aborted range: the restarted chainer's records, which the
//     writer and the exporters then skip for good (acknowledged events never stored
//     or archived), and
//   - never sees an offset at the end of the log, so the chainer's restore, which
//     reads its own topics up to the last stable offset, waits there forever.
//
// A real broker's coordinator writes the marker when it aborts, so this repairs
// only the embedded broker. It must run after the broker loads and before any
// client produces. It relies on the chainer's invariant of one transactional
// writer per partition: a crashed transaction is then the partition's last batch.
// A partition whose last stable offset is below its end has a transaction the
// broker itself still tracks (restored from a clean shutdown) and resolves; it is
// left alone.
func sealCrashedTransactions(ctx context.Context, c *kfake.Cluster, topics []string) ([]string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var sealed []string
	for _, topic := range topics {
		for _, pi := range c.PartitionInfos(topic) {
			if pi.HighWatermark == pi.LogStartOffset || pi.LastStableOffset < pi.HighWatermark {
				continue
			}
			last, err := lastRecord(ctx, c, topic, pi.Partition, pi.HighWatermark-1)
			if err != nil {
				return sealed, fmt.Errorf("read the last record of %s/%d: %w", topic, pi.Partition, err)
			}
			if !last.Attrs.IsTransactional() || last.Attrs.IsControl() {
				continue
			}
			if err := writeAbortMarker(ctx, cl, c.LeaderFor(topic, pi.Partition), topic, pi.Partition, last); err != nil {
				return sealed, fmt.Errorf("seal the crashed transaction of producer %d on %s/%d: %w", last.ProducerID, topic, pi.Partition, err)
			}
			sealed = append(sealed, fmt.Sprintf("%s/%d", topic, pi.Partition))
		}
	}
	return sealed, nil
}

// lastRecord reads the record at offset off, uncommitted data and markers included.
func lastRecord(ctx context.Context, c *kfake.Cluster, topic string, partition int32, off int64) (*kgo.Record, error) {
	var found *kgo.Record
	err := Scan(ctx, c.ListenAddrs(), topic, partition, off, off+1, kgo.ReadUncommitted(), func(r *kgo.Record) bool {
		found = r
		return false
	})
	if err == nil && found == nil {
		err = fmt.Errorf("offset %d not returned", off)
	}
	return found, err
}

// writeAbortMarker appends an abort marker for the producer of r, as a coordinator
// does when it aborts a transaction (WriteTxnMarkers).
func writeAbortMarker(ctx context.Context, cl *kgo.Client, leader int32, topic string, partition int32, r *kgo.Record) error {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = r.ProducerID, r.ProducerEpoch, false
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{partition}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
	if err != nil {
		return err
	}
	for _, rm := range resp.Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ChainerGroup is the consumer group of trailkeep dev's chainer.
const ChainerGroup = "trailkeep-chainer"

// resumeChainer moves the chainer group's committed offset on each audit.events
// partition past the inputs that are already chained (or dead-lettered), and
// returns the partitions it moved ("audit.events/P: A -> B").
//
// kfake commits a transaction in two steps: it writes the commit markers, then
// applies the transaction's consumer offsets to the group (txns.go, endTx). A
// process killed between the two leaves chained records committed with the
// chainer's offset still before their inputs, and the restarted chainer chains
// those events a second time, at new seqs: an event stored twice, which a real
// broker (offsets and markers in one transaction) never produces. The inputs of
// the last committed transaction are found by content: a chained record holds its
// input's value verbatim, and a dead letter names its source offset.
func resumeChainer(ctx context.Context, c *kfake.Cluster, group string) ([]string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = kadm.OffsetResponses{}, nil // never committed: from the start
	}
	if err != nil {
		return nil, fmt.Errorf("fetch the offsets of group %s: %w", group, err)
	}
	var moved []string
	commits := kadm.Offsets{}
	for _, pi := range c.PartitionInfos(kafka.EventsTopic) {
		from := pi.LogStartOffset
		if o, ok := committed.Lookup(kafka.EventsTopic, pi.Partition); ok && o.At > from {
			from = o.At
		}
		if from >= pi.HighWatermark {
			continue
		}
		next, err := chainedThrough(ctx, c, pi.Partition, from, pi.HighWatermark)
		if err != nil {
			return moved, fmt.Errorf("%s/%d: %w", kafka.EventsTopic, pi.Partition, err)
		}
		if next > from {
			commits.AddOffset(kafka.EventsTopic, pi.Partition, next, -1)
			moved = append(moved, fmt.Sprintf("%s/%d: %d -> %d", kafka.EventsTopic, pi.Partition, from, next))
		}
	}
	if len(moved) == 0 {
		return nil, nil
	}
	resp, err := adm.CommitOffsets(ctx, group, commits)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("commit the offsets of group %s: %w", group, err)
	}
	return moved, nil
}

// chainedThrough returns the audit.events offset after the last input of
// partition p in [from, end) whose chained record or dead letter is committed;
// from when there is none.
func chainedThrough(ctx context.Context, c *kfake.Cluster, p int32, from, end int64) (int64, error) {
	next := from
	dead, ok, err := lastCommitted(ctx, c, kafka.DeadLetterTopic, p)
	if err != nil {
		return 0, err
	}
	if ok {
		src := fmt.Sprintf("%s/%d@", kafka.EventsTopic, p)
		for _, h := range dead.Headers {
			if v := string(h.Value); h.Key == "source" && strings.HasPrefix(v, src) {
				if off, err := strconv.ParseInt(v[len(src):], 10, 64); err == nil && off >= from && off < end {
					next = max(next, off+1)
				}
			}
		}
	}
	last, ok, err := lastCommitted(ctx, c, kafka.ChainedTopic, p)
	if err != nil || !ok {
		return next, err
	}
	var rec chain.Record
	if err := rec.UnmarshalJSON(last.Value); err != nil {
		return 0, fmt.Errorf("the last chained record: %w", err)
	}
	// After a clean stop the last chained input is the one just before from: one
	// read, instead of searching every input the chainer has yet to chain.
	if pi := c.PartitionInfo(kafka.EventsTopic, p); pi != nil && from > pi.LogStartOffset {
		if _, before, err := findValue(ctx, c, kafka.EventsTopic, p, from-1, from, rec.Event); err != nil || before {
			return next, err
		}
	}
	off, found, err := findValue(ctx, c, kafka.EventsTopic, p, from, end, rec.Event)
	if err != nil || !found {
		return next, err
	}
	return max(next, off+1), nil
}

// lastCommitted returns the last committed data record of topic/p (none: ok
// false), reading back from the end in growing windows past transaction markers.
func lastCommitted(ctx context.Context, c *kfake.Cluster, topic string, p int32) (*kgo.Record, bool, error) {
	pi := c.PartitionInfo(topic, p)
	if pi == nil {
		return nil, false, nil
	}
	for window := int64(64); ; window *= 4 {
		start := max(pi.LogStartOffset, pi.LastStableOffset-window)
		var last *kgo.Record
		err := Scan(ctx, c.ListenAddrs(), topic, p, start, pi.LastStableOffset, kgo.ReadCommitted(), func(r *kgo.Record) bool {
			if !r.Attrs.IsControl() {
				last = r
			}
			return true
		})
		if err != nil || last != nil || start == pi.LogStartOffset {
			return last, last != nil, err
		}
	}
}

// findValue returns the offset of the first record of topic/p in [from, end)
// whose value is value.
func findValue(ctx context.Context, c *kfake.Cluster, topic string, p int32, from, end int64, value []byte) (int64, bool, error) {
	at, found := int64(0), false
	err := Scan(ctx, c.ListenAddrs(), topic, p, from, end, kgo.ReadCommitted(), func(r *kgo.Record) bool {
		if bytes.Equal(r.Value, value) {
			at, found = r.Offset, true
			return false
		}
		return true
	})
	return at, found, err
}

// Scan hands fn the records of topic/p in [from, end) at isolation level iso,
// transaction markers included, in order, until fn returns false. A broker that
// returns nothing for 30 s before end is an error, never a short read.
func Scan(ctx context.Context, brokers []string, topic string, p int32, from, end int64, iso kgo.IsolationLevel, fn func(*kgo.Record) bool) error {
	if from >= end {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.KeepControlRecords(), kgo.FetchIsolationLevel(iso),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}))
	if err != nil {
		return err
	}
	defer cl.Close()
	for next := from; next < end; {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fs.Err(); err != nil {
			return fmt.Errorf("read %s/%d at %d of %d: %w", topic, p, next, end, err)
		}
		more := true
		fs.EachRecord(func(r *kgo.Record) {
			if !more || r.Offset >= end {
				return
			}
			next = r.Offset + 1
			more = fn(r)
		})
		if !more {
			return nil
		}
	}
	return nil
}
