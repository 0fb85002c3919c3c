package redact

import (
	"strings"
	"unicode/utf8"

	"github.com/zricethezav/gitleaks/v8/detect"
)

// Document redacts a canonical event document in place — every string value at every
// depth (identifiers, names, URLs, idempotency_key, metadata, reasons) and every key
// of the metadata map, the one object whose keys are data — and appends what it did to
// the document's redactions. Only strings whose
// shape cannot hold a secret (digests, HMACs, UUIDs) are passed over. Every producer
// of events (ingest's endpoints, the query API's access log) calls it on every event
// before canonicalisation: it is the last pass before anything is written.
func (r *Redactor) Document(doc map[string]any) {
	r.Documents([]map[string]any{doc})
}

// Documents is Document for a batch. It runs one detector pass over the text of all
// documents joined, and per-document, per-field passes only when that found
// something: the detector's fixed cost per call (keyword pre-filter, rules without
// keywords) dominates for short fields, and almost every event is clean.
func (r *Redactor) Documents(docs []map[string]any) {
	if !r.anyFinding(docs) {
		return
	}
	for _, d := range docs {
		if len(docs) > 1 && !r.anyFinding([]map[string]any{d}) {
			continue
		}
		r.document(d)
	}
}

// anyFinding reports whether the detector finds anything in the scanned text of docs.
//
// Each string goes to at most one of three fragments (see prefilter.go): one for the
// full detector if it holds a segment the detector would decode, split by whether it
// contains a rule's keyword (the detector runs a keyword rule over a whole fragment
// when the keyword occurs anywhere in it, so one keyword would make its rule scan
// every string); one for the detector without decoding if some rule could match it
// raw; none if neither, since a scan of that string alone finds nothing. A secret is
// found exactly when a per-string scan would find it: a segment never spans two
// strings (the encodings' patterns stop at line breaks).
func (r *Redactor) anyFinding(docs []map[string]any) bool {
	var decode [2]strings.Builder // [keyed]
	var plain strings.Builder
	for _, d := range docs {
		writeText(d, func(s string) {
			b := &plain
			switch {
			case hasSegments(s):
				b = &decode[b2i(r.pre.hasKeyword(s))]
			case !r.mayMatchRaw(s):
				return
			}
			b.WriteString(s)
			b.WriteByte('\n')
		})
	}
	for _, f := range []struct {
		b   *strings.Builder
		det *detect.Detector
	}{{&plain, r.plainDet}, {&decode[0], r.det}, {&decode[1], r.det}} {
		if f.b.Len() > 0 && len(f.det.DetectString(f.b.String())) > 0 {
			return true
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mayEncode reports whether s could contain a segment the detector decodes: a '%'
// (percent encoding), "U+" or a backslash-u escape (unicode), or a run of 16
// characters of the base64 alphabet (base64; hex runs of 32 are such runs too). These
// are the patterns of gitleaks' detect/codec encodings, read as prefilters.
func mayEncode(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '/', c == '+', c == '-':
			if run++; run >= 16 {
				return true
			}
			if c == 'U' && i+1 < len(s) && s[i+1] == '+' {
				return true
			}
		case c == '%':
			return true
		case c == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U'):
			return true
		default:
			run = 0
		}
	}
	return false
}

// writeText calls f with every scanned key and string value of doc. The walk
// carries only whether it is inside an open object (see openObject), not the
// value's pointer: a pointer built per member was a string concatenation for every
// key of every event, to answer one yes-or-no question.
func writeText(doc map[string]any, f func(string)) {
	var walk func(v any, open bool)
	walk = func(v any, open bool) {
		switch x := v.(type) {
		case string:
			if len(x) >= minSecret && !skipValue(x) {
				f(x)
			}
		case map[string]any:
			for k, e := range x {
				if open && len(k) >= minSecret {
					f(k)
				}
				walk(e, open)
			}
		case []any:
			for _, e := range x {
				walk(e, open)
			}
		}
	}
	for k, v := range doc {
		if k != "redactions" {
			walk(v, openObject("/"+k))
		}
	}
}

// openObject reports the objects of a canonical document whose keys are data: the
// metadata map (and anything below it). Every other object's keys are the schema's
// own closed set — an unknown one is refused by validation, never stored — so
// scanning them would only feed the detector's keyword filter words like "key"
// (idempotency_key) and make it run its costliest rules on every event.
func openObject(ptr string) bool {
	return ptr == "/metadata" || strings.HasPrefix(ptr, "/metadata/")
}

// document redacts the whole document; callers have already seen a finding.
func (r *Redactor) document(doc map[string]any) {
	kept, had := doc["redactions"]
	delete(doc, "redactions")
	_, applied := r.value(doc, "", openObject)
	if had {
		doc["redactions"] = kept
	}
	Record(doc, applied)
}

// Record appends applied redactions to doc["redactions"], without duplicates. It is
// for trailkeep's own producers (a source mapper that redacts before it truncates);
// a sender may not supply redactions (the field is server-owned).
func Record(doc map[string]any, applied []Applied) {
	if len(applied) == 0 {
		return
	}
	existing, _ := doc["redactions"].([]any)
	seen := map[Applied]bool{}
	for _, e := range existing {
		if m, ok := e.(map[string]any); ok {
			f, _ := m["field"].(string)
			ru, _ := m["rule"].(string)
			seen[Applied{f, ru}] = true
		}
	}
	for _, a := range applied {
		a.Field = clipPointer(a.Field)
		if seen[a] {
			continue
		}
		seen[a] = true
		if len(existing) == maxRecorded-1 {
			// The schema bounds the list; an event is never refused for having had
			// many secrets: the last entry says the list is incomplete.
			existing = append(existing, map[string]any{"field": "", "rule": RuleMore})
			break
		}
		existing = append(existing, map[string]any{"field": a.Field, "rule": a.Rule})
	}
	doc["redactions"] = existing
}

// maxRecorded is the schema's bound on an event's redactions.
const maxRecorded = 64

// RuleMore is the rule of the last entry of a redactions list that had to be cut at
// its 64 entries: more secrets were removed than are listed.
const RuleMore = "trailkeep-more-redactions"

// clipPointer keeps a field pointer within the schema's 256 bytes, at a character
// boundary; a cut pointer still names the field's ancestors.
func clipPointer(p string) string {
	if len(p) <= 256 {
		return p
	}
	cut := 256
	for cut > 0 && !utf8.RuneStart(p[cut]) {
		cut--
	}
	return p[:cut]
}
