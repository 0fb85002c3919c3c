package sink_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/sinktest"
	"github.com/trailkeep/trailkeep/pkg/sink"
)

// hangingSink acknowledges `before` batches, then stops acknowledging (its delivery
// hangs until cancelled) once; after that it delivers again. It records what it
// acknowledged, to check the restart lost and repeated nothing.
type hangingSink struct {
	mu     sync.Mutex
	before int
	hung   bool
	next   map[int32]uint64
	err    error
	count  int
}

func (s *hangingSink) Name() string { return "hanging" }

func (s *hangingSink) Deliver(ctx context.Context, b *sink.Batch) error {
	s.mu.Lock()
	if s.before == 0 && !s.hung {
		s.hung = true
		s.mu.Unlock()
		<-ctx.Done() // stops acknowledging: only a consumer restart cancels this
		return ctx.Err()
	}
	defer s.mu.Unlock()
	s.before--
	for _, r := range b.Records {
		if r.Chain.Seq != s.next[b.Partition] && s.err == nil {
			s.err = fmt.Errorf("partition %d: got seq %d, want %d (lost or repeated across the restart)", b.Partition, r.Chain.Seq, s.next[b.Partition])
		}
		s.next[b.Partition] = r.Chain.Seq + 1
		s.count++
	}
	return nil
}

// TestWatchdogRestartsStalledConsumer: a sink that stops acknowledging while its
// group has lag is reported as stalled after StallTimeout, its consumer restarted,
// and delivery resumes from the committed offset with nothing lost or repeated.
func TestWatchdogRestartsStalledConsumer(t *testing.T) {
	f := sinktest.New(t, 1, 1000)
	f.Add(t, 300)
	s := &hangingSink{before: 5, next: map[int32]uint64{}}
	r, _, _ := f.Run(t, s, sink.Config{BatchRecords: 10, Linger: time.Millisecond, StallTimeout: 2 * time.Second})
	sinktest.Wait(t, 90*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			t.Fatal(s.err)
		}
		if s.count < 300 {
			return fmt.Errorf("%d of 300 delivered, %d stalls seen", s.count, r.Stats().Stalls)
		}
		return nil
	})
	if st := r.Stats(); st.Stalls != 1 {
		t.Fatalf("watchdog reported %d stalls, want 1", st.Stalls)
	}
}

// TestWatchdogQuietWithoutLag: a caught-up sink is not a stall, although each
// partition of the transactionally written feed ends with a commit marker the group
// never commits past (a broker-side lag of 1).
func TestWatchdogQuietWithoutLag(t *testing.T) {
	f := sinktest.New(t, 1, 1000)
	f.Add(t, 20)
	s := &hangingSink{before: 1 << 30, next: map[int32]uint64{}}
	r, _, _ := f.Run(t, s, sink.Config{BatchRecords: 10, Linger: time.Millisecond, StallTimeout: time.Second})
	sinktest.Wait(t, 60*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.count < 20 {
			return fmt.Errorf("%d of 20 delivered", s.count)
		}
		return nil
	})
	time.Sleep(4 * time.Second) // four stall timeouts with no lag
	if st := r.Stats(); st.Stalls != 0 {
		t.Fatalf("watchdog reported %d stalls on a caught-up sink", st.Stalls)
	}
}

// TestWatchdogDoesNotCountTheJoin: the time a restarted consumer spends joining the
// group is not a stall. With a StallTimeout shorter than a group join, counting it
// restarted the consumer again and again and delivery never resumed.
func TestWatchdogDoesNotCountTheJoin(t *testing.T) {
	f := sinktest.New(t, 1, 1000)
	f.Add(t, 100)
	s := &hangingSink{before: 2, next: map[int32]uint64{}}
	r, _, _ := f.Run(t, s, sink.Config{BatchRecords: 10, Linger: time.Millisecond, StallTimeout: 150 * time.Millisecond})
	sinktest.Wait(t, 60*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			t.Fatal(s.err)
		}
		if s.count < 100 {
			return fmt.Errorf("%d of 100 delivered, %d stalls seen", s.count, r.Stats().Stalls)
		}
		return nil
	})
	if st := r.Stats(); st.Stalls != 1 {
		t.Fatalf("watchdog reported %d stalls for one hung delivery, want 1", st.Stalls)
	}
}
