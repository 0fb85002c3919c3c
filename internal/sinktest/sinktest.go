// Package sinktest feeds exporter tests: it creates fresh chained and checkpoint
// topics on the real broker and produces real chained records and signed checkpoints
// to them (package chaintest), as the chainer would, and remembers which (partition,
// seq) positions every sink must end up with.
package sinktest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/sink"
)

// Feed is a pair of fresh topics and the log produced to them.
type Feed struct {
	Broker      string
	Chained     string
	Checkpoints string
	Partitions  int32
	Log         *chaintest.Log
	// Want holds every produced (partition, seq).
	Want map[[2]uint64]bool
	cl   *kgo.Client
	cps  int // checkpoints of Log already produced
	// Start is the chained_at of the first record; records are Step (default one
	// millisecond) apart.
	Start time.Time
	Step  time.Duration
	n     int
}

// New creates the topics on the shared broker; a checkpoint is signed every
// `every` records of a partition.
func New(t testing.TB, partitions int32, every uint64) *Feed {
	t.Helper()
	f := NewUncreated(t, partitions, every)
	f.CreateTopics(t)
	return f
}

// NewUncreated is New without creating the topics (a consumer that starts before
// the chainer has created them); CreateTopics creates them.
func NewUncreated(t testing.TB, partitions int32, every uint64) *Feed {
	t.Helper()
	b := kafkatest.Shared(t)
	f := &Feed{Broker: b.Addr, Chained: kafkatest.Topic(kafka.ChainedTopic), Checkpoints: kafkatest.Topic(kafka.CheckpointsTopic),
		Partitions: partitions, Log: chaintest.New(t, "exporter.test", every), Want: map[[2]uint64]bool{},
		Start: time.Date(2026, 11, 20, 23, 59, 0, 0, time.UTC), Step: time.Millisecond}
	f.Log.Topic = f.Chained
	// Transactional, as the chainer writes these topics: a partition's tail is then a
	// commit marker no consumer commits past, which the exporter must live with.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0),
		kgo.TransactionalID(f.Chained+"-feed"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	f.cl = cl
	return f
}

// CreateTopics creates the chained and checkpoint topics.
func (f *Feed) CreateTopics(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The records carry Start-based timestamps, older than the broker's retention.
	if err := kafka.EnsureTopics(ctx, f.cl, kafka.Topic{Name: f.Chained, Partitions: f.Partitions, Replication: 1, Configs: kafkatest.KeepRecords()},
		kafka.Topic{Name: f.Checkpoints, Partitions: f.Partitions, Replication: 1, Configs: kafkatest.KeepRecords()}); err != nil {
		t.Fatal(err)
	}
}

// Tenant returns the tenant that lives on partition p (ingest keys by tenant).
func Tenant(p int32, k int) string { return "tenant-" + strconv.Itoa(int(p)) + "-" + strconv.Itoa(k) }

// Add chains n more records, round-robin over the partitions (two tenants per
// partition), produces them and any checkpoints signed meanwhile, and returns them.
func (f *Feed) Add(t testing.TB, n int) []chain.Record {
	t.Helper()
	var recs []chain.Record
	for i := 0; i < n; i++ {
		p := int32(f.n % int(f.Partitions))
		at := f.Start.Add(time.Duration(f.n) * f.Step)
		doc := chaintest.Doc("rule.updated", "user:u"+strconv.Itoa(f.n%7), "rule", "r-"+strconv.Itoa(f.n))
		recs = append(recs, f.Log.Add(p, Tenant(p, f.n/int(f.Partitions)%2), at, doc))
		f.n++
	}
	f.Produce(t, recs)
	return recs
}

// Produce writes recs to the chained topic (each to its own partition, in order) and
// the log's checkpoints not produced yet to the checkpoint topic.
func (f *Feed) Produce(t testing.TB, recs []chain.Record) {
	t.Helper()
	var out []*kgo.Record
	for _, r := range recs {
		v, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &kgo.Record{Topic: f.Chained, Partition: r.Partition, Value: v, Timestamp: r.ChainedAt})
		f.Want[[2]uint64{uint64(r.Partition), r.Seq}] = true
	}
	for _, cp := range f.Log.Checkpoints[f.cps:] {
		v, err := json.Marshal(cp.SignedCheckpoint)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &kgo.Record{Topic: f.Checkpoints, Partition: cp.Partition, Value: v})
	}
	f.cps = len(f.Log.Checkpoints)
	f.produce(t, out...)
}

// produce writes recs in one committed transaction; each record's Offset is then
// where it landed.
func (f *Feed) produce(t testing.TB, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.cl.BeginTransaction(); err != nil {
		t.Fatalf("sinktest: begin transaction: %v", err)
	}
	if err := f.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("sinktest: produce: %v", err)
	}
	if err := f.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("sinktest: commit: %v", err)
	}
}

// Run starts a Runner for s on the feed's topics until the test ends. Zero fields of
// cfg get test values: group "g-<sink>-<topic>", dead letters to "<chained>.dlq",
// backoff 20ms..500ms. The channel receives Run's result once it returned; cancel
// stops it early.
func (f *Feed) Run(t testing.TB, s sink.Sink, cfg sink.Config) (*sink.Runner, <-chan error, context.CancelFunc) {
	t.Helper()
	cfg.Brokers, cfg.ChainedTopic, cfg.CheckpointTopic = []string{f.Broker}, f.Chained, f.Checkpoints
	if cfg.Group == "" {
		cfg.Group = "g-" + s.Name() + "-" + f.Chained
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = f.Chained + ".dlq"
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 500*time.Millisecond
	}
	r, err := sink.NewRunner(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	result, stopped := make(chan error, 1), make(chan struct{})
	go func() {
		result <- r.Run(ctx)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			t.Errorf("sinktest: runner of %s did not stop", s.Name())
		}
	})
	return r, result, cancel
}

// ProduceRaw writes a value that is not a chained record to partition p and returns
// its offset (commit markers take offsets too, so it is not a count of records).
func (f *Feed) ProduceRaw(t testing.TB, p int32, value []byte) int64 {
	t.Helper()
	rec := &kgo.Record{Topic: f.Chained, Partition: p, Value: value}
	f.produce(t, rec)
	return rec.Offset
}

// WaitDeadLetters reads topic until it holds want records, for up to a minute: one
// read of a loaded broker can come back empty although the records are committed.
// It fails the test with the count it last saw.
func (f *Feed) WaitDeadLetters(t testing.TB, topic string, want int) []*kgo.Record {
	t.Helper()
	var dl []*kgo.Record
	Wait(t, time.Minute, func() error {
		if dl = f.DeadLetters(t, topic); len(dl) != want {
			return fmt.Errorf("%d dead letters in %s, want %d", len(dl), topic, want)
		}
		return nil
	})
	return dl
}

// DeadLetters reads every record of a dead-letter topic, with its headers.
func (f *Feed) DeadLetters(t testing.TB, topic string) []*kgo.Record {
	t.Helper()
	return kafkatest.ReadAll(t, f.Broker, topic)
}

// Header returns the value of header k of r.
func Header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// Wait polls cond every 100ms until it returns nil or the timeout passes, then fails
// the test with cond's last error.
func Wait(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
