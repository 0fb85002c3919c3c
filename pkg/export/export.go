// Package export writes stored audit records in the formats auditors and SIEMs read
// (NDJSON, JSON, CSV, OCSF) and describes each export in a signed manifest.
//
// Every format streams: an Encoder writes each record as it arrives and holds no
// more than one record, so exports of any size run in flat memory. The NDJSON and
// JSON formats carry the chain record byte for byte (position, hashes and the
// canonical event), so each exported line can be re-hashed and proven; CSV and OCSF
// flatten the event for spreadsheets and security lakes but keep the chain position
// and leaf hash, so every row can still be traced back to a provable record.
package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// Formats lists the supported formats.
var Formats = []string{"ndjson", "json", "csv", "ocsf"}

// ContentType returns the media type of a format.
func ContentType(format string) string {
	switch format {
	case "csv":
		return "text/csv; charset=utf-8"
	case "json":
		return "application/json"
	default:
		return "application/x-ndjson"
	}
}

// Encoder writes records in one format. Call Write for each record, then Close,
// which completes the document (a JSON array needs its closing bracket) and flushes;
// Close does not close the underlying writer.
type Encoder interface {
	Write(rec chain.Record, ev *event.Event) error
	Close() error
}

// NewEncoder returns an encoder of format writing to w.
func NewEncoder(format string, w io.Writer) (Encoder, error) {
	switch format {
	case "ndjson":
		return &lineEncoder{w: w, line: recordLine}, nil
	case "ocsf":
		return &lineEncoder{w: w, line: ocsfLine}, nil
	case "json":
		return &arrayEncoder{w: w}, nil
	case "csv":
		return newCSVEncoder(w), nil
	}
	return nil, fmt.Errorf("export: format %q is not one of %s", format, strings.Join(Formats, ", "))
}

func recordLine(rec chain.Record, _ *event.Event) ([]byte, error) { return rec.MarshalJSON() }

type lineEncoder struct {
	w    io.Writer
	line func(chain.Record, *event.Event) ([]byte, error)
}

func (e *lineEncoder) Write(rec chain.Record, ev *event.Event) error {
	b, err := e.line(rec, ev)
	if err != nil {
		return err
	}
	_, err = e.w.Write(append(b, '\n'))
	return err
}

func (e *lineEncoder) Close() error { return nil }

// arrayEncoder writes one JSON array of records, one per line.
type arrayEncoder struct {
	w io.Writer
	n int
}

func (e *arrayEncoder) Write(rec chain.Record, _ *event.Event) error {
	b, err := rec.MarshalJSON()
	if err != nil {
		return err
	}
	sep := ",\n"
	if e.n == 0 {
		sep = "[\n"
	}
	e.n++
	if _, err := io.WriteString(e.w, sep); err != nil {
		return err
	}
	_, err = e.w.Write(b)
	return err
}

func (e *arrayEncoder) Close() error {
	end := "\n]\n"
	if e.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(e.w, end)
	return err
}

// CSVHeader is the header row of the csv format.
var CSVHeader = []string{"occurred_at", "tenant", "actor_type", "actor_id", "actor_email", "action", "resource_type", "resource_id",
	"resource_name", "result", "session_id", "tool_use_id", "source_tool", "event_id", "partition", "seq", "chained_at", "leaf_hash", "prev_hash", "event"}

type csvEncoder struct {
	cw     *csv.Writer
	header bool
}

func newCSVEncoder(w io.Writer) *csvEncoder { return &csvEncoder{cw: csv.NewWriter(w)} }

func (e *csvEncoder) Write(rec chain.Record, ev *event.Event) error {
	if !e.header {
		e.header = true
		if err := e.cw.Write(CSVHeader); err != nil {
			return err
		}
	}
	var result, session, toolUse string
	if ev.Result != nil {
		result = ev.Result.Status
	}
	if ev.Session != nil {
		session, toolUse = ev.Session.ID, ev.Session.ToolUseID
	}
	row := []string{event.FormatTime(ev.OccurredAt.Time), ev.Tenant, ev.Actor.Type, ev.Actor.ID, ev.Actor.Email, ev.Action,
		ev.Resource.Type, ev.Resource.ID, ev.Resource.Name, result, session, toolUse, ev.Source.Tool, ev.ID,
		strconv.Itoa(int(rec.Partition)), strconv.FormatUint(rec.Seq, 10), event.FormatTime(rec.ChainedAt), rec.LeafHash.String(), rec.PrevHash.String()}
	for i, c := range row {
		row[i] = SafeCell(c)
	}
	// The event column is the canonical bytes unchanged (a JSON object starts with
	// '{', never a formula), so the row stays re-hashable.
	row = append(row, string(rec.Event))
	return e.cw.Write(row)
}

func (e *csvEncoder) Close() error {
	if !e.header {
		e.header = true
		e.cw.Write(CSVHeader)
	}
	e.cw.Flush()
	return e.cw.Error()
}

// SafeCell prefixes a cell that starts with = + - @ or a tab or carriage return with
// a ' so that a spreadsheet shows it instead of evaluating it: actor and resource
// ids come from agents and may hold anything (CSV injection).
func SafeCell(c string) string {
	if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
		return "'" + c
	}
	return c
}

// ocsfLine maps one record to OCSF 1.1 API Activity (class 6003). The chain position,
// hashes and canonical event go under unmapped.trailkeep so the record stays
// provable from the lake.
func ocsfLine(rec chain.Record, ev *event.Event) ([]byte, error) {
	activity, activityName := ocsfActivity(ev.Action)
	status, statusName := 0, "Unknown"
	if ev.Result != nil {
		switch ev.Result.Status {
		case event.StatusSuccess:
			status, statusName = 1, "Success"
		case event.StatusFailure, event.StatusDenied:
			status, statusName = 2, "Failure"
		default:
			status, statusName = 99, "Other"
		}
	}
	user := map[string]any{"uid": ev.Actor.ID, "type": ev.Actor.Type}
	if ev.Actor.Email != "" {
		user["email_addr"] = ev.Actor.Email
	}
	if ev.Actor.Name != "" {
		user["name"] = ev.Actor.Name
	}
	src := map[string]any{"svc_name": ev.Source.Tool}
	if ev.Actor.IPHMAC != "" {
		src["uid"] = ev.Actor.IPHMAC
	}
	resource := map[string]any{"type": ev.Resource.Type, "uid": ev.Resource.ID}
	if ev.Resource.Name != "" {
		resource["name"] = ev.Resource.Name
	}
	o := map[string]any{
		"class_uid": 6003, "class_name": "API Activity", "category_uid": 6, "category_name": "Application Activity",
		"activity_id": activity, "activity_name": activityName, "type_uid": 600300 + activity,
		"severity_id": 1, "severity": "Informational", "status_id": status, "status": statusName,
		"time":         ev.OccurredAt.UnixMilli(),
		"actor":        map[string]any{"user": user},
		"api":          map[string]any{"operation": ev.Action, "service": map[string]any{"name": ev.Source.Tool}},
		"src_endpoint": src,
		"resources":    []any{resource},
		"metadata": map[string]any{"version": "1.1.0", "uid": ev.ID, "tenant_uid": ev.Tenant, "sequence": rec.Seq,
			"logged_time": ev.ReceivedAt.UnixMilli(), "product": map[string]any{"name": "trailkeep", "vendor_name": "trailkeep"}},
		"unmapped": map[string]any{"trailkeep": map[string]any{"partition": rec.Partition, "seq": rec.Seq,
			"chained_at": event.FormatTime(rec.ChainedAt), "leaf_hash": rec.LeafHash.String(), "prev_hash": rec.PrevHash.String(),
			"event": json.RawMessage(rec.Event)}},
	}
	if ev.Result != nil && ev.Result.Reason != "" {
		o["status_detail"] = ev.Result.Reason
	}
	if ev.Session != nil && ev.Session.ID != "" {
		o["metadata"].(map[string]any)["correlation_uid"] = ev.Session.ID
	}
	// Not json.Marshal: it would HTML-escape < > & inside the canonical event and
	// so change the bytes its leaf hash covers.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ocsfActivity maps the verb of an action (skill.updated -> updated,
// team.member_removed -> removed) to OCSF's create/read/update/delete activities.
func ocsfActivity(action string) (int, string) {
	verb := action[strings.LastIndexByte(action, '.')+1:]
	verb = verb[strings.LastIndexByte(verb, '_')+1:]
	switch {
	case hasAny(verb, "creat", "add", "install", "grant", "invit", "regist", "publish", "upload", "enabl"):
		return 1, "Create"
	case hasAny(verb, "read", "view", "search", "export", "list", "get", "download", "access", "verif"):
		return 2, "Read"
	case hasAny(verb, "delet", "remov", "revok", "uninstall", "disabl", "purg"):
		return 4, "Delete"
	case hasAny(verb, "updat", "chang", "modif", "edit", "renam", "approv", "deni", "reject", "set", "rotat", "sync"):
		return 3, "Update"
	}
	return 99, "Other"
}

func hasAny(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// formatTime renders manifest times.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return event.FormatTime(t)
}
