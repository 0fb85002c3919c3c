package event

import (
	"bytes"
	"testing"

	"github.com/trailkeep/trailkeep/internal/fixtures"
)

// FuzzCanonicalize drives arbitrary bytes through the ingest path. Whatever
// comes in: no panic; an accepted event's canonical bytes re-validate to
// themselves (a fixed point), survive a round trip through the Go types,
// respect the size limit, and every rejection names at least one field rule.
func FuzzCanonicalize(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(`{"action":"a.b","metadata":{"n":1e21,"s":"\u20ac\ud83d\ude00"},"actor":{"type":"user","id":"u"},"resource":{"type":"r","id":"1"}}`))
	for _, l := range fixtures.Lines(f, "registry/canonical-events.jsonl") {
		f.Add(l)
	}
	for _, b := range fixtures.BadInputs(f) {
		if len(b.Body) < 4096 {
			f.Add(b.Body)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, canon, err := prepare(raw)
		if err != nil {
			ve, ok := err.(*ValidationError)
			if !ok || len(ve.Errors) == 0 || ve.Errors[0].Rule == "" || ve.Errors[0].Message == "" {
				t.Fatalf("rejection without a field rule: %#v", err)
			}
			return
		}
		doc, err := Decode(canon, Limits{})
		if err != nil {
			t.Fatalf("canonical bytes do not decode: %v", err)
		}
		if want := libraryJCS(t, doc); !bytes.Equal(canon, want) {
			t.Fatalf("single-pass JCS differs from the library:\n got %s\nwant %s", canon, want)
		}
		if len(canon) > DefaultLimits.MaxEventBytes {
			t.Fatalf("canonical bytes over the limit: %d", len(canon))
		}
		again, err := CheckCanonical(canon, Limits{})
		if err != nil {
			t.Fatalf("canonical bytes not a fixed point: %v\n%s", err, canon)
		}
		if again.ID != ev.ID {
			t.Fatal("re-parse changed the event")
		}
		if !bytes.HasPrefix(canon, []byte("{")) {
			t.Fatalf("not an object: %s", canon)
		}
		assertRoundTrip(t, ev, canon)
	})
}
