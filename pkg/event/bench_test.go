package event

import (
	"strings"
	"testing"
)

// bench1KiB is a realistic ~1 KiB event as a sender posts it.
var bench1KiB = []byte(`{"action":"skill.updated","occurred_at":"2026-01-15T09:23:00.123+01:00","actor":{"type":"user","id":"usr_41","email":"sarah@acme.example","name":"Sarah Chen","user_agent":"trailkeep-registry/1.4 (linux; amd64)"},` +
	`"source":{"tool":"registry","tool_version":"2.3.1","channel":"api","raw_event":"skill.version.published"},` +
	`"resource":{"type":"skill","id":"skl_9","name":"api-conventions","targets":[{"type":"team","id":"acme-platform","name":"Platform"}]},` +
	`"session":{"id":"6f1c2a9e-3b7d-4c1e-9a55-0d2e8b7f4a10","prompt_id":"0b9c7f3e-8d2a-4f61-b0c4-5e7a9d1f2c33"},` +
	`"result":{"status":"success","duration_ms":42},"policy":{"id":"pol_security_scanning","version":"7"},` +
	`"change":{"from_version":"1.4.0","to_version":"1.5.0","diff_summary":"Added rate limiting instructions to the API conventions skill; removed the exemption for internal endpoints.","changed_fields":["instructions","examples"]},` +
	`"compliance_tags":["SOC2","ISO27001"],"metadata":{"review_id":"rev_1923","approved_by":"mike@acme.example","lines_added":3,"lines_removed":1,"ticket":"SEC-4411","note":"` + strings.Repeat("n", 200) + `"}}`)

// BenchmarkCanonicalJSON measures the RFC 8785 encoding alone (the
// "canonicalise" target) of an already validated ~1 KiB document.
func BenchmarkCanonicalJSON(b *testing.B) {
	doc, err := Decode(bench1KiB, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	if err := testStamp.Apply(doc); err != nil {
		b.Fatal(err)
	}
	out, _ := canonicalJSON(doc)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := canonicalJSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIngestPath measures the whole per-event path ingest runs:
// strict decode, stamp, schema validation, normalisation, canonical bytes
// and the typed Event.
func BenchmarkIngestPath(b *testing.B) {
	b.SetBytes(int64(len(bench1KiB)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := prepare(bench1KiB); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckCanonical is what the chainer runs per record.
func BenchmarkCheckCanonical(b *testing.B) {
	_, canon, err := prepare(bench1KiB)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(canon)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckCanonical(canon, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdmit is the chainer's check per record (BenchmarkAdmit/full: the
// library path alone, what every record paid before admitFast).
func BenchmarkAdmit(b *testing.B) {
	_, canon, err := prepare(bench1KiB)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		check func([]byte) error
	}{
		{"admit", func(raw []byte) error { return Admit(raw, Limits{}) }},
		{"full", admitFull},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(canon)))
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.check(canon); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
