package event

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSanitizeText(t *testing.T) {
	for _, c := range []struct {
		name, in string
		max      int
		want     string
		flags    string
	}{
		{"clean", "hello", 10, "hello", ""},
		{"invalid utf8", "a\xffb", 10, "a\uFFFDb", "invalid_utf8"},
		{"nul", "abc\x00def", 20, `abc\u0000def`, "nul"},
		{"cut by characters", strings.Repeat("é", 5), 3, "éé…", "truncated"},
		{"all three", "\xff\x00" + strings.Repeat("ü", 10), 4, "\uFFFD\\u…", "invalid_utf8,nul,truncated"},
		{"exactly the limit", "ééé", 3, "ééé", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, st := SanitizeText(c.in, c.max)
			if got != c.want || st.Flags() != c.flags {
				t.Errorf("SanitizeText(%q, %d) = %q %q, want %q %q", c.in, c.max, got, st.Flags(), c.want, c.flags)
			}
			if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 || utf8.RuneCountInString(got) > c.max {
				t.Errorf("result %q is not clean within %d characters", got, c.max)
			}
		})
	}
}

func FuzzSanitizeText(f *testing.F) {
	f.Add("abc\x00\xff", 3)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max <= 0 || max > 1<<16 {
			return
		}
		got, _ := SanitizeText(s, max)
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 || utf8.RuneCountInString(got) > max {
			t.Fatalf("SanitizeText(%q, %d) = %q", s, max, got)
		}
	})
}

// TestCanonicalizeAppliesDecodeTextRules: a document built in Go (as the query
// API builds its access events) is refused for the same text as JSON from a
// sender, so no producer can put into the log what ingest would refuse.
func TestCanonicalizeAppliesDecodeTextRules(t *testing.T) {
	for _, c := range []struct {
		name, field, rule string
		set               func(doc map[string]any)
	}{
		{"nul in a value", "/metadata/event_id", RuleNUL, func(d map[string]any) { d["metadata"] = map[string]any{"event_id": "abc\x00def"} }},
		{"nul in a key", "/metadata/a\x00b", RuleNUL, func(d map[string]any) { d["metadata"] = map[string]any{"a\x00b": "x"} }},
		{"invalid utf8", "/result/reason", RuleUTF8, func(d map[string]any) {
			d["result"] = map[string]any{"status": "failure", "reason": "bad \xff"}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := map[string]any{"occurred_at": "2026-01-01T00:00:00Z", "action": "audit_log.searched", "source": map[string]any{"tool": "trailkeep"},
				"actor": map[string]any{"type": "service", "id": "t"}, "resource": map[string]any{"type": "audit_log", "id": "acme"},
				"result": map[string]any{"status": "success"}}
			c.set(doc)
			if err := (Stamp{Tenant: "acme", Tool: "trailkeep", ReceivedAt: time.Now()}).Apply(doc); err != nil {
				t.Fatal(err)
			}
			_, _, err := Canonicalize(doc, DefaultLimits)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Errors[0].Rule != c.rule || ve.Errors[0].Field != c.field {
				t.Fatalf("Canonicalize = %v, want %s at %s", err, c.rule, c.field)
			}
		})
	}
}
