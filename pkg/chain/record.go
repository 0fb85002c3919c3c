package chain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
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
	return r.MarshalAdmitted(), nil
}

// MarshalAdmitted returns what MarshalJSON writes without checking that the
// event is JSON: for a caller that has just had the event accepted by
// event.Admit (the chainer), where that check would scan every event a
// second time. Any other event must go through MarshalJSON.
func (r Record) MarshalAdmitted() []byte {
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
	return append(b, '}')
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
	if rec, ok := parseWire(b); ok {
		*r = rec
		return nil
	}
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

// parseWire reads a record laid out exactly as MarshalJSON writes it, without
// reflection: the writer and the verifiers decode millions of these, and the generic
// decoder's allocations were most of their cost. Anything that differs in any byte
// from that layout (other member order, white space, escapes, signs, leading zeros)
// returns ok=false and goes through the generic, equally strict path, so both accept
// and reject the same inputs.
func parseWire(b []byte) (rec Record, ok bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"partition":`))
	if !ok {
		return rec, false
	}
	var part, seq uint64
	if part, rest, ok = wireUint(rest, `,"seq":`); !ok || part > math.MaxInt32 {
		return rec, false
	}
	if seq, rest, ok = wireUint(rest, `,"chained_at":"`); !ok {
		return rec, false
	}
	at, rest, ok := bytes.Cut(rest, []byte(`","prev_hash":"`))
	if !ok || bytes.IndexByte(at, '\\') >= 0 {
		return rec, false
	}
	t, err := event.ParseTime(string(at))
	if err != nil {
		return rec, false
	}
	if len(rest) < 2*HashSize || rec.PrevHash.UnmarshalText(rest[:2*HashSize]) != nil {
		return rec, false
	}
	if rest, ok = bytes.CutPrefix(rest[2*HashSize:], []byte(`","leaf_hash":"`)); !ok {
		return rec, false
	}
	if len(rest) < 2*HashSize || rec.LeafHash.UnmarshalText(rest[:2*HashSize]) != nil {
		return rec, false
	}
	if rest, ok = bytes.CutPrefix(rest[2*HashSize:], []byte(`","event":`)); !ok {
		return rec, false
	}
	ev, ok := bytes.CutSuffix(rest, []byte("}"))
	// The event must start and end with its own braces: white space around it is
	// not part of the value, and keeping it would change the leaf hash.
	if !ok || len(ev) < 2 || ev[0] != '{' || ev[len(ev)-1] != '}' || !jsontext.Value(ev).IsValid() {
		return rec, false
	}
	rec.Partition, rec.Seq, rec.ChainedAt = int32(part), seq, t
	rec.Event = bytes.Clone(ev)
	return rec, true
}

// wireUint reads a decimal without sign or leading zeros, followed by sep.
func wireUint(b []byte, sep string) (uint64, []byte, bool) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || (i > 1 && b[0] == '0') {
		return 0, nil, false
	}
	v, err := strconv.ParseUint(string(b[:i]), 10, 64)
	if err != nil {
		return 0, nil, false
	}
	rest, ok := bytes.CutPrefix(b[i:], []byte(sep))
	return v, rest, ok
}
