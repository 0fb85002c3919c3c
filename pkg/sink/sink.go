// Package sink delivers the chained audit log from Kafka to the systems that keep it:
// ClickHouse for search (package store/clickhouse's Writer), a SIEM (package
// sink/splunk, sink/datadog) or the WORM archive (package sink/s3). Each destination
// implements Sink; a Runner feeds one Sink from audit.chained in its own consumer
// group. The Runner is the one consume-batch-commit loop of the data flow after the
// chainer.
//
// The Runner's guarantees, which every Sink relies on:
//
//   - Read-committed consumption: only records of committed chainer transactions.
//   - At most one batch per partition is in flight, and batches of a partition are
//     delivered in offset order, so a sink sees each partition's records in seq order.
//   - A partition's offset is committed only after its batch was acknowledged (or
//     dead-lettered), so the committed offset is always the highest contiguously
//     delivered one. A crash re-delivers the uncommitted tail: sinks receive
//     duplicates, never gaps, and each duplicate is byte-identical because a Sink
//     encodes a record from its content alone.
//   - Retryable failures back off exponentially with full jitter, honouring a server's
//     Retry-After; rejected batches are split to isolate the offending record, which
//     goes to the sink's own dead-letter topic with the reason; a fatal failure
//     (credentials refused) stops the Runner with an error rather than dropping data.
//   - Memory is bounded: once a partition's buffer is full the Runner stops polling,
//     so a stalled sink holds at most its buffers and never slows another sink,
//     which has its own group, client and buffers.
package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

// Sink is one destination. Deliver must either have the whole batch acknowledged by
// the destination and return nil, or return an error; the Runner decides what
// happens next from the error's Kind (see Error). Deliver must honour ctx: the
// Runner cancels it when the partition is revoked or the exporter stops.
type Sink interface {
	// Name identifies the sink in metrics, logs, the consumer group and the
	// dead-letter topic ("splunk", "datadog", "s3").
	Name() string
	Deliver(ctx context.Context, b *Batch) error
}

// CheckpointSink is implemented by sinks that archive signed checkpoints as well
// (the S3 archive); the Runner then also consumes the checkpoint topic and hands its
// records to DeliverCheckpoints, with the same ordering and commit rules.
type CheckpointSink interface {
	Sink
	DeliverCheckpoints(ctx context.Context, partition int32, cps []Checkpoint) error
}

// AckSink is implemented by sinks whose destination acknowledges asynchronously
// (Splunk HEC indexer acknowledgement). Send returns once the destination accepted
// the batch; its Ack waits until the batch is durable. The Runner keeps sending while
// acknowledgements are pending (up to Config.MaxPendingBatches per partition) and
// commits a batch only once its acks and those of every earlier batch of the
// partition came in; a failed Ack re-sends that batch through Deliver. Deliver
// remains Send followed by Wait.
type AckSink interface {
	Sink
	Send(ctx context.Context, b *Batch) (Ack, error)
}

// Ack is a pending acknowledgement. Wait returns nil once the batch is durable, a
// classified error otherwise; with a cancelled ctx it returns at once and releases
// what the acknowledgement held. The Runner calls Wait exactly once per Ack.
type Ack interface {
	Wait(ctx context.Context) error
}

// Opener is implemented by sinks that keep per-partition state (the S3 archive keeps
// the link to the previous object). Open is called when the Runner is assigned a
// partition, before its first batch, and Close when it loses it.
type Opener interface {
	OpenPartition(ctx context.Context, partition int32) error
	ClosePartition(partition int32)
}

// Decoder is implemented by sinks that parse each event themselves (the ClickHouse
// writer builds a full row from it) and so do not need the Runner to read Record's
// Tenant, ID, Action and OccurredAt: DecodeRecord replaces Decode for them, sparing
// a second parse of every event. An error dead-letters the record as undecodable.
type Decoder interface {
	DecodeRecord(offset int64, value []byte) (Record, error)
}

// Batch is consecutive records of one partition of audit.chained, in offset order.
type Batch struct {
	Partition int32
	Records   []Record
	// CaughtUp: when the batch was taken the partition had nothing more buffered
	// and the broker reported nothing after it. A sink that batches across
	// partitions may send a partial batch at once when all of them are caught up,
	// instead of waiting for more that is not coming.
	CaughtUp bool
	// Full: when the batch was taken the partition's buffer was full, so the
	// Runner had stopped fetching and more records wait behind this batch. A sink
	// that batches across partitions should not hold it back for more rows: the
	// partition's next ones come only after it.
	Full bool
}

// Record is one chained record as it was read from Kafka.
type Record struct {
	// Offset is the Kafka offset in audit.chained.
	Offset int64
	// Value is the record exactly as the chainer produced it (chain.Record's JSON):
	// partition, seq, chained_at, prev_hash, leaf_hash and the canonical event
	// verbatim. Sinks export it unchanged so it verifies wherever it lands.
	Value []byte
	// Chain is Value decoded; Chain.Event aliases Value.
	Chain chain.Record
	// Tenant, ID, Action and OccurredAt are read from the canonical event.
	Tenant, ID, Action string
	OccurredAt         time.Time
}

// Checkpoint is one signed checkpoint read from the checkpoint topic.
type Checkpoint struct {
	Offset int64
	// Value is the record exactly as the chainer produced it.
	Value  []byte
	Signed chain.SignedCheckpoint
	// Size is the number of records the checkpoint covers.
	Size uint64
}

// Kind says what the Runner does with a failed delivery.
type Kind int

const (
	// Retry: a transient failure (timeout, network error, 408, 429, 5xx, HEC codes
	// 8, 9, 18–20). The same batch is sent again after a backoff.
	Retry Kind = iota
	// Reject: the destination refused the content (400, 413, HEC codes 5–7,
	// 10–15). The batch is split until the offending record is alone, and that
	// record goes to the dead-letter topic.
	Reject
	// Fatal: the destination refused the sender (401, 403, HEC codes 1–4). Nothing
	// counts as delivered and the Runner stops with the error, so an operator fixes
	// the credentials; the data waits in Kafka.
	Fatal
)

func (k Kind) String() string {
	switch k {
	case Retry:
		return "retry"
	case Reject:
		return "reject"
	case Fatal:
		return "fatal"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a classified delivery failure. An error that is not an *Error (anywhere in
// its chain) is treated as Retry.
type Error struct {
	Kind Kind
	// RetryAfter is the server's requested delay (Retry-After, a rate-limit reset
	// header); zero to use the Runner's backoff.
	RetryAfter time.Duration
	// Index is the position in the batch of the record the destination named as
	// the offending one (HEC's invalid-event-number), or -1.
	Index int
	Err   error
}

func (e *Error) Error() string {
	s := e.Kind.String()
	if e.Index >= 0 {
		s += fmt.Sprintf(" (record %d of the batch)", e.Index)
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// RecordsDeletedError stops a Runner whose position in Topic/Partition the broker no
// longer holds: the records there were deleted (retention) before this sink read
// them, so they can never reach it. The Runner stops instead of skipping to the log
// start, which would leave a silent hole in the destination. To go on, recover the
// missing range (ClickHouse, the S3 archive or an export hold it) and, knowing what
// is missing, move the group's offset past it (kafka-consumer-groups.sh
// --reset-offsets); raise retention.ms on the chained topic above the longest
// time an exporter can be down.
type RecordsDeletedError struct {
	Sink, Topic string
	Partition   int32
	Err         error
}

func (e *RecordsDeletedError) Error() string {
	return fmt.Sprintf("sink %s: %s/%d: the broker no longer holds the records at this consumer's position (deleted by retention before the sink read them); stopping rather than skip them: %v",
		e.Sink, e.Topic, e.Partition, e.Err)
}

func (e *RecordsDeletedError) Unwrap() error { return e.Err }

// Retryable returns a Retry error, after a delay the server asked for (0: none).
func Retryable(err error, after time.Duration) error {
	return &Error{Kind: Retry, RetryAfter: after, Index: -1, Err: err}
}

// Rejected returns a Reject error naming the offending record's index in the batch
// (-1 when the destination did not say).
func Rejected(err error, index int) error { return &Error{Kind: Reject, Index: index, Err: err} }

// Fatalf returns a Fatal error.
func Fatalf(format string, args ...any) error {
	return &Error{Kind: Fatal, Index: -1, Err: fmt.Errorf(format, args...)}
}

// classify returns err's Error, or a Retry error for an unclassified one.
func classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Retry, Index: -1, Err: err}
}

// RetryAfter reads the delay an HTTP destination asked for: a rate-limit reset in
// seconds (X-RateLimit-Reset, Datadog) or Retry-After in seconds or as an HTTP date;
// zero when there is none.
func RetryAfter(h http.Header) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Ratelimit-Reset"))); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
