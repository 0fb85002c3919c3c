package chain

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/trailkeep/trailkeep/pkg/event"
)

// Record is one chained event: the canonical event bytes and their position
// in the partition's chain. The checkpoint that first covers a record is
// attached downstream (it is not known when the record is made).
type Record struct {
	Partition int32
	Seq       uint64
	// ChainedAt is the Kafka record timestamp of the input record, never
	// the chainer's clock, so that a replay is byte-identical.
	ChainedAt time.Time
	PrevHash  Hash
	LeafHash  Hash
	// Event holds the canonical event bytes, verbatim. Append does not copy
	// them: the caller must not modify the slice afterwards.
	Event []byte
}

// ComputeLeafHash recomputes the leaf hash from the record's content.
func (r *Record) ComputeLeafHash() Hash {
	return LeafHash(r.Partition, r.Seq, r.ChainedAt, r.PrevHash, r.Event)
}

// MarshalJSON writes the record as one JSON object whose "event" member is
// the canonical event bytes, verbatim:
//
//	{"partition":0,"seq":7,"chained_at":"2026-01-15T09:23:00.123000000Z",
//	 "prev_hash":"<hex>","leaf_hash":"<hex>","event":{...}}
//
// A reader must take "event" byte for byte (json.RawMessage does); any
// re-formatting of it changes the leaf hash, which is the point.
func (r Record) MarshalJSON() ([]byte, error) {
	if !json.Valid(r.Event) {
		return nil, fmt.Errorf("chain: record %d/%d: event is not JSON", r.Partition, r.Seq)
	}
	b := make([]byte, 0, 200+len(r.Event))
	b = append(b, `{"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"chained_at":"`...)
	b = r.ChainedAt.UTC().AppendFormat(b, event.TimeLayout)
	b = append(b, `","prev_hash":"`...)
	b = append(b, r.PrevHash.String()...)
	b = append(b, `","leaf_hash":"`...)
	b = append(b, r.LeafHash.String()...)
	b = append(b, `","event":`...)
	b = append(b, r.Event...)
	return append(b, '}'), nil
}

type recordJSON struct {
	Partition *int32         `json:"partition"`
	Seq       *uint64        `json:"seq"`
	ChainedAt *event.Time    `json:"chained_at"`
	PrevHash  *Hash          `json:"prev_hash"`
	LeafHash  *Hash          `json:"leaf_hash"`
	Event     jsontext.Value `json:"event"`
}

// UnmarshalJSON reads the form MarshalJSON writes; every member is required
// and unknown members are rejected.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	// json/v2: several times faster than encoding/json on the writer's hot path, and
	// it keeps "event" byte for byte (jsontext.Value) as the leaf hash requires.
	if err := jsonv2.Unmarshal(b, &j, jsonv2.RejectUnknownMembers(true)); err != nil {
		return fmt.Errorf("chain: record: %w", err)
	}
	switch {
	case j.Partition == nil:
		return fmt.Errorf("chain: record: missing partition")
	case j.Seq == nil:
		return fmt.Errorf("chain: record: missing seq")
	case j.ChainedAt == nil:
		return fmt.Errorf("chain: record: missing chained_at")
	case j.PrevHash == nil || j.LeafHash == nil:
		return fmt.Errorf("chain: record: missing prev_hash or leaf_hash")
	case len(j.Event) == 0:
		return fmt.Errorf("chain: record: missing event")
	}
	*r = Record{Partition: *j.Partition, Seq: *j.Seq, ChainedAt: j.ChainedAt.Time,
		PrevHash: *j.PrevHash, LeafHash: *j.LeafHash, Event: []byte(j.Event)}
	return nil
}
