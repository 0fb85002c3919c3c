package claudecode

import (
	"errors"
	"testing"

	"github.com/trailkeep/trailkeep/internal/fixtures"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// FuzzMap feeds arbitrary bytes through decode, map, stamp and canonicalise: the only
// acceptable outcomes are a valid event or a *event.ValidationError, never a panic or
// an internal error that would become a 500.
func FuzzMap(f *testing.F) {
	for _, file := range []string{"claude-code/session-basic.jsonl", "claude-code/session-mcp-subagent.jsonl", "claude-code/param-drift.jsonl"} {
		for _, line := range fixtures.Lines(f, file) {
			f.Add(line)
		}
	}
	for _, b := range fixtures.BadInputs(f) {
		if len(b.Body) < 4096 {
			f.Add(b.Body)
		}
	}
	o := Options{Redactor: redactor(f), ClientIP: "10.0.0.1"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := canonical(t, raw, o)
		if err != nil {
			var ve *event.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("non-validation error %T: %v", err, err)
			}
			return
		}
		if ev.Source.RawEvent == "" || ev.Session == nil {
			t.Fatalf("accepted event lost its hook identity: %+v", ev)
		}
	})
}
