package redact

// Document redacts the free-text fields of a canonical event document in place —
// metadata values, change.diff_summary, result.reason — and appends what it did to the
// document's redactions. Structured fields (ids, actions, digests) are left alone: they
// are validated against tight patterns and a "secret" there is a sender bug that
// schema validation reports.
func (r *Redactor) Document(doc map[string]any) {
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
	if m, ok := doc["metadata"].(map[string]any); ok {
		for k := range m {
			scan(m, k, "/metadata/"+escape(k))
		}
	}
	if c, ok := doc["change"].(map[string]any); ok {
		scan(c, "diff_summary", "/change/diff_summary")
	}
	if res, ok := doc["result"].(map[string]any); ok {
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
