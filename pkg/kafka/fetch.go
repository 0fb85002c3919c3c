package kafka

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Fetch: a member's fetch waits at the broker until 1 MiB is ready or
// 100ms have passed. Under trickling input this is what batches the data flow:
// the chainer chains (and commits one transaction for) what arrived in the last
// 100ms instead of every few records, and the writer and the exporters fetch as
// often. Measured on the distributed stack (BENCHMARKS.md, 2026-12-07, third
// session) it halves the broker's CPU per single-event request and takes a
// quarter off the chainer's; the price is up to MaxWait more latency per stage
// when the input is slower than MinBytes per MaxWait.
const (
	DefaultFetchMaxWait  = 100 * time.Millisecond
	DefaultFetchMinBytes = 1 << 20
)

// Bounds of Fetch. franz-go refuses a wait under 10ms; a wait over 5s (franz-go's
// own default, meant for MinBytes 1) would only delay an idle partition's data,
// and MinBytes above the fetch's size limit (50 MiB) could never be met.
const (
	minFetchMaxWait  = 10 * time.Millisecond
	maxFetchMaxWait  = 5 * time.Second
	maxFetchMinBytes = 50 << 20
)

// Fetch is how long a consumer-group member (Group) lets the broker gather
// records before answering a fetch. The zero value is the defaults.
type Fetch struct {
	// FetchMaxWait is the longest a fetch waits at the broker for FetchMinBytes
	// (10ms to 5s): the most latency each consuming stage (chainer, ClickHouse
	// writer, exporters) adds when the input is slow.
	MaxWait time.Duration `env:"TRAILKEEP_KAFKA_FETCH_MAX_WAIT, default=100ms"`
	// FetchMinBytes is how much data a fetch waits for (1 to 52428800 bytes): 1
	// answers as soon as any record is there (the lowest latency, the most
	// requests and chainer transactions under trickling input).
	MinBytes int32 `env:"TRAILKEEP_KAFKA_FETCH_MIN_BYTES, default=1048576"`
}

// Validate reports a setting out of its bounds, naming the variable.
func (f Fetch) Validate() error {
	if f.MaxWait != 0 && (f.MaxWait < minFetchMaxWait || f.MaxWait > maxFetchMaxWait) {
		return fmt.Errorf("kafka: TRAILKEEP_KAFKA_FETCH_MAX_WAIT=%s: want %s to %s", f.MaxWait, minFetchMaxWait, maxFetchMaxWait)
	}
	if f.MinBytes < 0 || f.MinBytes > maxFetchMinBytes {
		return fmt.Errorf("kafka: TRAILKEEP_KAFKA_FETCH_MIN_BYTES=%d: want 1 to %d", f.MinBytes, maxFetchMinBytes)
	}
	return nil
}

// opts are f's client options, zero fields replaced by the defaults.
func (f Fetch) opts() []kgo.Opt {
	if f.MaxWait == 0 {
		f.MaxWait = DefaultFetchMaxWait
	}
	if f.MinBytes == 0 {
		f.MinBytes = DefaultFetchMinBytes
	}
	return []kgo.Opt{kgo.FetchMaxWait(f.MaxWait), kgo.FetchMinBytes(f.MinBytes)}
}
