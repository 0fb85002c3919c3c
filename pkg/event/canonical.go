package event

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Canonicalize validates doc as a complete v1 event, normalises its
// timestamps to [TimeLayout] and returns the event together with its
// RFC 8785 canonical bytes. doc is modified in place (timestamps).
//
// This is the one place where canonical bytes are made. Callers store and
// forward the returned bytes verbatim; the returned *Event is decoded from
// those bytes, so it never disagrees with what is hashed. It applies to a
// document built in Go the same text rules [Decode] applies to JSON from a
// sender (no U+0000, valid UTF-8, bounded depth), so an event trailkeep makes
// itself passes exactly the checks an ingested one does.
func Canonicalize(doc map[string]any, lim Limits) (*Event, []byte, error) {
	v, err := CanonicalBytes(doc, lim)
	if err != nil {
		return nil, nil, err
	}
	ev, err := unmarshal(v)
	if err != nil {
		return nil, nil, err
	}
	return ev, v, nil
}

// CanonicalBytes is [Canonicalize] without decoding the typed Event: the same
// checks, the same bytes. Ingest writes the bytes and needs nothing of the Event
// but its id, which doc holds; decoding it back was about a tenth of ingest's CPU
// per event. Every document the schema accepts decodes as an Event (a test holds
// the schema to the type on mutated events, and FuzzFastCheck on arbitrary ones),
// so no reader of what ingest wrote meets an event it cannot decode.
func CanonicalBytes(doc map[string]any, lim Limits) ([]byte, error) {
	lim = lim.withDefaults()
	if err := Validate(doc); err != nil {
		// The text rules' error comes first, as Decode's would for JSON from a
		// sender; the walk that names it runs only for a refused document.
		if terr := checkText(doc, make(path, 0, 8), 0, lim); terr != nil {
			return nil, terr
		}
		return nil, err
	}
	for _, f := range timeFields {
		if s, ok := doc[f].(string); ok {
			t, _ := ParseTime(s) // Validate checked it
			doc[f] = FormatTime(t)
		}
	}
	v, err := appendJCS(make([]byte, 0, 1024), doc, 0, lim.MaxDepth)
	if errors.Is(err, errText) {
		return nil, checkText(doc, make(path, 0, 8), 0, lim)
	}
	if err != nil {
		return nil, err
	}
	if len(v) > lim.MaxEventBytes {
		return nil, fieldErr("", RuleMaxBytes, strconv.Itoa(lim.MaxEventBytes),
			"canonical event is %d bytes, at most %d allowed", len(v), lim.MaxEventBytes)
	}
	return v, nil
}

// Parse decodes and canonicalises a complete v1 event (one that already has
// its server-assigned fields).
func Parse(raw []byte, lim Limits) (*Event, []byte, error) {
	doc, err := Decode(raw, lim)
	if err != nil {
		return nil, nil, err
	}
	return Canonicalize(doc, lim)
}

// ErrNotCanonical is wrapped by CheckCanonical when a valid event is not in
// canonical form.
var ErrNotCanonical = fmt.Errorf("event is valid but its bytes are not the RFC 8785 canonical form")

// CheckCanonical verifies that raw is exactly the canonical encoding of a
// valid v1 event, as the chainer requires before it hashes anything: a
// record that passes was produced by [Canonicalize] (or is byte-identical to
// what it would produce).
func CheckCanonical(raw []byte, lim Limits) (*Event, error) {
	ev, canon, err := Parse(raw, lim)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, raw) {
		return nil, ErrNotCanonical
	}
	return ev, nil
}

// Unmarshal decodes canonical bytes (as produced by [Canonicalize]) into an
// Event without re-validating them. Readers of already-chained records use
// it; the bytes stay the reference.
func Unmarshal(canonical []byte) (*Event, error) { return unmarshal(canonical) }

func unmarshal(b []byte) (*Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev, json.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("event: decode canonical bytes: %w", err)
	}
	return &ev, nil
}

// Admit is the check the chainer runs on every record before chaining it: the bytes
// are an RFC 8785 canonical JSON object within lim, with schema_version
// SchemaVersion and a non-empty id and tenant. It deliberately skips the JSON Schema
// (ingest enforced it; CheckCanonical is the full check) so that the chainer is not
// bound by validation cost, while still refusing anything ingest would never have
// produced — a foreign producer's bytes, or a future schema version this binary
// cannot interpret.
func Admit(raw []byte, lim Limits) error {
	lim = lim.withDefaults()
	if len(raw) == 0 {
		return fmt.Errorf("empty record")
	}
	if len(raw) > lim.MaxEventBytes {
		return fmt.Errorf("%d bytes, more than the %d allowed", len(raw), lim.MaxEventBytes)
	}
	if raw[0] != '{' {
		return fmt.Errorf("not a JSON object")
	}
	if admitFast(raw) {
		return nil
	}
	return admitFull(raw)
}

// admitFull is Admit's check by the JSON library: re-canonicalise and compare, then
// decode the head. It decides (and names the error) whenever admitFast does not
// accept.
func admitFull(raw []byte) error {
	canon := jsontext.Value(bytes.Clone(raw))
	if err := canon.Canonicalize(); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if !bytes.Equal(canon, raw) {
		return ErrNotCanonical
	}
	var head struct {
		SchemaVersion *int   `json:"schema_version"`
		ID            string `json:"id"`
		Tenant        string `json:"tenant"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("schema_version/id/tenant: %w", err)
	}
	switch {
	case head.SchemaVersion == nil:
		return fmt.Errorf("no schema_version")
	case *head.SchemaVersion != SchemaVersion:
		return fmt.Errorf("schema_version %d, this chainer handles %d", *head.SchemaVersion, SchemaVersion)
	case head.ID == "" || head.Tenant == "":
		return fmt.Errorf("no id or tenant")
	}
	return nil
}

// checkText applies Decode's rules for keys and strings to a document built in
// Go: no U+0000, valid UTF-8, and nesting within lim.MaxDepth.
func checkText(v any, at path, depth int, lim Limits) error {
	str := func(s string, at path, what string) error {
		if !utf8.ValidString(s) {
			return fieldErr(at.String(), RuleUTF8, "", "%s must be valid UTF-8", what)
		}
		if strings.IndexByte(s, 0) >= 0 {
			return fieldErr(at.String(), RuleNUL, "", "%s must not contain U+0000", what)
		}
		return nil
	}
	switch x := v.(type) {
	case string:
		return str(x, at, "value")
	case map[string]any:
		if depth > lim.MaxDepth {
			return fieldErr(at.String(), RuleMaxDepth, strconv.Itoa(lim.MaxDepth), "nesting deeper than %d levels", lim.MaxDepth)
		}
		for k, e := range x {
			child := at.key(k)
			if err := str(k, child, "key"); err != nil {
				return err
			}
			if err := checkText(e, child, depth+1, lim); err != nil {
				return err
			}
		}
	case []any:
		if depth > lim.MaxDepth {
			return fieldErr(at.String(), RuleMaxDepth, strconv.Itoa(lim.MaxDepth), "nesting deeper than %d levels", lim.MaxDepth)
		}
		for i, e := range x {
			if err := checkText(e, at.elem(i), depth+1, lim); err != nil {
				return err
			}
		}
	}
	return nil
}
