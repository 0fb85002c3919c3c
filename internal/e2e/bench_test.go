package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/internal/proctest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/chainer"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/redact"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// The pipeline figures in BENCHMARKS.md (make bench-pipeline). Each benchmark runs once
// (-benchtime 1x) over a fixed volume and reports its own rates.

const benchEvents = 300000

// fillEvents produces n canonical events (~450 bytes) to topic, spread over its
// partitions by tenant key, outside the measured time.
func fillEvents(b *testing.B, cl *kgo.Client, topic string, n int) {
	b.Helper()
	st := event.Stamp{Tool: "registry", ReceivedAt: time.Now()}
	var wg sync.WaitGroup
	var ferr error
	var mu sync.Mutex
	for i := 0; i < n; i++ {
		st.Tenant = fmt.Sprintf("tenant-%d", i%12)
		doc := map[string]any{"action": "skill.updated", "actor": map[string]any{"type": "user", "id": fmt.Sprintf("usr_%d", i%500), "email": "user@acme.example"},
			"resource": map[string]any{"type": "skill", "id": fmt.Sprintf("skl_%d", i), "name": "api-conventions"},
			"change":   map[string]any{"from_version": "1.4.0", "to_version": "1.5.0", "diff_summary": "Adjusted rate limiting instructions for payments endpoints"},
			"result":   map[string]any{"status": "success"}, "metadata": map[string]any{"request_id": strconv.Itoa(i), "team": "payments"}}
		if err := st.Apply(doc); err != nil {
			b.Fatal(err)
		}
		_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(st.Tenant), Value: canon}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				ferr = err
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if ferr != nil {
		b.Fatal(ferr)
	}
}

// BenchmarkChainerThroughput: events/s through one chainer instance (consume
// audit.events, chain, produce audit.chained + checkpoints, commit offsets — all in
// Kafka transactions) over a pre-filled 4-partition topic.
func BenchmarkChainerThroughput(b *testing.B) {
	broker := kafkatest.Shared(b)
	prefix := kafkatest.Topic("bench-chainer")
	cl, _ := kgo.NewClient(kgo.SeedBrokers(broker.Addr), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100000))
	defer cl.Close()
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, cl, kafka.Topic{Name: prefix + ".events", Partitions: 4, Replication: 1}); err != nil {
		b.Fatal(err)
	}
	fillEvents(b, cl, prefix+".events", benchEvents)
	skey, vkey, _ := chain.GenerateKey("bench")
	signer, _ := chain.NewSigner(skey)
	verifiers, _ := chain.NewVerifiers(vkey)
	b.ResetTimer()
	for b.Loop() {
		c, err := chainer.New(chainer.Config{Brokers: []string{broker.Addr}, Group: prefix + "-g", TransactionalID: prefix + "-0", Deployment: "bench",
			InputTopic: prefix + ".events", ChainedTopic: prefix + ".chained", CheckpointTopic: prefix + ".checkpoints", DeadLetterTopic: prefix + ".dead",
			Signer: signer, Verifiers: verifiers})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.EnsureTopics(ctx); err != nil {
			b.Fatal(err)
		}
		start, cpu0 := time.Now(), proctest.SelfCPU(b)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx) }()
		for c.Stats().Chained < benchEvents {
			time.Sleep(10 * time.Millisecond)
		}
		el, cpu := time.Since(start), proctest.SelfCPU(b)-cpu0
		cancel()
		<-done
		c.Close()
		s := c.Stats()
		b.ReportMetric(float64(benchEvents)/el.Seconds(), "events/s")
		b.ReportMetric(float64(s.Commits), "transactions")
		// The chainer's own CPU (this process; the broker runs in its own): what a
		// change to its per-record work moves, whatever the broker's share.
		b.ReportMetric(cpu.Seconds()*1000/float64(benchEvents/1000), "cpu-ms/1k-events")
	}
}

// BenchmarkWriterThroughput: rows/s from audit.chained into ClickHouse through the
// writer's batches, over pre-filled chained records, for the default batch size (10k
// rows) and larger ones. Each size stores into its own fresh database.
func BenchmarkWriterThroughput(b *testing.B) {
	writerRows := benchEvents
	if v := os.Getenv("TRAILKEEP_BENCH_WRITER_ROWS"); v != "" {
		writerRows, _ = strconv.Atoi(v)
	}
	broker := kafkatest.Shared(b)
	prefix := kafkatest.Topic("bench-writer")
	cl, _ := kgo.NewClient(kgo.SeedBrokers(broker.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100000))
	defer cl.Close()
	ctx := context.Background()
	if err := kafka.EnsureTopics(ctx, cl, kafka.Topic{Name: prefix + ".chained", Partitions: 4, Replication: 1}, kafka.Topic{Name: prefix + ".checkpoints", Partitions: 4, Replication: 1}); err != nil {
		b.Fatal(err)
	}
	chains := []*chain.Chain{chain.New(0), chain.New(1), chain.New(2), chain.New(3)}
	var fillErr atomic.Value
	st := event.Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: time.Now()}
	var wg sync.WaitGroup
	for i := 0; i < writerRows; i++ {
		doc := map[string]any{"action": "skill.updated", "actor": map[string]any{"type": "user", "id": fmt.Sprintf("usr_%d", i%500)},
			"resource": map[string]any{"type": "skill", "id": fmt.Sprintf("skl_%d", i)}, "metadata": map[string]any{"team": "payments", "note": "Adjusted rate limiting instructions for payments endpoints"}}
		st.Apply(doc)
		_, canon, _ := event.Canonicalize(doc, event.DefaultLimits)
		p := int32(i % 4)
		rec, _ := chains[p].Append(canon, time.Now())
		val, _ := rec.MarshalJSON()
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: prefix + ".chained", Partition: p, Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				fillErr.CompareAndSwap(nil, err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err, _ := fillErr.Load().(error); err != nil {
		b.Fatalf("filling %s.chained: %v", prefix, err)
	}
	for _, rows := range []int{10000, 25000, 50000} {
		b.Run(fmt.Sprintf("batch=%d", rows), func(b *testing.B) { benchWriter(b, broker.Addr, prefix, rows, writerRows) })
	}
}

func benchWriter(b *testing.B, broker, prefix string, rows, writerRows int) {
	store := chtest.Store(b)
	ctx := context.Background()
	waitQuiet(b)
	for b.Loop() {
		// A fresh group per run: -count repeats a sub-benchmark within one parent call,
		// and a reused group would start at the previous run's committed end.
		w, err := clickhouse.NewWriter(store, clickhouse.WriterConfig{Brokers: []string{broker}, Group: kafkatest.Topic(fmt.Sprintf("%s-g%d", prefix, rows)),
			ChainedTopic: prefix + ".chained", CheckpointTopic: prefix + ".checkpoints", BatchRows: rows})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(rctx) }()
		last, lastAt := w.Stats(), time.Now()
		// The first insert's end splits start-up (group join, partition set-up,
		// topic checks) from the steady rate that follows.
		var first time.Time
		var firstRows int64
		for last.Rows < int64(writerRows) {
			select {
			case err := <-done:
				b.Fatalf("writer stopped after %+v: %v", w.Stats(), err)
			case <-time.After(10 * time.Millisecond):
			}
			if s := w.Stats(); s != last {
				last, lastAt = s, time.Now()
				if first.IsZero() && s.Rows > 0 {
					first, firstRows = lastAt, s.Rows
				}
			} else if time.Since(lastAt) > time.Minute {
				b.Fatalf("writer made no progress for a minute: %+v", s)
			}
		}
		el := time.Since(start)
		cancel()
		<-done
		w.Close()
		b.ReportMetric(float64(writerRows)/el.Seconds(), "rows/s")
		b.ReportMetric(float64(w.Stats().Batches), "batches")
		b.ReportMetric(float64(first.Sub(start).Milliseconds()), "to-first-insert-ms")
		b.ReportMetric(float64(last.Rows-firstRows)/lastAt.Sub(first).Seconds(), "after-first-rows/s")
	}
}

// BenchmarkEndToEndLag: events posted to ingest at 10k events/s (NDJSON batches of
// 100, every 10 ms) for 20 s; for every batch, the time from ingest's 2xx to all its
// rows being visible in ClickHouse. Reports p50/p99/max, and the CPU per 1k events of
// this process (ingest, chainer, writer, load) and of the broker. The chainer and the
// writer take their fetch settings from the environment as the binaries do
// (TRAILKEEP_KAFKA_FETCH_MAX_WAIT, _MIN_BYTES), so variants compare in one checkout.
func BenchmarkEndToEndLag(b *testing.B) {
	broker := kafkatest.Shared(b)
	var fetch kafka.Fetch
	if err := envconfig.Process(context.Background(), &fetch); err != nil {
		b.Fatal(err)
	}
	store := chtest.Store(b)
	prefix := kafkatest.Topic("bench-lag")
	ctx := context.Background()
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{broker.Addr}, Topic: prefix + ".events"})
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close(ctx)
	if err := kafka.EnsureTopics(ctx, prod.Client(), kafka.Topic{Name: prefix + ".events", Partitions: 4, Replication: 1}); err != nil {
		b.Fatal(err)
	}
	const tok = "tk_bench_lag_000000000000000000000000001"
	var toks []map[string]any
	for i := 0; i < 8; i++ {
		toks = append(toks, map[string]any{"name": fmt.Sprintf("t%d", i), "sha256": sha(fmt.Sprintf("%s%d", tok, i)), "tenant": fmt.Sprintf("tenant-%d", i), "source": "registry", "scopes": []string{"events:write"}})
	}
	cfg, _ := json.Marshal(map[string]any{"tokens": toks})
	ts, _ := ingest.ParseTokens(cfg)
	red, _ := redact.New()
	srv, _ := ingest.New(ingest.Options{Tokens: ts, Publisher: prod, Redactor: red, IPKey: []byte("bench-ip-key-0123456789")})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	skey, vkey, _ := chain.GenerateKey("bench")
	signer, _ := chain.NewSigner(skey)
	verifiers, _ := chain.NewVerifiers(vkey)
	c, err := chainer.New(chainer.Config{Brokers: []string{broker.Addr}, Group: prefix + "-c", TransactionalID: prefix + "-0", Deployment: "bench",
		InputTopic: prefix + ".events", ChainedTopic: prefix + ".chained", CheckpointTopic: prefix + ".checkpoints", DeadLetterTopic: prefix + ".dead",
		Signer: signer, Verifiers: verifiers, Fetch: fetch})
	if err != nil {
		b.Fatal(err)
	}
	c.EnsureTopics(ctx)
	w, _ := clickhouse.NewWriter(store, clickhouse.WriterConfig{Brokers: []string{broker.Addr}, Group: prefix + "-w", ChainedTopic: prefix + ".chained", CheckpointTopic: prefix + ".checkpoints", Fetch: fetch})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Run(rctx)
	go w.Run(rctx)
	for !prod.Ready() {
		time.Sleep(50 * time.Millisecond)
	}
	const batch, batches = 100, 2000 // 200k events at 10k/s
	acked := make([]time.Time, batches)
	visible := make([]time.Time, batches)
	brokerPID := broker.PID(b)
	commits0, cpu0, brokerCPU0 := c.Stats().Commits, proctest.SelfCPU(b), proctest.ProcessCPU(b, brokerPID)
	b.ResetTimer()
	for b.Loop() {
		var mu sync.Mutex
		// Poll which batches are complete in ClickHouse, while the load runs.
		pollErr := make(chan error, 1)
		go func() {
			deadline := time.Now().Add(3 * time.Minute)
			for time.Now().Before(deadline) {
				counts, err := store.CountByMetadata(ctx, "lag_batch")
				if err != nil {
					pollErr <- err
					return
				}
				now := time.Now()
				done := 0
				mu.Lock()
				for i := 0; i < batches; i++ {
					if visible[i].IsZero() && counts["b"+strconv.Itoa(i)] == batch {
						visible[i] = now
					}
					if !visible[i].IsZero() {
						done++
					}
				}
				mu.Unlock()
				if done == batches {
					pollErr <- nil
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			pollErr <- fmt.Errorf("not every batch became visible within 3 minutes")
		}()
		start := time.Now()
		var wg sync.WaitGroup
		for i := 0; i < batches; i++ {
			due := start.Add(time.Duration(i) * 10 * time.Millisecond)
			time.Sleep(time.Until(due))
			var body bytes.Buffer
			for j := 0; j < batch; j++ {
				fmt.Fprintf(&body, `{"action":"skill.updated","actor":{"type":"user","id":"u%d"},"resource":{"type":"skill","id":"s%d"},"metadata":{"lag_batch":"b%d"}}`+"\n", j, j, i)
			}
			wg.Add(1)
			go func(i int, body []byte) {
				defer wg.Done()
				req, _ := http.NewRequest("POST", hs.URL+"/v1/events", bytes.NewReader(body))
				req.Header.Set("Authorization", fmt.Sprintf("Bearer %s%d", tok, i%8))
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Errorf("batch %d: %v %v", i, err, resp)
					return
				}
				resp.Body.Close()
				mu.Lock()
				acked[i] = time.Now()
				mu.Unlock()
			}(i, body.Bytes())
		}
		wg.Wait()
		if err := <-pollErr; err != nil {
			b.Fatal(err)
		}
	}
	// What trickling input costs the chainer: one transaction per poll, so fewer,
	// larger transactions mean less CPU per event (this process runs ingest, the
	// chainer, the writer and the load; Kafka and ClickHouse are apart).
	commits := c.Stats().Commits - commits0
	b.ReportMetric(float64(commits), "chainer-commits")
	b.ReportMetric(float64(batch*batches)/float64(max(commits, 1)), "events/commit")
	b.ReportMetric((proctest.SelfCPU(b)-cpu0).Seconds()*1000/float64(batch*batches/1000), "cpu-ms/1k-events")
	b.ReportMetric((proctest.ProcessCPU(b, brokerPID)-brokerCPU0).Seconds()*1000/float64(batch*batches/1000), "broker-cpu-ms/1k-events")
	var lags []time.Duration
	for i := range acked {
		lags = append(lags, visible[i].Sub(acked[i]))
	}
	slices.Sort(lags)
	b.ReportMetric(lags[len(lags)/2].Seconds()*1000, "p50-ms")
	b.ReportMetric(lags[len(lags)*99/100].Seconds()*1000, "p99-ms")
	b.ReportMetric(lags[len(lags)-1].Seconds()*1000, "max-ms")
}

// waitQuiet waits until the local ClickHouse server runs no merge, so that a writer
// figure does not pay for the parts an earlier benchmark left to merge.
func waitQuiet(b *testing.B) {
	b.Helper()
	port := strings.TrimPrefix(chtest.Addr, "127.0.0.1:")
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command("clickhouse-client", "--port", port, "--query", "SELECT count() FROM system.merges").Output()
		if err != nil {
			b.Fatalf("clickhouse-client: %v", err)
		}
		if strings.TrimSpace(string(out)) == "0" {
			return
		}
	}
	b.Fatal("ClickHouse kept merging for 2 minutes")
}

// BenchmarkVerifyStore: records/s of an online verification (what trailctl verify
// --store runs) of one 1M-record partition stored in ClickHouse, checkpoint every 10k.
// The events are canonical JSON from a template, ~330 bytes each.
func BenchmarkVerifyStore(b *testing.B) {
	const n, every = 1_000_000, 10_000
	store := chtest.Store(b)
	ctx := context.Background()
	skey, vkey, _ := chain.GenerateKey("bench-verify")
	signer, _ := chain.NewSigner(skey)
	verifiers, _ := chain.NewVerifiers(vkey)
	origin := chain.Origin("bench", "audit.chained", 0)
	c := chain.New(0)
	base := time.Now().UTC().Add(-time.Hour)
	var recs []chain.Record
	var cps []clickhouse.StoredCheckpoint
	for i := 0; i < n; i++ {
		at := event.FormatTime(base.Add(time.Duration(i) * time.Millisecond))
		ev := fmt.Sprintf(`{"action":"skill.updated","actor":{"id":"usr_%d","type":"user"},"id":"0193a6f0-0000-7000-8000-%012d","occurred_at":%q,"received_at":%q,"resource":{"id":"skl_%d","type":"skill"},"schema_version":1,"source":{"tool":"registry"},"tenant":"acme"}`,
			i%500, i, at, at, i%1000)
		rec, err := c.Append([]byte(ev), base.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, rec)
		if c.Size()%every == 0 {
			cp, _ := c.Sign(origin, signer)
			cps = append(cps, clickhouse.StoredCheckpoint{Partition: 0, SignedCheckpoint: cp})
		}
		if len(recs) == 100_000 {
			if err := store.InsertRecords(ctx, recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := store.InsertCheckpoints(ctx, cps); err != nil {
		b.Fatal(err)
	}
	waitQuiet(b)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		stored, err := store.Checkpoints(ctx, 0)
		if err != nil {
			b.Fatal(err)
		}
		v, err := chain.NewVerifier(origin, 0, verifiers, stored)
		if err != nil {
			b.Fatal(err)
		}
		if err := store.RecordsBetween(ctx, 0, 0, n, v.Add); err != nil {
			b.Fatal(err)
		}
		sum, err := v.Finish()
		if err != nil || sum.Records != n || sum.Checkpoints != n/every {
			b.Fatalf("%+v %v", sum, err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
	}
}
