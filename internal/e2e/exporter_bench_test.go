package e2e

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/gen"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/internal/s3test"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/sink"
	"github.com/trailkeep/trailkeep/pkg/sink/datadog"
	"github.com/trailkeep/trailkeep/pkg/sink/datadog/ddtest"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
	"github.com/trailkeep/trailkeep/pkg/sink/splunk"
	"github.com/trailkeep/trailkeep/pkg/sink/splunk/hectest"
)

// The exporter figures in BENCHMARKS.md (make bench-exporter): events/s from
// audit.chained to each sink, and the memory a stalled sink holds. Each benchmark
// runs once over a fixed volume of generated chained records (gen: realistic
// events, ~700 bytes, 4 partitions, one day) produced outside the measured time.

const exportEvents = 400_000

// fillChained produces n generated chained records to a fresh 4-partition topic.
func fillChained(b *testing.B, n int) (broker, topic string) {
	b.Helper()
	br := kafkatest.Shared(b)
	topic = kafkatest.Topic("bench.chained")
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	// gen's records are stamped on 2026-11-01: past the broker's default retention,
	// which deleted them mid-run in about one run in four (the "exporter stall").
	if err := kafka.EnsureTopics(ctx, cl, kafka.Topic{Name: topic, Partitions: 4, Replication: 1, Configs: kafkatest.KeepRecords()}); err != nil {
		b.Fatal(err)
	}
	o := gen.Options{Events: n, Partitions: 4, Window: 6 * time.Hour, End: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	_, err = gen.Generate(o, 10_000, func(recs []chain.Record) error {
		out := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			v, err := r.MarshalJSON()
			if err != nil {
				return err
			}
			out[i] = &kgo.Record{Topic: topic, Partition: r.Partition, Value: v, Timestamp: r.ChainedAt}
		}
		return cl.ProduceSync(ctx, out...).FirstErr()
	})
	if err != nil {
		b.Fatal(err)
	}
	return br.Addr, topic
}

// drain runs s over the topic until n records were acknowledged and reports events/s.
func drain(b *testing.B, s sink.Sink, broker, topic string, n int, cfg sink.Config) {
	b.Helper()
	cfg.Brokers, cfg.Group, cfg.ChainedTopic = []string{broker}, "bench-"+s.Name()+"-"+topic, topic
	cfg.CheckpointTopic = topic + ".none"
	r, err := sink.NewRunner(s, cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- r.Run(ctx) }()
	lastLog := time.Now()
	for r.Stats().Acknowledged < int64(n) {
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			fmt.Fprintf(os.Stderr, "%s: %d of %d acknowledged after %s\n", s.Name(), r.Stats().Acknowledged, n, time.Since(start).Round(time.Second))
		}
		select {
		case err := <-done:
			b.Fatalf("runner stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("only %d of %d acknowledged after 10 minutes", r.Stats().Acknowledged, n)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(n)/el.Seconds(), "events/s")
	b.ReportMetric(el.Seconds(), "s")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s: %d events in %s = %.0f events/s (retries %d)", s.Name(), n, el.Round(time.Millisecond), float64(n)/el.Seconds(), r.Stats().Retried)
}

// BenchmarkExportS3: NDJSON.gz objects with digests, SHA-256 checksums and
// COMPLIANCE retention, create-only, to the local versitygw (target ≥ 50k events/s).
func BenchmarkExportS3(b *testing.B) {
	broker, topic := fillChained(b, exportEvents)
	srv := s3test.Shared(b)
	bucket := srv.Bucket(b, true)
	cl, err := sinks3.NewClient(context.Background(), srv.ClientConfig(sinks3.ChecksumSHA256))
	if err != nil {
		b.Fatal(err)
	}
	s, err := sinks3.New(sinks3.Config{Client: cl, Bucket: bucket, Prefix: "bench", Mode: types.ObjectLockModeCompliance, Retention: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	drain(b, s, broker, topic, exportEvents, sink.Config{BatchRecords: 20_000, BatchBytes: 16 << 20, Linger: time.Second, BufferBytes: 32 << 20})
}

// BenchmarkExportHEC: gzip batches of 1000 events with indexer acknowledgement to
// the in-process collector, which reports a batch indexed one second after it
// arrived (Splunk's indexer acks take seconds); acks are polled every second, the
// default (target ≥ 20k events/s).
func BenchmarkExportHEC(b *testing.B) {
	broker, topic := fillChained(b, exportEvents)
	hec := hectest.New(hectest.Options{Token: "t", Ack: true, AckDelay: time.Second, MaxContentLength: 64 << 20, Discard: true})
	url, err := hec.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer hec.Close()
	s, err := splunk.New(splunk.Config{URL: url, Token: "t", Ack: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	drain(b, s, broker, topic, exportEvents, sink.Config{BatchRecords: 1000, BatchBytes: 1 << 20})
}

// BenchmarkExportDatadog: SubmitLog requests of up to 1000 entries, gzip, to the
// in-process intake.
func BenchmarkExportDatadog(b *testing.B) {
	broker, topic := fillChained(b, exportEvents/4)
	dd := &ddtest.Server{APIKey: "k"}
	url, err := dd.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer dd.Close()
	s, err := datadog.New(datadog.Config{APIKey: "k", URL: url})
	if err != nil {
		b.Fatal(err)
	}
	drain(b, s, broker, topic, exportEvents/4, sink.Config{BatchRecords: 1000, BatchBytes: 4_000_000})
}

type stalled struct{}

func (stalled) Name() string { return "stalled" }
func (stalled) Deliver(ctx context.Context, _ *sink.Batch) error {
	<-ctx.Done()
	return ctx.Err()
}

// BenchmarkStalledSinkMemory: the heap a sink that never acknowledges holds once its
// partitions are paused, with the default 8 MiB buffer per partition, over a topic
// holding ~280 MB; then, with the stalled sink still running, the rate of a healthy
// HEC sink in the same process.
func BenchmarkStalledSinkMemory(b *testing.B) {
	broker, topic := fillChained(b, exportEvents)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	base := heap()
	r, err := sink.NewRunner(stalled{}, sink.Config{Brokers: []string{broker}, Group: "bench-stalled-" + topic, ChainedTopic: topic})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var peak uint64
	for i := 0; i < 40; i++ {
		time.Sleep(250 * time.Millisecond)
		peak = max(peak, heap())
	}
	buffered := r.Stats().BufferedBytes
	hec := hectest.New(hectest.Options{Token: "t", MaxContentLength: 64 << 20, Discard: true})
	url, err := hec.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer hec.Close()
	s, err := splunk.New(splunk.Config{URL: url, Token: "t"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	drain(b, s, broker, topic, exportEvents, sink.Config{BatchRecords: 1000, BatchBytes: 1 << 20})
	if r.Stats().BufferedBytes > buffered*2 {
		b.Fatalf("stalled sink grew to %d bytes while the other drained", r.Stats().BufferedBytes)
	}
	cancel()
	<-done
	b.ReportMetric(float64(buffered)/(1<<20), "stalled-buffered-MiB")
	b.ReportMetric(float64(peak-base)/(1<<20), "stalled-heap-growth-MiB")
	b.Logf("stalled sink: %.1f MiB of records buffered (4 partitions, 8 MiB limit each, plus one poll); heap grew %.1f MiB over the baseline while stalled",
		float64(buffered)/(1<<20), float64(peak-base)/(1<<20))
}
