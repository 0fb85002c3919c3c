package chainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/internal/kafkatest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

type env struct {
	broker    *kafkatest.Broker
	prefix    string
	signer    note.Signer
	verifiers note.Verifiers
	cl        *kgo.Client
	// produced, when set, is the timestamp of the input records produceEvents writes.
	produced time.Time
}

func newEnv(t *testing.T, partitions int32) *env {
	t.Helper()
	return buildEnv(t, kafkatest.Shared(t), partitions)
}

// buildEnv makes the test's keys, client and input topic on broker b.
func buildEnv(t *testing.T, b *kafkatest.Broker, partitions int32) *env {
	t.Helper()
	skey, vkey, err := chain.GenerateKey("test-chainer")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := chain.NewSigner(skey)
	verifiers, _ := chain.NewVerifiers(vkey)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e := &env{broker: b, prefix: kafkatest.Topic("chainer"), signer: signer, verifiers: verifiers, cl: cl}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, cl, kafka.Topic{Name: e.topic("events"), Partitions: partitions, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) topic(name string) string { return e.prefix + "." + name }

func (e *env) config(txnID string) Config {
	return Config{
		Brokers: []string{e.broker.Addr}, Group: e.prefix + "-group", TransactionalID: e.prefix + "-" + txnID,
		Deployment: "test", InputTopic: e.topic("events"), ChainedTopic: e.topic("chained"),
		CheckpointTopic: e.topic("checkpoints"), DeadLetterTopic: e.topic("deadletter"),
		Signer: e.signer, Verifiers: e.verifiers, CheckpointEvery: 10, CheckpointInterval: 300 * time.Millisecond,
		ClientOpts: []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.RebalanceTimeout(10 * time.Second)},
	}
}

var seqN int

// produceEvents writes n canonical events to partition p of the input topic, as
// ingest would, and returns their ids.
func (e *env) produceEvents(t *testing.T, p int32, n int) []string {
	t.Helper()
	var ids []string
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		seqN++
		doc := map[string]any{
			"action": "skill.updated", "actor": map[string]any{"type": "user", "id": fmt.Sprintf("u%d", seqN)},
			"resource": map[string]any{"type": "skill", "id": "s"},
		}
		st := event.Stamp{Tenant: fmt.Sprintf("t%d", p), Tool: "registry", ReceivedAt: time.Now()}
		if err := st.Apply(doc); err != nil {
			t.Fatal(err)
		}
		ev, canon, err := event.Canonicalize(doc, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
		recs = append(recs, &kgo.Record{Topic: e.topic("events"), Partition: p, Key: []byte(ev.Tenant), Value: canon, Timestamp: e.produced})
	}
	if err := e.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func (e *env) produceRaw(t *testing.T, p int32, vals ...string) {
	t.Helper()
	for _, v := range vals {
		if err := e.cl.ProduceSync(context.Background(), &kgo.Record{Topic: e.topic("events"), Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// start runs a chainer in the background; stop it with the returned function,
// which returns Run's error.
func (e *env) start(t *testing.T, txnID string) (*Chainer, func() error) {
	t.Helper()
	return e.startWith(t, txnID)
}

// startWith is start with extra client options.
func (e *env) startWith(t *testing.T, txnID string, opts ...kgo.Opt) (*Chainer, func() error) {
	t.Helper()
	cfg := e.config(txnID)
	cfg.ClientOpts = append(cfg.ClientOpts, opts...)
	return e.startConfig(t, cfg)
}

// startConfig is start with a configuration of its own.
func (e *env) startConfig(t *testing.T, cfg Config) (*Chainer, func() error) {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.EnsureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	r := &running{finished: make(chan struct{})}
	runs.Store(c, r)
	go func() { r.err = c.Run(ctx); close(r.finished) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			<-r.finished
			runErr = r.err
			c.Close()
			if errors.Is(runErr, context.Canceled) {
				runErr = nil
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return c, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// read returns the committed records and checkpoints of partition p.
func (e *env) read(t *testing.T, p int32) ([]chain.Record, []chain.SignedCheckpoint, []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var recs []chain.Record
	var cps []chain.SignedCheckpoint
	var dead []*kgo.Record
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.tailAll(ctx, e.topic("chained"), p, func(r *kgo.Record) error {
		var rec chain.Record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			return err
		}
		recs = append(recs, rec)
		return nil
	}))
	must(e.tailAll(ctx, e.topic("checkpoints"), p, func(r *kgo.Record) error {
		var cp chain.SignedCheckpoint
		if err := json.Unmarshal(r.Value, &cp); err != nil {
			return err
		}
		cps = append(cps, cp)
		return nil
	}))
	must(e.tailAll(ctx, e.topic("deadletter"), p, func(r *kgo.Record) error {
		dead = append(dead, r)
		return nil
	}))
	return recs, cps, dead
}

// tailAll reads what retention left of partition p of topic.
func (e *env) tailAll(ctx context.Context, topic string, p int32, fn func(*kgo.Record) error) error {
	low, end, err := offsetBounds(ctx, e.cl, topic, p)
	if err != nil {
		return err
	}
	return tail(ctx, []string{e.broker.Addr}, nil, topic, p, low, end, fn)
}

// end is the partition's last stable offset: read up to there.
func (e *env) end(t *testing.T, ctx context.Context, topic string, p int32) int64 {
	t.Helper()
	lso, err := lastStable(ctx, e.cl, topic, p)
	if err != nil {
		t.Fatal(err)
	}
	return lso
}

func (e *env) verify(t *testing.T, p int32, wantIDs []string) chain.Summary {
	t.Helper()
	recs, cps, _ := e.read(t, p)
	origin := chain.Origin("test", e.topic("chained"), p)
	sum, err := chain.Verify(origin, p, e.verifiers, recs, cps)
	if err != nil {
		t.Fatalf("partition %d does not verify: %v", p, err)
	}
	if len(recs) != len(wantIDs) {
		t.Fatalf("partition %d: %d chained records, want %d", p, len(recs), len(wantIDs))
	}
	for i, r := range recs {
		ev, err := event.Unmarshal(r.Event)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID != wantIDs[i] {
			t.Fatalf("partition %d seq %d: event %s, want %s (order or duplicates)", p, i, ev.ID, wantIDs[i])
		}
	}
	return sum
}

func TestChainRestoreAndDeadLetter(t *testing.T) {
	e := newEnv(t, 2)
	want := map[int32][]string{0: e.produceEvents(t, 0, 25), 1: e.produceEvents(t, 1, 7)}
	e.produceRaw(t, 0, `{"not":"an event"}`, `{ "spaced": 1 }`)
	want[0] = append(want[0], e.produceEvents(t, 0, 3)...)

	c, stop := e.start(t, "a")
	waitFor(t, "35 events chained", func() bool { return c.Stats().Chained == 35 })
	waitFor(t, "time-based checkpoints", func() bool {
		_, cps0, _ := e.read(t, 0)
		_, cps1, _ := e.read(t, 1)
		last := func(cps []chain.SignedCheckpoint) uint64 {
			if len(cps) == 0 {
				return 0
			}
			cp, _ := cps[len(cps)-1].Unverified()
			return cp.Size
		}
		return last(cps0) == 28 && last(cps1) == 7
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	e.verify(t, 0, want[0])
	e.verify(t, 1, want[1])
	_, _, dead := e.read(t, 0)
	if len(dead) != 2 || !strings.Contains(string(dead[1].Headers[0].Value), "canonical") {
		t.Fatalf("dead letters %d: %v", len(dead), dead)
	}

	// A new instance (another transactional id) restores both chains from Kafka and
	// continues them: seq, links and checkpoint consistency hold across the restart.
	want[0] = append(want[0], e.produceEvents(t, 0, 12)...)
	want[1] = append(want[1], e.produceEvents(t, 1, 4)...)
	c2, stop2 := e.start(t, "b")
	waitFor(t, "16 more events chained", func() bool { return c2.Stats().Chained == 16 })
	time.Sleep(time.Second) // let the time-based checkpoint land
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if c2.Stats().Restores < 2 {
		t.Errorf("restores %d, want one per partition", c2.Stats().Restores)
	}
	s0 := e.verify(t, 0, want[0])
	e.verify(t, 1, want[1])
	if s0.NextSeq != 40 || s0.Unanchored() != 0 {
		t.Errorf("partition 0 summary %+v", s0)
	}
}

// TestFencing shows both fences: partitions split between two live instances, and an
// instance restarted under the same transactional id fences its old incarnation,
// which then fails instead of appending.
func TestFencing(t *testing.T) {
	e := newEnv(t, 4)
	a, stopA := e.start(t, "a")
	b, stopB := e.start(t, "b")
	var want [4][]string
	for round := 0; round < 3; round++ {
		for p := int32(0); p < 4; p++ {
			want[p] = append(want[p], e.produceEvents(t, p, 5)...)
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitFor(t, "all 60 events chained by the two instances", func() bool { return a.Stats().Chained+b.Stats().Chained == 60 })
	if a.Stats().Chained == 0 || b.Stats().Chained == 0 {
		t.Errorf("partitions did not split: a chained %d, b chained %d", a.Stats().Chained, b.Stats().Chained)
	}

	// A zombie: a second process starts with a's transactional id. Initialising its
	// producer bumps the epoch, so the old incarnation's next transaction is refused
	// by the broker and it stops with the fencing error instead of appending.
	errA := make(chan error, 1)
	go func() { errA <- runUntilError(a) }()
	a2, stopA2 := e.start(t, "a")
	for round := 0; round < 4; round++ {
		for p := int32(0); p < 4; p++ {
			want[p] = append(want[p], e.produceEvents(t, p, 5)...)
		}
		time.Sleep(300 * time.Millisecond)
	}
	var err error
	select {
	case err = <-errA:
	case <-time.After(60 * time.Second):
		t.Fatal("the old incarnation of a was never fenced")
	}
	t.Logf("old incarnation of %q: %v", "a", err)
	if !isFatal(err) || !fenced(err) {
		t.Fatalf("old incarnation stopped with %v, want a fencing error", err)
	}
	a.Close() // leave the group so its partitions move on
	waitFor(t, "all 140 events chained", func() bool {
		return a.Stats().Chained+b.Stats().Chained+a2.Stats().Chained >= 140
	})
	time.Sleep(500 * time.Millisecond)
	stopB()
	stopA2()
	stopA()
	for p := int32(0); p < 4; p++ {
		e.verify(t, p, want[p])
	}
}

type running struct {
	finished chan struct{}
	err      error
}

var runs sync.Map // *Chainer -> *running

// runUntilError waits for the Run started by env.start to return on its own.
func runUntilError(c *Chainer) error {
	v, _ := runs.Load(c)
	r := v.(*running)
	<-r.finished
	return r.err
}

// TestRestoreAfterRetention: retention deletes a topic's oldest records (DeleteRecords
// moves the log start exactly as retention does). With the tail since the last
// checkpoint still there the chain resumes; once the records it needs are gone —
// the whole partition, as time retention empties a quiet one — restore refuses
// with a TrimmedError naming the topic and offsets, instead of forking the chain
// at seq 0 or stalling on an offset that no longer exists.
func TestRestoreAfterRetention(t *testing.T) {
	e := newEnv(t, 1)
	e.produceEvents(t, 0, 25)
	c, stop := e.start(t, "a")
	waitFor(t, "25 events chained", func() bool { return c.Stats().Chained == 25 })
	waitFor(t, "the checkpoint at 25", func() bool {
		_, cps, _ := e.read(t, 0)
		if len(cps) == 0 {
			return false
		}
		cp, _ := cps[len(cps)-1].Unverified()
		return cp.Size == 25
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	trim := func(topic string, before int64) { t.Helper(); e.trimTo(t, ctx, topic, 0, before) }
	restore := func() (*chain.Chain, error) {
		t.Helper()
		r, err := New(e.config("restore"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		st, err := r.restore(ctx, 0)
		if err != nil {
			return nil, err
		}
		return st.ch, nil
	}

	recs, _, _ := e.read(t, 0)
	// The records before seq 20 go: the checkpoint at 25 and the records after it
	// (none) are all restore needs.
	var offset20 int64 = -1
	if err := tail(ctx, []string{e.broker.Addr}, nil, e.topic("chained"), 0, 0, e.end(t, ctx, e.topic("chained"), 0), func(r *kgo.Record) error {
		var rec chain.Record
		if err := rec.UnmarshalJSON(r.Value); err == nil && rec.Seq == 20 {
			offset20 = r.Offset
		}
		return nil
	}); err != nil || offset20 < 0 {
		t.Fatalf("offset of seq 20: %d, %v", offset20, err)
	}
	trim(e.topic("chained"), offset20)
	if ch, err := restore(); err != nil || ch.Size() != 25 {
		t.Fatalf("restore with the tail since the checkpoint: %v, %v", ch, err)
	}

	// Every chained record goes (a quiet partition past retention): the
	// checkpoint accounts for the group's committed input offset, so it alone
	// restores the chain, its last leaf authenticated by its proof.
	trim(e.topic("chained"), -1)
	if ch, err := restore(); err != nil || ch.Size() != 25 || ch.LastLeafHash() != recs[24].LeafHash {
		t.Fatalf("restore from the checkpoint alone: %v, %v", ch, err)
	}

	for _, tc := range []struct {
		name, topic string
		wantNeed    uint64
	}{
		{"and every checkpoint", e.topic("checkpoints"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trim(tc.topic, -1)
			ch, err := restore()
			var te *TrimmedError
			if !errors.As(err, &te) || te.Seen || te.NeedSeq != tc.wantNeed || te.Topic != e.topic("chained") || te.LogStart == 0 {
				t.Fatalf("restore = %v, %v; want a TrimmedError of %s needing seq %d", ch, err, e.topic("chained"), tc.wantNeed)
			}
			if !strings.Contains(err.Error(), "retention") {
				t.Fatalf("the error does not say what to do: %v", err)
			}
		})
	}
}

// TestUnrestorablePartitionLosesNothing: partition 0's chain is trimmed away, so it
// cannot be restored, while partition 1 is healthy and its events arrive in the
// same polls as partition 0's. Partition 1 must chain every one of its events —
// a poll that failed must not be committed past by a later transaction — and
// partition 0's events must stay unconsumed in the input topic, not be dropped.
func TestUnrestorablePartitionLosesNothing(t *testing.T) {
	e := newEnv(t, 2)
	want1 := e.produceEvents(t, 1, 5)
	e.produceEvents(t, 0, 5)
	c, stop := e.start(t, "a")
	waitFor(t, "10 events chained", func() bool { return c.Stats().Chained == 10 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, topic := range []string{e.topic("chained"), e.topic("checkpoints")} {
		e.trimTo(t, ctx, topic, 0, -1)
	}
	committed0 := e.end(t, ctx, e.topic("events"), 0) // everything before is chained

	for range 3 { // interleaved, so polls carry both partitions
		e.produceEvents(t, 0, 2)
		want1 = append(want1, e.produceEvents(t, 1, 2)...)
	}
	c2, stop2 := e.start(t, "b")
	waitFor(t, "partition 0 refused", func() bool { return c2.Stats().Refused == 1 })
	want1 = append(want1, e.produceEvents(t, 1, 3)...) // partition 1 alone now
	waitFor(t, "partition 1's 9 new events chained", func() bool { return c2.Stats().Chained == 9 })
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	e.verify(t, 1, want1)
	offs, err := kadm.NewClient(e.cl).FetchOffsets(ctx, e.prefix+"-group")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(e.topic("events"), 0); !ok || o.At != committed0 {
		t.Fatalf("partition 0 of the input committed at %+v (found %v), want %d: its unchained events were consumed", o, ok, committed0)
	}
}

// TestTricklingInputSharesTransactions holds the chainer's group fetch to Fetch:
// input arriving a record every 10ms is chained in about one transaction per fetch
// wait (DefaultFetchMaxWait), not one per record, while MinBytes 1 (answer at once)
// still gives nearly the per-record rate. Without the defaults in the group's options
// the first case commits about ninety transactions; a chainer that dropped
// Config.Fetch on the way to its consumer fails the second with about twelve.
func TestTricklingInputSharesTransactions(t *testing.T) {
	e := newEnv(t, 1)
	for _, tc := range []struct {
		name  string
		fetch kafka.Fetch
		// perWait bounds the transactions by twice the trickle's duration over
		// the default wait (with slack for a slow machine); minTxn from below.
		perWait bool
		minTxn  int64
	}{
		{name: "default wait", fetch: kafka.Fetch{}, perWait: true},
		{name: "min bytes 1", fetch: kafka.Fetch{MinBytes: 1}, minTxn: 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.config(strings.ReplaceAll(tc.name, " ", "-"))
			cfg.Fetch = tc.fetch
			cfg.CheckpointInterval = time.Hour // only the input makes transactions
			c, stop := e.startConfig(t, cfg)
			before := c.Stats()
			e.produceEvents(t, 0, 1)
			waitFor(t, "the first event chained", func() bool { return c.Stats().Chained == before.Chained+1 })
			start, began := c.Stats().Commits, time.Now()
			for range 100 {
				e.produceEvents(t, 0, 1)
				time.Sleep(10 * time.Millisecond)
			}
			waitFor(t, "100 trickled events chained", func() bool { return c.Stats().Chained == before.Chained+101 })
			took := time.Since(began)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			n := c.Stats().Commits - start
			t.Logf("%d transactions in %v", n, took)
			if limit := 2*int64(took/kafka.DefaultFetchMaxWait) + 5; tc.perWait && n > limit {
				t.Errorf("100 events a record every 10ms took %d transactions in %v, want at most %d", n, took, limit)
			}
			if n < tc.minTxn {
				t.Errorf("100 events a record every 10ms took %d transactions, want at least %d", n, tc.minTxn)
			}
		})
	}
}
