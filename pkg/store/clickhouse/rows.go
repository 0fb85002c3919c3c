package clickhouse

import (
	"errors"
	"fmt"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// eventRow is one audit_events row: the record's position and hashes, the exact chain
// timestamp, the columns searches filter on, and the canonical event bytes verbatim.
type eventRow struct {
	Tenant                                       string
	Partition                                    uint32
	Seq                                          uint64
	ChainedAt                                    time.Time
	ChainedAtNS                                  int64
	OccurredAt, ReceivedAt                       time.Time
	EventID, IdempotencyKey, Action              string
	ActorType, ActorID, ActorEmail               string
	ResourceType, ResourceID, ResourceName       string
	SourceTool, SessionID, ToolUseID             string
	ResultStatus, ApprovedDigest, ExecutedDigest string
	PrevHash, LeafHash, Event                    string
}

// fill sets the row from one chained record.
func (x *eventRow) fill(r chain.Record) error {
	var ev rowEvent
	if err := jsonv2.Unmarshal(r.Event, &ev); err != nil {
		return fmt.Errorf("clickhouse: record %d/%d: event: %w", r.Partition, r.Seq, err)
	}
	occurred, err1 := event.ParseTime(ev.OccurredAt)
	received, err2 := event.ParseTime(ev.ReceivedAt)
	if err := errors.Join(err1, err2); err != nil || ev.ID == "" || ev.Tenant == "" {
		return fmt.Errorf("clickhouse: record %d/%d is not a canonical event (id, tenant, times): %v", r.Partition, r.Seq, err)
	}
	*x = eventRow{
		Tenant: ev.Tenant, Partition: uint32(r.Partition), Seq: r.Seq, ChainedAt: r.ChainedAt, ChainedAtNS: r.ChainedAt.UnixNano(),
		OccurredAt: occurred, ReceivedAt: received, EventID: ev.ID, IdempotencyKey: ev.IdempotencyKey, Action: ev.Action,
		ActorType: ev.Actor.Type, ActorID: ev.Actor.ID, ActorEmail: ev.Actor.Email,
		ResourceType: ev.Resource.Type, ResourceID: ev.Resource.ID, ResourceName: ev.Resource.Name,
		SourceTool: ev.Source.Tool, SessionID: ev.Session.ID, ToolUseID: ev.Session.ToolUseID, ResultStatus: ev.Result.Status,
		ApprovedDigest: ev.Approval.ApprovedParamsDigest, ExecutedDigest: ev.Approval.ExecutedParamsDigest,
		PrevHash: r.PrevHash.String(), LeafHash: r.LeafHash.String(), Event: string(r.Event),
	}
	return nil
}

// rowEvent is the part of a canonical event that becomes columns. Decoding only this
// (metadata and the rest stay in the event column) keeps the writer fast; a
// hand-written single-pass scanner was measured no faster (parsing the event is the
// floor, not allocation) and was not kept.
type rowEvent struct {
	ID             string `json:"id"`
	IdempotencyKey string `json:"idempotency_key"`
	OccurredAt     string `json:"occurred_at"`
	ReceivedAt     string `json:"received_at"`
	Tenant         string `json:"tenant"`
	Action         string `json:"action"`
	Source         struct {
		Tool string `json:"tool"`
	} `json:"source"`
	Actor struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"actor"`
	Resource struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"resource"`
	Session struct {
		ID        string `json:"id"`
		ToolUseID string `json:"tool_use_id"`
	} `json:"session"`
	Result struct {
		Status string `json:"status"`
	} `json:"result"`
	Approval struct {
		ApprovedParamsDigest string `json:"approved_params_digest"`
		ExecutedParamsDigest string `json:"executed_params_digest"`
	} `json:"approval"`
}

// eventColumn is one audit_events column: its name, its value in one row, and its
// values in a batch as the typed slice the driver appends without per-value boxing.
type eventColumn struct {
	name  string
	cell  func(*eventRow) any
	slice func(chunks [][]eventRow) any
}

func column[T any](name string, get func(*eventRow) T) eventColumn {
	return eventColumn{
		name: name,
		cell: func(x *eventRow) any { return get(x) },
		slice: func(chunks [][]eventRow) any {
			n := 0
			for _, rows := range chunks {
				n += len(rows)
			}
			out := make([]T, 0, n)
			for _, rows := range chunks {
				for i := range rows {
					out = append(out, get(&rows[i]))
				}
			}
			return out
		},
	}
}

// eventColumnList is the one place the column order of audit_events inserts is
// defined; EventColumns and RowValues follow it.
var eventColumnList = []eventColumn{
	column("tenant", func(x *eventRow) string { return x.Tenant }),
	column("chain_partition", func(x *eventRow) uint32 { return x.Partition }),
	column("seq", func(x *eventRow) uint64 { return x.Seq }),
	column("chained_at", func(x *eventRow) time.Time { return x.ChainedAt }),
	column("chained_at_ns", func(x *eventRow) int64 { return x.ChainedAtNS }),
	column("occurred_at", func(x *eventRow) time.Time { return x.OccurredAt }),
	column("received_at", func(x *eventRow) time.Time { return x.ReceivedAt }),
	column("event_id", func(x *eventRow) string { return x.EventID }),
	column("idempotency_key", func(x *eventRow) string { return x.IdempotencyKey }),
	column("action", func(x *eventRow) string { return x.Action }),
	column("actor_type", func(x *eventRow) string { return x.ActorType }),
	column("actor_id", func(x *eventRow) string { return x.ActorID }),
	column("actor_email", func(x *eventRow) string { return x.ActorEmail }),
	column("resource_type", func(x *eventRow) string { return x.ResourceType }),
	column("resource_id", func(x *eventRow) string { return x.ResourceID }),
	column("resource_name", func(x *eventRow) string { return x.ResourceName }),
	column("source_tool", func(x *eventRow) string { return x.SourceTool }),
	column("session_id", func(x *eventRow) string { return x.SessionID }),
	column("tool_use_id", func(x *eventRow) string { return x.ToolUseID }),
	column("result_status", func(x *eventRow) string { return x.ResultStatus }),
	column("approved_digest", func(x *eventRow) string { return x.ApprovedDigest }),
	column("executed_digest", func(x *eventRow) string { return x.ExecutedDigest }),
	column("prev_hash", func(x *eventRow) string { return x.PrevHash }),
	column("leaf_hash", func(x *eventRow) string { return x.LeafHash }),
	column("event", func(x *eventRow) string { return x.Event }),
}

// EventColumns is the explicit column list of every insert into audit_events.
var EventColumns = func() string {
	names := make([]string, len(eventColumnList))
	for i, c := range eventColumnList {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}()

// RowValues returns the audit_events values of one chained record, in EventColumns
// order (tests render them as SQL literals for the in-process engine).
func RowValues(r chain.Record) ([]any, error) {
	var x eventRow
	if err := x.fill(r); err != nil {
		return nil, err
	}
	out := make([]any, len(eventColumnList))
	for i, c := range eventColumnList {
		out[i] = c.cell(&x)
	}
	return out, nil
}
