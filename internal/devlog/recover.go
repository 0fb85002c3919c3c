package devlog

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(off)}}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("offset %d not returned: %w", off, err)
		}
		if err := fs.Err(); err != nil {
			return nil, err
		}
		var found *kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset == off {
				found = r
			}
		})
		if found != nil {
			return found, nil
		}
	}
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
