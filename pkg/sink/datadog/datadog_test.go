package datadog_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/sinktest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/sink"
	"github.com/trailkeep/trailkeep/pkg/sink/datadog"
	"github.com/trailkeep/trailkeep/pkg/sink/datadog/ddtest"
)

func run(t *testing.T, f *sinktest.Feed, s sink.Sink) (*sink.Runner, <-chan error) {
	t.Helper()
	r, done, _ := f.Run(t, s, sink.Config{BatchRecords: 120, Linger: 20 * time.Millisecond})
	return r, done
}

type position struct {
	Tenant    string `json:"tenant"`
	Partition int32  `json:"partition"`
	Seq       uint64 `json:"seq"`
	ChainedAt string `json:"chained_at"`
	PrevHash  string `json:"prev_hash"`
	LeafHash  string `json:"leaf_hash"`
	Truncated bool   `json:"truncated"`
}

// Every record arrives through 429/408/503, entries are cut to the configured size
// with an explicit marker (never by the intake), a refused entry is dead-lettered,
// and each whole log's message re-hashes to the leaf hash it carries.
func TestDeliversThroughFaultsWithinIntakeLimits(t *testing.T) {
	f := sinktest.New(t, 2, 100)
	recs := f.Add(t, 300)
	bad := recs[41]
	dd := &ddtest.Server{APIKey: "key", Reject: func(m string) bool { return strings.Contains(m, `"r-41"`) }}
	url, err := dd.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	dd.Fail(ddtest.Fault{Status: 429, Reset: "1"}, ddtest.Fault{Status: 408}, ddtest.Fault{Status: 503})
	s, err := datadog.New(datadog.Config{APIKey: "key", URL: url, MaxEntries: 40, Tags: "env:test", Hostname: "exp"})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := run(t, f, s)
	want := map[[2]uint64]bool{}
	for k := range f.Want {
		if k != [2]uint64{uint64(bad.Partition), bad.Seq} {
			want[k] = true
		}
	}
	byPos := map[[2]uint64]chain.Record{}
	for _, r := range f.Log.Records {
		byPos[[2]uint64{uint64(r.Partition), r.Seq}] = r
	}
	sinktest.Wait(t, 60*time.Second, func() error {
		got := map[[2]uint64]bool{}
		for _, l := range dd.Logs() {
			got[[2]uint64{uint64(l.Partition), l.Seq}] = true
		}
		for k := range want {
			if !got[k] {
				return fmt.Errorf("%d/%d not delivered (%d logs so far)", k[0], k[1], len(got))
			}
		}
		if r.Stats().DeadLettered != 1 {
			return fmt.Errorf("dead-lettered %d, want 1", r.Stats().DeadLettered)
		}
		return nil
	})
	first := map[[2]uint64]string{}
	for _, l := range dd.Logs() {
		var it struct {
			Message   string   `json:"message"`
			Tags      string   `json:"ddtags"`
			Source    string   `json:"ddsource"`
			Trailkeep position `json:"trailkeep"`
		}
		if err := json.Unmarshal(l.Raw, &it); err != nil {
			t.Fatal(err)
		}
		k := [2]uint64{uint64(it.Trailkeep.Partition), it.Trailkeep.Seq}
		if k == [2]uint64{uint64(bad.Partition), bad.Seq} {
			t.Fatal("the refused entry was accepted")
		}
		if prev, dup := first[k]; dup && prev != string(l.Raw) {
			t.Fatalf("duplicate of %v differs", k)
		}
		first[k] = string(l.Raw)
		if l.SilentlyTruncated {
			t.Fatalf("intake truncated %v", k)
		}
		at, err := event.ParseTime(it.Trailkeep.ChainedAt)
		if err != nil {
			t.Fatal(err)
		}
		var prev chain.Hash
		if err := prev.UnmarshalText([]byte(it.Trailkeep.PrevHash)); err != nil {
			t.Fatal(err)
		}
		leaf := chain.LeafHash(it.Trailkeep.Partition, it.Trailkeep.Seq, at, prev, []byte(it.Message))
		if leaf.String() != it.Trailkeep.LeafHash || it.Message != string(byPos[k].Event) {
			t.Fatalf("log %v does not carry the canonical event verbatim", k)
		}
		if !strings.Contains(it.Tags, "tenant:"+it.Trailkeep.Tenant) || !strings.Contains(it.Tags, "env:test") || it.Source != "trailkeep" {
			t.Fatalf("tags %q source %q", it.Tags, it.Source)
		}
	}
	dl := f.WaitDeadLetters(t, f.Chained+".dlq", 1)
	if len(dl) != 1 || !strings.Contains(sinktest.Header(dl[0], "reason"), "400") {
		t.Fatalf("dead letters %d", len(dl))
	}
	if st := r.Stats(); st.Retried < 3 {
		t.Fatalf("retried %d, want >= 3", st.Retried)
	}
}

// An event larger than the intake's entry limit is cut by the sink with a marker that
// says so and where the complete record is, so the intake never truncates silently.
func TestOversizeEntryTruncatedWithMarker(t *testing.T) {
	s, err := datadog.New(datadog.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ev := []byte(`{"tenant":"acme","blob":"` + strings.Repeat("é\"", 400_000) + `"}`)
	rec := sink.Record{Tenant: "acme", ID: "e1", Chain: chain.Record{Partition: 3, Seq: 9, Event: ev}}
	item, _ := s.Item(&rec)
	b, err := json.Marshal(item)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) >= datadog.MaxEntryBytes {
		t.Fatalf("entry is %d bytes, the intake would truncate it", len(b))
	}
	var got struct {
		Message   string   `json:"message"`
		Trailkeep position `json:"trailkeep"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Trailkeep.Truncated || !strings.Contains(got.Message, "truncated") || !strings.Contains(got.Message, "3/9") ||
		!strings.HasPrefix(string(ev), got.Message[:strings.LastIndex(got.Message, " …[trailkeep")]) {
		t.Fatalf("truncation not explicit: truncated=%v tail %q", got.Trailkeep.Truncated, got.Message[len(got.Message)-120:])
	}
}

// A refused API key stops the sink with a fatal error; nothing counts as delivered.
func TestRefusedKeyStopsSink(t *testing.T) {
	f := sinktest.New(t, 1, 100)
	f.Add(t, 10)
	dd := &ddtest.Server{APIKey: "right"}
	url, err := dd.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	s, err := datadog.New(datadog.Config{APIKey: "wrong", URL: url})
	if err != nil {
		t.Fatal(err)
	}
	_, done := run(t, f, s)
	select {
	case err := <-done:
		var se *sink.Error
		if !errors.As(err, &se) || se.Kind != sink.Fatal || !strings.Contains(err.Error(), "403") {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("sink kept running with a refused key")
	}
}
