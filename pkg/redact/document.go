package redact

import "strings"

// Document redacts the free-text fields of a canonical event document in place —
// metadata values, change.diff_summary, result.reason — and appends what it did to the
// document's redactions. Structured fields (ids, actions, digests) are left alone: they
// are validated against tight patterns and a "secret" there is a sender bug that
// schema validation reports.
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
		textFields(d, func(s string) {
			joined.WriteString(s)
			joined.WriteByte('\n')
		})
	}
	if joined.Len() == 0 || len(r.det.DetectString(joined.String())) == 0 {
		return
	}
	for _, d := range docs {
		if len(docs) > 1 {
			var one strings.Builder
			textFields(d, func(s string) { one.WriteString(s); one.WriteByte('\n') })
			if one.Len() == 0 || len(r.det.DetectString(one.String())) == 0 {
				continue
			}
		}
		r.document(d)
	}
}

// textFields calls f with each free-text field of a canonical document.
func textFields(doc map[string]any, f func(string)) {
	collect := func(obj map[string]any, key string) {
		if s, ok := obj[key].(string); ok && len(s) >= minSecret {
			f(s)
		}
	}
	if m, ok := doc["metadata"].(map[string]any); ok {
		for k := range m {
			collect(m, k)
		}
	}
	if c, ok := doc["change"].(map[string]any); ok {
		collect(c, "diff_summary")
	}
	if res, ok := doc["result"].(map[string]any); ok {
		collect(res, "reason")
	}
}

// document redacts field by field; callers have already seen a finding.
func (r *Redactor) document(doc map[string]any) {
	m, _ := doc["metadata"].(map[string]any)
	c, _ := doc["change"].(map[string]any)
	res, _ := doc["result"].(map[string]any)
	var applied []Applied
	scan := func(obj map[string]any, key, ptr string) {
		s, ok := obj[key].(string)
		if !ok {
			return
		}
		red, rules := r.String(s)
		if rules == nil {
			return
		}
		obj[key] = red
		for _, rule := range rules {
			applied = append(applied, Applied{Field: ptr, Rule: rule})
		}
	}
	for k := range m {
		scan(m, k, "/metadata/"+escape(k))
	}
	if c != nil {
		scan(c, "diff_summary", "/change/diff_summary")
	}
	if res != nil {
		scan(res, "reason", "/result/reason")
	}
	Record(doc, applied)
}

// Record appends applied redactions to doc["redactions"], without duplicates. A
// client-supplied redactions array is kept: the sender may have redacted before
// sending, and that is worth knowing too.
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
		if seen[a] {
			continue
		}
		seen[a] = true
		existing = append(existing, map[string]any{"field": a.Field, "rule": a.Rule})
	}
	doc["redactions"] = existing
}
