package chainer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/trailkeep/trailkeep/internal/kafkatest"
)

// TestFetchErrorOfOnePartition fails one input partition's fetches with an error the
// client does not retry by itself, while the other partition's records arrive in
// the same responses. Those records must be chained (not skipped with the poll: the
// next transaction would commit past them), and the failing partition's events must
// all be chained once its fetches succeed again: nothing lost, nothing twice.
func TestFetchErrorOfOnePartition(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := newEnvAt(t, c.ListenAddrs()[0], 2)
	want0 := e.produceEvents(t, 0, 20)
	want1 := e.produceEvents(t, 1, 20)

	f := &failingFetches{cluster: c, victim: 0, failures: 6}
	f.install(t, e)
	ch, stop := e.startWith(t, "a", kgo.DisableFetchSessions())
	waitFor(t, "partition 1 chained while partition 0 fails", func() bool { return ch.Stats().Chained >= 20 })
	if f.failed() == 0 {
		t.Fatal("no fetch of partition 0 was failed: the test did not exercise the error")
	}
	want1 = append(want1, e.produceEvents(t, 1, 5)...)
	want0 = append(want0, e.produceEvents(t, 0, 5)...)
	waitFor(t, "all 50 events chained", func() bool { return ch.Stats().Chained == 50 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !f.sawBoth() {
		t.Fatal("no failed response carried partition 1's records: the poll-level case was not exercised")
	}
	e.verify(t, 0, want0)
	e.verify(t, 1, want1)
}

// failingFetches answers the chainer's fetches of the input topic through a second
// client and rewrites partition victim's part of the first `failures` responses
// into TOPIC_AUTHORIZATION_FAILED, a per-partition error franz-go hands to the
// application rather than retrying; the other partition's records are left in.
type failingFetches struct {
	cluster  *kfake.Cluster
	victim   int32
	failures int

	mu       sync.Mutex
	done     int
	withBoth int
	// forwarding is set while a copy is out: the chainer's consumer has one fetch
	// in flight, so the input fetch that arrives meanwhile is that copy, for the
	// cluster to answer.
	forwarding bool
}

func (f *failingFetches) install(t *testing.T, e *env) {
	t.Helper()
	fwd, err := kgo.NewClient(kgo.SeedBrokers(f.cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fwd.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tds, err := kadm.NewClient(e.cl).ListTopics(ctx, e.topic("events"))
	if err != nil {
		t.Fatal(err)
	}
	input := tds[e.topic("events")].ID
	f.cluster.ControlKey(int16(kmsg.Fetch), func(r kmsg.Request) (kmsg.Response, error, bool) {
		f.cluster.KeepControl()
		req := r.(*kmsg.FetchRequest)
		if !f.targets(req, input) {
			return nil, nil, false
		}
		var resp kmsg.Response
		var ferr error
		f.cluster.SleepControl(func() {
			resp, ferr = fwd.SeedBrokers()[0].Request(context.Background(), req)
		})
		f.mu.Lock()
		f.forwarding = false
		f.mu.Unlock()
		if ferr != nil {
			return nil, ferr, true
		}
		f.rewrite(resp.(*kmsg.FetchResponse), input)
		return resp, nil, true
	})
}

// targets reports whether req is the chainer's fetch of the victim partition of the
// input topic while failures remain; if so, it marks the copy about to be forwarded.
func (f *failingFetches) targets(req *kmsg.FetchRequest, input [16]byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done >= f.failures || f.forwarding {
		return false
	}
	for _, tp := range req.Topics {
		if tp.TopicID != input {
			continue
		}
		for _, p := range tp.Partitions {
			if p.Partition == f.victim {
				f.forwarding = true
				return true
			}
		}
	}
	return false
}

func (f *failingFetches) rewrite(resp *kmsg.FetchResponse, input [16]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	others := false
	for i := range resp.Topics {
		tp := &resp.Topics[i]
		if tp.TopicID != input {
			continue
		}
		for j := range tp.Partitions {
			p := &tp.Partitions[j]
			if p.Partition != f.victim {
				others = others || len(p.RecordBatches) > 0
				continue
			}
			p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			p.RecordBatches = nil
		}
	}
	f.done++
	if others {
		f.withBoth++
	}
}

func (f *failingFetches) failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

func (f *failingFetches) sawBoth() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.withBoth > 0
}

// newEnvAt is newEnv on the broker at addr (an in-process kfake cluster) instead of
// the shared one.
func newEnvAt(t *testing.T, addr string, partitions int32) *env {
	t.Helper()
	return buildEnv(t, &kafkatest.Broker{Addr: addr}, partitions)
}
