// Package cloudevents maps CloudEvents 1.0 (structured mode, single or batch) onto
// canonical trailkeep events. Skill and rule registries, SCIM bridges and webhooks
// use it.
//
// The CloudEvent's type is the action (it must already be resource.verb in lower
// snake case, e.g. skill.rolled_back), time is occurred_at, and data — which must be a
// JSON object — carries the canonical fields: actor (required), resource (defaults to
// {type: the action's resource, id: subject}), change, result, policy, approval,
// session, compliance_tags and metadata. Other data members and CloudEvents
// extension attributes are kept in metadata under "data." and "ce." prefixes.
// source + id is the idempotency key, as the CloudEvents spec defines uniqueness,
// encoded by [event.IdempotencyKey] so that no other (source, id) pair shares it.
package cloudevents

import (
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/trailkeep/trailkeep/pkg/event"
)

// Media types of the two structured modes.
const (
	MediaType      = "application/cloudevents+json"
	BatchMediaType = "application/cloudevents-batch+json"
)

var (
	actionPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
	extName       = regexp.MustCompile(`^[a-z0-9]{1,20}$`)
	// data members copied into the canonical event as they are; the schema checks them.
	canonicalMembers = []string{"actor", "resource", "change", "result", "policy", "approval", "session", "compliance_tags", "metadata"}
	contextAttrs     = map[string]bool{"specversion": true, "id": true, "source": true, "type": true, "time": true, "subject": true, "datacontenttype": true, "dataschema": true, "data": true, "data_base64": true}
)

// Map converts one decoded structured-mode CloudEvent. Errors are
// *event.ValidationError with pointers into the CloudEvent.
func Map(ce map[string]any) (map[string]any, error) {
	// JSON event format §2.2 / §3: a null attribute is the same as an absent one.
	for k, v := range ce {
		if v == nil {
			delete(ce, k)
		}
	}
	a, errs := readAttributes(ce)
	data, derrs := readData(ce)
	if errs = append(errs, derrs...); len(errs) > 0 {
		return nil, &event.ValidationError{Errors: errs}
	}
	doc := canonicalDoc(a, data)
	if err := addMetadata(doc, ce, a, data); err != nil {
		return nil, err
	}
	doc["idempotency_key"] = event.IdempotencyKey("cloudevents", a.source, a.id)
	return doc, nil
}

// attributes are the context attributes an event is mapped from.
type attributes struct {
	spec, id, source, typ, time, subject, contentType, dataSchema string
}

// readAttributes reads and checks the context attributes: an attribute that is
// present must be a non-empty string, and each its format.
func readAttributes(ce map[string]any) (attributes, []event.FieldError) {
	var errs []event.FieldError
	attr := func(name string, required bool) string {
		v, ok := ce[name]
		if !ok {
			if required {
				errs = append(errs, event.FieldError{Field: "/" + name, Rule: "required", Message: "missing; CloudEvents 1.0 requires " + name})
			}
			return ""
		}
		s, ok := v.(string)
		if !ok || s == "" {
			errs = append(errs, event.FieldError{Field: "/" + name, Rule: "type", Limit: "string", Message: "must be a non-empty string when present"})
			return ""
		}
		return s
	}
	a := attributes{spec: attr("specversion", true), id: attr("id", true), source: attr("source", true), typ: attr("type", true),
		time: attr("time", false), subject: attr("subject", false), contentType: attr("datacontenttype", false)}
	if a.source != "" {
		if _, err := url.Parse(a.source); err != nil {
			errs = append(errs, event.FieldError{Field: "/source", Rule: "format", Limit: "uri-reference", Message: "must be a URI-reference (RFC 3986)"})
		}
	}
	if a.dataSchema = attr("dataschema", false); a.dataSchema != "" {
		if u, err := url.Parse(a.dataSchema); err != nil || !u.IsAbs() {
			errs = append(errs, event.FieldError{Field: "/dataschema", Rule: "format", Limit: "uri", Message: "must be an absolute URI (RFC 3986)"})
		}
	}
	if a.spec != "" && a.spec != "1.0" {
		errs = append(errs, event.FieldError{Field: "/specversion", Rule: "const", Limit: "1.0", Message: "only CloudEvents 1.0 is supported"})
	}
	if a.typ != "" && (!actionPattern.MatchString(a.typ) || len(a.typ) > 128) {
		errs = append(errs, event.FieldError{Field: "/type", Rule: "pattern", Limit: actionPattern.String(), Message: "must be resource.verb in lower snake case, e.g. skill.updated; it becomes the event's action"})
	}
	if ct := a.contentType; ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasSuffix(strings.SplitN(ct, ";", 2)[0], "+json") {
		errs = append(errs, event.FieldError{Field: "/datacontenttype", Rule: "enum", Limit: "application/json", Message: "data must be JSON"})
	}
	return a, errs
}

// readData checks data: a JSON object with an actor and none of the server's own
// fields (named as the sender wrote them, whether or not they would be copied).
func readData(ce map[string]any) (map[string]any, []event.FieldError) {
	var errs []event.FieldError
	if _, ok := ce["data_base64"]; ok {
		errs = append(errs, event.FieldError{Field: "/data_base64", Rule: "not", Message: "binary data is not accepted; send the event fields as a JSON object in data"})
	}
	data, ok := ce["data"].(map[string]any)
	if !ok {
		return nil, append(errs, event.FieldError{Field: "/data", Rule: "type", Limit: "object", Message: "must be a JSON object with at least actor"})
	}
	if _, ok := data["actor"]; !ok {
		errs = append(errs, event.FieldError{Field: "/data/actor", Rule: "required", Message: "missing; the actor is who did it ({type, id})"})
	}
	for _, ptr := range event.ServerOwned() {
		if event.HasField(data, ptr) {
			errs = append(errs, event.FieldError{Field: "/data" + ptr, Rule: event.RuleServerField, Message: "is set by the server and must be omitted"})
		}
	}
	return data, errs
}

// canonicalDoc is the event: the canonical members of data, the type as action,
// the subject as resource when data names none, time as occurred_at.
func canonicalDoc(a attributes, data map[string]any) map[string]any {
	doc := map[string]any{"action": a.typ}
	for _, k := range canonicalMembers {
		if v, ok := data[k]; ok {
			doc[k] = v
		}
	}
	if _, ok := doc["resource"]; !ok && a.subject != "" {
		doc["resource"] = map[string]any{"type": a.typ[:strings.IndexByte(a.typ, '.')], "id": a.subject}
	}
	if a.time != "" {
		doc["occurred_at"] = a.time
	}
	doc["source"] = map[string]any{"channel": "cloudevents", "raw_event": a.typ}
	return doc
}

// addMetadata keeps the CloudEvents identity, the other data members and the
// extensions in metadata, never overwriting what data's own metadata holds.
func addMetadata(doc, ce map[string]any, a attributes, data map[string]any) error {
	meta, _ := doc["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	put := func(k string, v any) {
		if _, taken := meta[k]; taken {
			return
		}
		switch x := v.(type) {
		case string, bool, float64:
			meta[k] = x
		case nil:
		default:
			if b, err := event.AppendCanonical(nil, x); err == nil {
				meta[k] = string(b)
			}
		}
	}
	put("ce.source", a.source)
	put("ce.id", a.id)
	if a.subject != "" {
		put("ce.subject", a.subject)
	}
	if a.dataSchema != "" {
		put("ce.dataschema", a.dataSchema)
	}
	var rest []string
	for k := range data {
		if !slices.Contains(canonicalMembers, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		put("data."+k, data[k])
	}
	var ext []string
	for k := range ce {
		if !contextAttrs[k] {
			ext = append(ext, k)
		}
	}
	sort.Strings(ext)
	for _, k := range ext {
		if !extName.MatchString(k) {
			return &event.ValidationError{Errors: []event.FieldError{{Field: "/" + k, Rule: "pattern", Limit: extName.String(), Message: "CloudEvents extension names are 1-20 lower-case letters or digits"}}}
		}
		put("ce."+k, ce[k])
	}
	if len(meta) > 0 {
		doc["metadata"] = meta
	}
	return nil
}

// PayloadPointer maps a JSON pointer into the mapped event back to the CloudEvent
// member it came from (/actor/id → /data/actor/id, /action → /type), so that an
// error names the field as the sender wrote it.
func PayloadPointer(ptr string) string {
	switch {
	case ptr == "/action" || ptr == "/source/raw_event":
		return "/type"
	case ptr == "/occurred_at":
		return "/time"
	}
	for _, k := range canonicalMembers {
		if ptr == "/"+k || strings.HasPrefix(ptr, "/"+k+"/") {
			if k == "metadata" {
				rest := strings.TrimPrefix(ptr, "/metadata/")
				switch {
				case strings.HasPrefix(rest, "data."):
					return "/data/" + strings.TrimPrefix(rest, "data.")
				case strings.HasPrefix(rest, "ce."):
					return "/" + strings.TrimPrefix(rest, "ce.")
				}
			}
			return "/data" + ptr
		}
	}
	return ptr
}
