package chain

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// genericRecord decodes b with the reflection path only, as the oracle for parseWire.
func genericRecord(b []byte) (Record, error) {
	var r Record
	// A leading space never matches the wire layout, so UnmarshalJSON takes the
	// generic path; JSON ignores the space.
	err := r.UnmarshalJSON(append([]byte(" "), b...))
	return r, err
}

func wireSample(t testing.TB) []byte {
	t.Helper()
	c := New(3)
	rec, err := c.Append([]byte(`{"action":"skill.updated","id":"0193","metadata":{"k":"v\u00e9 \"q\""}}`), time.Date(2026, 1, 15, 9, 23, 0, 123456789, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	b, err := rec.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWireParserMatchesGeneric: the fast path accepts what MarshalJSON writes, gives
// the same record as the generic decoder, and on every variant either agrees with
// the generic decoder or leaves the decision to it.
func TestWireParserMatchesGeneric(t *testing.T) {
	b := wireSample(t)
	fast, ok := parseWire(b)
	if !ok {
		t.Fatalf("the fast path rejected MarshalJSON's own output: %s", b)
	}
	slow, err := genericRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast %+v\ngeneric %+v", fast, slow)
	}
	s := string(b)
	variants := []string{
		strings.Replace(s, `"partition":3`, `"partition":03`, 1),
		strings.Replace(s, `"partition":3`, `"partition":-3`, 1),
		strings.Replace(s, `"partition":3`, `"partition":4294967296`, 1),
		strings.Replace(s, `"seq":0`, `"seq":18446744073709551616`, 1),
		strings.Replace(s, `"seq":0`, `"seq": 0`, 1),
		strings.Replace(s, `.123456789Z`, `.123456789+01:00`, 1),
		strings.Replace(s, `2026-01-15`, `2026-13-15`, 1),
		strings.Replace(s, `"prev_hash":"0`, `"prev_hash":"g`, 1),
		strings.Replace(s, `"leaf_hash":"`, `"leaf_hash":"0`, 1),
		strings.Replace(s, `"event":{`, `"event":[{`, 1) + "]",
		strings.Replace(s, `"event":{`, `"event":{"id":"dup",`, 1),
		strings.Replace(s, `\u00e9`, "\xff", 1),
		s[:len(s)-1],
		s + " ",
		s[:len(s)-1] + `,"extra":1}`,
	}
	for _, v := range variants {
		checkAgree(t, []byte(v))
	}
}

func checkAgree(t *testing.T, b []byte) {
	t.Helper()
	fast, ok := parseWire(b)
	slow, err := genericRecord(b)
	if ok && err != nil {
		t.Errorf("fast path accepted what the generic decoder rejects (%v):\n%q", err, b)
	}
	if ok && err == nil && !reflect.DeepEqual(fast, slow) {
		t.Errorf("decoders disagree on %q:\nfast %+v\ngeneric %+v", b, fast, slow)
	}
}

func FuzzWireParser(f *testing.F) {
	f.Add(wireSample(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgree(t, b)
		rec, ok := parseWire(b)
		if !ok {
			return
		}
		// What the fast path accepts survives a round trip through MarshalJSON.
		again, err := rec.MarshalJSON()
		if err != nil {
			t.Fatalf("accepted record does not re-encode: %v", err)
		}
		back, ok := parseWire(again)
		if !ok || !reflect.DeepEqual(back, rec) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, back)
		}
	})
}

// TestMarshalAdmittedIsMarshalJSON: the chainer's unchecked encoding writes the
// same bytes as MarshalJSON for every event MarshalJSON accepts.
func TestMarshalAdmittedIsMarshalJSON(t *testing.T) {
	c := New(1)
	for i := range 50 {
		rec, err := c.Append(testEvent(i), t0.Add(time.Duration(i)*time.Nanosecond))
		if err != nil {
			t.Fatal(err)
		}
		want, err := rec.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.MarshalAdmitted(); string(got) != string(want) {
			t.Fatalf("seq %d: MarshalAdmitted\n%s\nMarshalJSON\n%s", i, got, want)
		}
	}
	if _, err := (Record{Event: []byte(`{"cut":`)}).MarshalJSON(); err == nil {
		t.Fatal("MarshalJSON accepted an event that is not JSON")
	}
}
