package chainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

// tail reads the committed records of one partition in [from, to), where to is at
// most the partition's last stable offset (LSO). Control records (transaction
// markers) are requested too, so that the reader sees every offset up to to−1 and
// knows it is done; they are not passed to fn. A reader that stops making progress fails rather than
// returning a partial tail: a short tail would make the chainer fork its own chain.
func tail(ctx context.Context, brokers []string, opts []kgo.Opt, topic string, partition int32, from, to int64, fn func(*kgo.Record) error) error {
	if to <= from {
		return nil
	}
	o := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		// A range deleted under the reader (retention) is an error, never a
		// silent jump to the log start: a tail with a hole must not be restored.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
	}, opts...)
	cl, err := kgo.NewClient(o...)
	if err != nil {
		return err
	}
	defer cl.Close()
	lso, err := lastStable(ctx, cl, topic, partition)
	if err != nil {
		return err
	}
	next := from
	for next < lso {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = err
			}
		})
		if ferr != nil {
			return fmt.Errorf("read %s/%d: %w", topic, partition, ferr)
		}
		progressed := false
		var cbErr error
		fs.EachRecord(func(r *kgo.Record) {
			if cbErr != nil || r.Offset >= lso {
				return
			}
			progressed = true
			next = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			cbErr = fn(r)
		})
		if cbErr != nil {
			return cbErr
		}
		if !progressed {
			return fmt.Errorf("read %s/%d: no progress for 30s at offset %d of %d", topic, partition, next, lso)
		}
	}
	return nil
}

// offsetBounds returns partition p's log start offset (what retention has not
// deleted) and last stable offset.
func offsetBounds(ctx context.Context, cl *kgo.Client, topic string, partition int32) (low, end int64, err error) {
	starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	o, ok := starts.Lookup(topic, partition)
	if !ok {
		return 0, 0, fmt.Errorf("topic %s has no partition %d", topic, partition)
	}
	if o.Err != nil {
		return 0, 0, fmt.Errorf("start offset of %s/%d: %w", topic, partition, o.Err)
	}
	end, err = lastStable(ctx, cl, topic, partition)
	return o.Offset, end, err
}

// TrimmedError means the records partition Partition's chain needs to resume were
// deleted from Topic, almost always by retention, and no checkpoint can stand in
// for them. A quiet partition's chain survives the loss of all its records: its
// last checkpoint, re-published every CheckpointRefresh, accounts for the group's
// committed input offset, and restores it alone. This error remains for records
// chained after the last checkpoint that are gone too, or a checkpoint topic
// emptied (the chainer stopped longer than its retention). The chainer refuses
// to start the partition: a chain restored without them would fork (restart at
// seq 0) or not verify. Recover by raising retention.ms on the chained and
// checkpoint topics; the deleted records themselves are in ClickHouse and the
// S3 archive, but the chainer cannot restore from those yet.
type TrimmedError struct {
	Topic     string
	Partition int32
	// LogStart is the first offset the broker still holds; End its last stable one.
	LogStart, End int64
	// NeedSeq is the seq restore has to read from (the last checkpoint's size);
	// HaveSeq the lowest seq still in the topic when Seen.
	NeedSeq, HaveSeq uint64
	Seen             bool
	// Detail says why the last checkpoint could not stand in for the records.
	Detail string
}

func (e *TrimmedError) Error() string {
	have := "none of its records remain"
	if e.Seen {
		have = fmt.Sprintf("the lowest seq left is %d", e.HaveSeq)
	}
	detail := ""
	if e.Detail != "" {
		detail = " (" + e.Detail + ")"
	}
	return fmt.Sprintf("chainer: partition %d cannot be restored: %s/%d holds offsets from %d to %d only (retention?); restore needs seq %d on and %s%s. Raise retention.ms on the chained and checkpoint topics; this partition stays stopped rather than fork its chain",
		e.Partition, e.Topic, e.Partition, e.LogStart, e.End, e.NeedSeq, have, detail)
}

func lastStable(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int64, error) {
	offs, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("list committed end offsets of %s: %w", topic, err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("topic %s has no partition %d", topic, partition)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("end offset of %s/%d: %w", topic, partition, o.Err)
	}
	return o.Offset, nil
}

// restore rebuilds partition p's state from the group's committed input offset
// and the committed tail of the checkpoint and chained topics. Both topics are
// read backwards in growing windows, so restore costs O(records since the last
// checkpoint), not O(partition).
func (c *Chainer) restore(ctx context.Context, p int32) (*partitionState, error) {
	// First: the committed offset, read stable, waits out a previous owner's
	// transaction that is committing; once it is known, the tails read below
	// hold everything that transaction chained.
	committed, err := c.committedInput(ctx, p)
	if err != nil {
		return nil, err
	}
	last, err := c.lastCheckpoint(ctx, p)
	if err != nil {
		return nil, err
	}
	st := &partitionState{next: max(committed, 0), cpNext: -1}
	var cp *chain.SignedCheckpoint
	var from uint64
	if last != nil {
		cp = &last.cp
		parsed, err := cp.Unverified()
		if err != nil {
			return nil, fmt.Errorf("chainer: partition %d: last checkpoint: %w", p, err)
		}
		from = parsed.Size
		st.cpNext, st.cpAt = last.inputNext, last.at
	}
	low, end, err := offsetBounds(ctx, c.sess.Client(), c.cfg.ChainedTopic, p)
	if err != nil {
		return nil, err
	}
	// span: how many records before the checkpoint its last leaf's proof is
	// rebuilt from, when the checkpoint predates the proof (0: nothing to do).
	span := chain.LastLeafSpan(from)
	if cp == nil || len(cp.LastLeafProof) > 0 {
		span = 0
	}
	window := int64(c.cfg.CheckpointEvery)*2 + 64
	for {
		start := max(low, end-window)
		after, lastLeaves, minSeq, seen, err := c.chainedTail(ctx, p, start, end, from, span)
		if err != nil {
			return nil, err
		}
		if span > 0 && uint64(len(lastLeaves)) == span {
			// A checkpoint written before checkpoints carried the last
			// leaf's proof: prove it from the records, so that the
			// checkpoints signed from now on carry it.
			proven, err := cp.ProveLastLeaf(from, lastLeaves)
			if err != nil {
				return nil, fmt.Errorf("chainer: partition %d: the last checkpoint does not match its records: %w", p, err)
			}
			cp, span = &proven, 0
		}
		if start == low && low > 0 && !(seen && minSeq <= from) {
			if seen || last == nil || last.inputNext < 0 || committed != last.inputNext {
				return nil, &TrimmedError{Topic: c.cfg.ChainedTopic, Partition: p, LogStart: low, End: end, NeedSeq: from, HaveSeq: minSeq, Seen: seen,
					Detail: trimmedDetail(last, committed)}
			}
			// Every record of the chain is gone (retention emptied a quiet
			// partition), and the group's committed input offset is the one
			// the checkpoint accounts for: nothing was chained after it,
			// because records and offsets commit in one transaction.
			ch, err := chain.RestoreCheckpoint(c.origin(p), p, *cp, c.cfg.Verifiers)
			if err != nil {
				return nil, &TrimmedError{Topic: c.cfg.ChainedTopic, Partition: p, LogStart: low, End: end, NeedSeq: from, Detail: err.Error()}
			}
			st.ch = ch
			return st, nil
		}
		if start == low || (seen && minSeq <= from) {
			ch, err := chain.Restore(c.origin(p), p, cp, c.cfg.Verifiers, after)
			if err != nil {
				return nil, fmt.Errorf("chainer: the committed tail of partition %d does not verify; refusing to extend it: %w", p, err)
			}
			st.ch = ch
			st.sinceCP = len(after)
			return st, nil
		}
		window *= 4
	}
}

// trimmedDetail says why a checkpoint could not stand in for the deleted records.
func trimmedDetail(last *storedCheckpoint, committed int64) string {
	switch {
	case last == nil:
		return "no checkpoint is left either"
	case last.inputNext < 0:
		return "the last checkpoint predates the input offset it accounts for"
	default:
		return fmt.Sprintf("the group committed input offset %d but the last checkpoint accounts for input up to %d: records chained after it are gone", committed, last.inputNext)
	}
}

// chainedTail reads the chained topic's records of p in [start, end): those
// from seq from on, the leaf hashes of the span records before from (all of
// them or none), the lowest seq seen, and whether any record was seen.
func (c *Chainer) chainedTail(ctx context.Context, p int32, start, end int64, from, span uint64) (after []chain.Record, lastLeaves []chain.Hash, minSeq uint64, seen bool, err error) {
	minSeq = 1<<63 - 1
	leaves := make([]chain.Hash, span)
	got := make([]bool, span)
	have := uint64(0)
	err = tail(ctx, c.cfg.Brokers, c.cfg.ClientOpts, c.cfg.ChainedTopic, p, start, end, func(r *kgo.Record) error {
		var rec chain.Record
		if err := rec.UnmarshalJSON(r.Value); err != nil { // direct: encoding/json would first re-scan the whole record
			return fmt.Errorf("chainer: %s/%d offset %d is not a chained record: %w", c.cfg.ChainedTopic, p, r.Offset, err)
		}
		seen = true
		minSeq = min(minSeq, rec.Seq)
		if rec.Seq >= from {
			after = append(after, rec)
		} else if i := rec.Seq + span - from; rec.Seq+span >= from && !got[i] {
			leaves[i], got[i] = rec.ComputeLeafHash(), true
			have++
		}
		return nil
	})
	if have == span {
		lastLeaves = leaves
	}
	return after, lastLeaves, minSeq, seen, err
}

// committedInput returns the chainer group's committed offset of input
// partition p (−1 when none), read with require_stable: it waits while a
// transaction that commits offsets of p is completing.
func (c *Chainer) committedInput(ctx context.Context, p int32) (int64, error) {
	adm := kadm.NewClient(c.sess.Client())
	for {
		offs, err := adm.FetchOffsets(kadm.RequireStable(ctx), c.cfg.Group)
		if err == nil {
			o, ok := offs.Lookup(c.cfg.InputTopic, p)
			if !ok {
				return -1, nil
			}
			if o.Err == nil {
				return o.At, nil
			}
			err = o.Err
		}
		if !errors.Is(err, kerr.UnstableOffsetCommit) {
			return 0, fmt.Errorf("chainer: committed offset of %s/%d: %w", c.cfg.InputTopic, p, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// storedCheckpoint is a checkpoint read back from the checkpoint topic.
type storedCheckpoint struct {
	cp chain.SignedCheckpoint
	// inputNext is its input_offset header (−1 when absent: written before it
	// existed); at is the record's timestamp.
	inputNext int64
	at        time.Time
}

// lastCheckpoint returns partition p's last committed checkpoint, nil when the
// checkpoint topic holds none (retention may have deleted older ones: restore then
// needs the chain's records from seq 0, and says so when they are gone too).
func (c *Chainer) lastCheckpoint(ctx context.Context, p int32) (*storedCheckpoint, error) {
	low, end, err := offsetBounds(ctx, c.sess.Client(), c.cfg.CheckpointTopic, p)
	if err != nil {
		return nil, err
	}
	for window := int64(8); ; window *= 8 {
		start := max(low, end-window)
		var last *storedCheckpoint
		err := tail(ctx, c.cfg.Brokers, c.cfg.ClientOpts, c.cfg.CheckpointTopic, p, start, end, func(r *kgo.Record) error {
			s := storedCheckpoint{inputNext: -1, at: r.Timestamp}
			if err := json.Unmarshal(r.Value, &s.cp); err != nil {
				return fmt.Errorf("chainer: %s/%d offset %d is not a checkpoint: %w", c.cfg.CheckpointTopic, p, r.Offset, err)
			}
			for _, h := range r.Headers {
				if h.Key != inputOffsetHeader {
					continue
				}
				n, err := strconv.ParseInt(string(h.Value), 10, 64)
				if err != nil || n < 0 {
					return fmt.Errorf("chainer: %s/%d offset %d: header %s %q is not an offset", c.cfg.CheckpointTopic, p, r.Offset, inputOffsetHeader, h.Value)
				}
				s.inputNext = n
			}
			last = &s
			return nil
		})
		if err != nil {
			return nil, err
		}
		if last != nil || start == low {
			return last, nil
		}
	}
}
