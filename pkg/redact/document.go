package redact

import (
	"strings"
	"unicode/utf8"
)

// Document redacts a canonical event document in place — every key and every string
// value at every depth: identifiers, names, URLs, idempotency_key, metadata,
// reasons — and appends what it did to the document's redactions. Only strings whose
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
	var joined strings.Builder
	for _, d := range docs {
		writeText(&joined, d)
	}
	if joined.Len() == 0 || len(r.det.DetectString(joined.String())) == 0 {
		return
	}
	for _, d := range docs {
		if len(docs) > 1 {
			var one strings.Builder
			writeText(&one, d)
			if one.Len() == 0 || len(r.det.DetectString(one.String())) == 0 {
				continue
			}
		}
		r.document(d)
	}
}

// writeText writes every key and scanned string value of doc, one per line, except
// the redactions list (which names fields, and is the server's own).
func writeText(b *strings.Builder, doc map[string]any) {
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if len(x) >= minSecret && !skipValue(x) {
				b.WriteString(x)
				b.WriteByte('\n')
			}
		case map[string]any:
			for k, e := range x {
				if len(k) >= minSecret {
					b.WriteString(k)
					b.WriteByte('\n')
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for k, v := range doc {
		if k != "redactions" {
			b.WriteString(k)
			b.WriteByte('\n')
			walk(v)
		}
	}
}

// document redacts the whole document; callers have already seen a finding.
func (r *Redactor) document(doc map[string]any) {
	kept, had := doc["redactions"]
	delete(doc, "redactions")
	_, applied := r.Value(doc, "")
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
