package sink_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/sinktest"
	"github.com/trailkeep/trailkeep/pkg/sink"
)

// orderSink checks what the Runner promises every sink: per partition, batches
// arrive in seq order with no gap, and nothing is re-sent once acknowledged within
// one run. It fails a third of its deliveries transiently.
type orderSink struct {
	mu    sync.Mutex
	next  map[int32]uint64
	err   error
	count int
}

func (s *orderSink) Name() string { return "order" }

func (s *orderSink) Deliver(_ context.Context, b *sink.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rand.N(3) == 0 {
		return errors.New("transient")
	}
	for _, r := range b.Records {
		if r.Chain.Seq != s.next[b.Partition] && s.err == nil {
			s.err = fmt.Errorf("partition %d: got seq %d, want %d", b.Partition, r.Chain.Seq, s.next[b.Partition])
		}
		s.next[b.Partition] = r.Chain.Seq + 1
		s.count++
	}
	return nil
}

// wait waits until n records were delivered and more (if set) holds, failing at
// once on an order violation.
func (s *orderSink) wait(t *testing.T, n int, more func() error) {
	t.Helper()
	sinktest.Wait(t, 60*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			t.Fatal(s.err)
		}
		if s.count < n {
			return fmt.Errorf("%d of %d delivered", s.count, n)
		}
		if more != nil {
			return more()
		}
		return nil
	})
}

// stalledSink never acknowledges.
type stalledSink struct{}

func (stalledSink) Name() string { return "stalled" }
func (stalledSink) Deliver(ctx context.Context, _ *sink.Batch) error {
	<-ctx.Done()
	return ctx.Err()
}

// A stalled sink holds a bounded buffer (its partitions are paused at the fetcher)
// and does not slow another sink on the same topic, which gets every record in order
// despite transient failures.
func TestStalledSinkIsBoundedAndIsolated(t *testing.T) {
	f := sinktest.New(t, 2, 1000)
	for range 4 {
		f.Add(t, 1000)
	}
	const buffer = 64 << 10
	stalled, _, _ := f.Run(t, stalledSink{}, sink.Config{BufferBytes: buffer, BatchRecords: 10, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	order := &orderSink{next: map[int32]uint64{}}
	f.Run(t, order, sink.Config{BatchRecords: 37, Linger: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	order.wait(t, len(f.Want), nil)
	// Per partition: the buffer limit plus at most one poll (1000 records).
	if got := stalled.Stats().BufferedBytes; got > 2*(buffer+1<<20) {
		t.Fatalf("stalled sink buffers %d bytes", got)
	}
	if st := stalled.Stats(); st.Sent != 0 {
		t.Fatalf("stalled sink acknowledged %d", st.Sent)
	}
	t.Logf("stalled sink holds %d bytes of %d produced", stalled.Stats().BufferedBytes, 4000*900)
}

// A value on the chained topic that is not a chained record is dead-lettered with the
// reason, and the records around it are delivered in order.
func TestUndecodableRecordDeadLettered(t *testing.T) {
	f := sinktest.New(t, 1, 1000)
	f.Add(t, 20)
	at := f.ProduceRaw(t, 0, []byte(`{"not":"a chained record"}`))
	f.Add(t, 20)
	order := &orderSink{next: map[int32]uint64{}}
	r, _, _ := f.Run(t, order, sink.Config{BatchRecords: 7, Linger: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	order.wait(t, 40, func() error {
		if r.Stats().Acknowledged < 41 {
			return fmt.Errorf("%d of 41 acknowledged", r.Stats().Acknowledged)
		}
		return nil
	})
	dl := f.WaitDeadLetters(t, f.Chained+".dlq", 1)
	if len(dl) != 1 || string(dl[0].Value) != `{"not":"a chained record"}` || sinktest.Header(dl[0], "kind") != "undecodable" ||
		sinktest.Header(dl[0], "source") != fmt.Sprintf("%s/0@%d", f.Chained, at) || sinktest.Header(dl[0], "reason") == "" {
		t.Fatalf("dead letters: %d", len(dl))
	}
}

// A Runner started before the chained topic exists (a fresh deployment, consumers
// up before the chainer) waits for it instead of exiting, then delivers everything.
func TestRunnerWaitsForTheChainedTopic(t *testing.T) {
	f := sinktest.NewUncreated(t, 2, 1000)
	order := &orderSink{next: map[int32]uint64{}}
	_, done, _ := f.Run(t, order, sink.Config{BatchRecords: 10, Linger: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	select {
	case err := <-done:
		t.Fatalf("the Runner returned before its topic existed: %v", err)
	case <-time.After(2 * time.Second):
	}
	f.CreateTopics(t)
	f.Add(t, 50)
	order.wait(t, 50, nil)
}

// TestRunnerStopsOnDeletedRecords: records deleted from the chained topic (retention;
// DeleteRecords moves the log start as retention does) before the sink read them
// stop the Runner with a RecordsDeletedError. It must not resume at the log start,
// which would leave a hole in the destination that no one sees.
func TestRunnerStopsOnDeletedRecords(t *testing.T) {
	f := sinktest.New(t, 1, 1000)
	f.Add(t, 20)
	cfg := sink.Config{Group: "g-deleted-" + f.Chained, BatchRecords: 5, Linger: time.Millisecond}
	first := &orderSink{next: map[int32]uint64{}}
	r, result, cancel := f.Run(t, first, cfg)
	first.wait(t, 20, func() error {
		if r.Stats().Acknowledged < 20 {
			return fmt.Errorf("%d of 20 acknowledged", r.Stats().Acknowledged)
		}
		return nil
	})
	cancel()
	if err := <-result; err != nil {
		t.Fatal(err)
	}

	f.Add(t, 20) // seq 20..39, then all 40 are deleted before the sink comes back
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.Broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	ends, err := adm.ListEndOffsets(ctx, f.Chained)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(f.Chained, 0)
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: f.Chained, Partition: 0, At: end.Offset})
	if resp, err := adm.DeleteRecords(ctx, del); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}

	second := &orderSink{next: map[int32]uint64{0: 20}}
	_, result, _ = f.Run(t, second, cfg)
	select {
	case err := <-result:
		var rd *sink.RecordsDeletedError
		if !errors.As(err, &rd) || rd.Topic != f.Chained || rd.Partition != 0 {
			t.Fatalf("the Runner ended with %v, want a RecordsDeletedError for %s/0", err, f.Chained)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the Runner neither stopped nor reported the deleted records")
	}
	second.mu.Lock()
	defer second.mu.Unlock()
	if second.count != 0 {
		t.Fatalf("the sink received %d records from past the deleted range", second.count)
	}
}

// countSink counts what it is delivered.
type countSink struct {
	mu               sync.Mutex
	records, batches int
}

func (s *countSink) Name() string { return "count" }

func (s *countSink) Deliver(_ context.Context, b *sink.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records += len(b.Records)
	s.batches++
	return nil
}

// A batch limit the partition's buffer cannot hold is never waited for: the buffer
// full stops the fetching, so the Runner delivers what it holds at once instead of
// after Linger. Before, an S3 object limit of 16 MiB through the exporter's 8 MiB
// buffer made every object wait out S3Linger (30s) with the sink's fetching stopped:
// about 8 MiB of archive per 30s, whatever the input rate. With Linger an hour, all
// but the last buffer's worth must arrive.
func TestBufferBoundCutsBatches(t *testing.T) {
	const buffer, total = 64 << 10, 3000
	for _, tc := range []struct {
		name          string
		records, size int
	}{
		{"batch bytes over the buffer", 1 << 20, 16 << 20},
		{"batch records over what the buffer holds", 5000, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sinktest.New(t, 1, 1000)
			f.Add(t, total)
			s := &countSink{}
			f.Run(t, s, sink.Config{BufferBytes: buffer, BatchRecords: tc.records, BatchBytes: tc.size, Linger: time.Hour})
			// The tail below one full buffer (~900-byte records) waits for the linger.
			want := total - buffer/800
			sinktest.Wait(t, 60*time.Second, func() error {
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.records < want {
					return fmt.Errorf("%d of %d records delivered in %d batches with the buffer full; want at least %d without waiting for the linger", s.records, total, s.batches, want)
				}
				return nil
			})
		})
	}
}
