package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadAll returns every record of topic as it is now, read-committed, from the
// start of each partition to its end offset listed on entry. A topic that does not
// exist holds nothing. It fails the test, naming the fetch errors, when the records
// up to those offsets cannot be read within a minute: a slow or failing fetch never
// passes for an empty topic.
func ReadAll(t testing.TB, broker, topic string) []*kgo.Record {
	t.Helper()
	return readTo(t, broker, topic, kgo.ReadCommitted())
}

// ReadEverything is ReadAll read-uncommitted: aborted and open transactions'
// records too, for tests that must see every byte a topic holds (that no secret
// reached it, for one).
func ReadEverything(t testing.TB, broker, topic string) []*kgo.Record {
	t.Helper()
	return readTo(t, broker, topic, kgo.ReadUncommitted())
}

func readTo(t testing.TB, broker, topic string, isolation kgo.IsolationLevel) []*kgo.Record {
	t.Helper()
	// Control records (transaction markers) are kept to see progress past them:
	// they take offsets, and a transactional partition ends with one.
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(isolation))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	var listErr error
	ends.Each(func(o kadm.ListedOffset) {
		switch {
		case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
		case o.Err != nil:
			listErr = o.Err
		case o.Offset > 0:
			want[o.Partition] = o.Offset
		}
	})
	if listErr != nil {
		t.Fatalf("end offsets of %s: %v", topic, listErr)
	}
	var out []*kgo.Record
	var fetchErrs []error
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %d records read, partitions short of their end offsets: %v; fetch errors: %v", topic, len(out), want, fetchErrs)
		}
		fs.EachError(func(_ string, p int32, err error) {
			fetchErrs = append(fetchErrs, fmt.Errorf("partition %d: %w", p, err))
		})
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return // written after the call began
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset >= end-1 {
				delete(want, r.Partition)
			}
		})
	}
	return out
}
