package splunk_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/sinktest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/sink"
	"github.com/trailkeep/trailkeep/pkg/sink/splunk"
	"github.com/trailkeep/trailkeep/pkg/sink/splunk/hectest"
)

// run starts the Runner with the batch and linger these tests use.
func run(t *testing.T, f *sinktest.Feed, s sink.Sink, group string) (*sink.Runner, <-chan error) {
	t.Helper()
	r, done, _ := f.Run(t, s, sink.Config{Group: group, BatchRecords: 50, Linger: 20 * time.Millisecond})
	return r, done
}

func newSink(t *testing.T, url, token string, ack bool) *splunk.Sink {
	t.Helper()
	s, err := splunk.New(splunk.Config{URL: url, Token: token, Index: "audit", Host: "exporter-test", Ack: ack,
		AckPollInterval: 50 * time.Millisecond, AckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func arrived(hec *hectest.Server, want map[[2]uint64]bool) func() error {
	return func() error {
		_, err := hectest.Check(hec.Events(), want)
		return err
	}
}

// Every record reaches HEC through 503s, a 429 with Retry-After, a lost ack and a
// rejected event; the rejected one is dead-lettered with HEC's reason, and every
// duplicate is byte-identical and names its chain position.
func TestDeliversThroughFaultsWithIndexerAck(t *testing.T) {
	f := sinktest.New(t, 3, 100)
	recs := f.Add(t, 600)
	var badSeq uint64
	var badPart int32
	for _, r := range recs {
		if bytes.Contains(r.Event, []byte(`"r-77"`)) {
			badPart, badSeq = r.Partition, r.Seq
		}
	}
	hec := hectest.New(hectest.Options{Token: "tok", Ack: true, AckDelay: 30 * time.Millisecond,
		Reject: func(ev []byte) bool { return bytes.Contains(ev, []byte(`"r-77"`)) }})
	url, err := hec.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hec.Close()
	hec.Fail(hectest.Fault{Status: 503, Code: 9}, hectest.Fault{Status: 429, RetryAfter: "1"}, hectest.Fault{Status: 503, Code: 18})
	hec.DropAcks(1)

	r, _ := run(t, f, newSink(t, url, "tok", true), "g-"+f.Chained)
	want := map[[2]uint64]bool{}
	for k := range f.Want {
		if k != [2]uint64{uint64(badPart), badSeq} {
			want[k] = true
		}
	}
	sinktest.Wait(t, 60*time.Second, arrived(hec, want))
	sinktest.Wait(t, 30*time.Second, func() error {
		if st := r.Stats(); st.DeadLettered != 1 {
			return fmt.Errorf("dead-lettered %d, want 1", st.DeadLettered)
		}
		return nil
	})
	for _, e := range hec.Events() {
		if e.Partition == int64(badPart) && e.Seq == badSeq {
			t.Fatalf("rejected record %d/%d was indexed", badPart, badSeq)
		}
		if e.Fields["leaf_hash"] == "" || e.Fields["prev_hash"] == "" || e.Fields["tenant"] == "" {
			t.Fatalf("event lacks chain fields: %s", e.Raw)
		}
	}
	dl := f.WaitDeadLetters(t, f.Chained+".dlq", 1)
	if len(dl) != 1 || !strings.Contains(sinktest.Header(dl[0], "reason"), "code 6") || sinktest.Header(dl[0], "sink") != "splunk" {
		t.Fatalf("dead letters: %d, first reason %q", len(dl), sinktest.Header(dl[0], "reason"))
	}
	st := r.Stats()
	if st.Retried < 4 { // 503, 429, 503, the lost ack's timeout, the reject's split
		t.Fatalf("retried %d times, want >= 4", st.Retried)
	}
	dups, err := hectest.Check(hec.Events(), want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("events %d, duplicates %d (byte-identical), retries %d", len(hec.Events()), dups, st.Retried)
}

// A collector that refuses connections and then answers 503 loses nothing: once it
// is back, the exporter catches up.
func TestCollectorDownThenBack(t *testing.T) {
	f := sinktest.New(t, 2, 50)
	f.Add(t, 200)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	hec := hectest.New(hectest.Options{Token: "tok"})
	run(t, f, newSink(t, "http://"+addr, "tok", false), "g-"+f.Chained)
	time.Sleep(2 * time.Second) // connection refused meanwhile
	f.Add(t, 100)
	hec.Fail(hectest.Fault{Status: 503, Code: 9}, hectest.Fault{Status: 503, Code: 9}, hectest.Fault{Status: 500, Code: 8})
	if _, err := hec.Listen(addr); err != nil {
		t.Fatal(err)
	}
	defer hec.Close()
	sinktest.Wait(t, 60*time.Second, arrived(hec, f.Want))
}

// A refused token stops the sink with an error and commits nothing; with the right
// token a new exporter in the same group delivers everything.
func TestRefusedTokenStopsSinkWithoutCommitting(t *testing.T) {
	f := sinktest.New(t, 2, 50)
	f.Add(t, 120)
	hec := hectest.New(hectest.Options{Token: "right"})
	url, err := hec.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hec.Close()
	group := "g-" + f.Chained
	_, done := run(t, f, newSink(t, url, "wrong", false), group)
	select {
	case err := <-done:
		var se *sink.Error
		if !errors.As(err, &se) || se.Kind != sink.Fatal {
			t.Fatalf("Run returned %v, want a fatal sink error", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("sink with a refused token kept running")
	}
	if n := len(hec.Events()); n != 0 {
		t.Fatalf("%d events indexed with a refused token", n)
	}
	run(t, f, newSink(t, url, "right", false), group)
	sinktest.Wait(t, 60*time.Second, arrived(hec, f.Want))
}

// An event over HEC's maxEventSize is dead-lettered before sending; its neighbours
// are delivered.
func TestOversizeEventDeadLettered(t *testing.T) {
	f := sinktest.New(t, 1, 50)
	f.Add(t, 10)
	doc := chaintest.Doc("rule.updated", "user:x", "rule", "big")
	meta := map[string]any{}
	for i := range 10 {
		meta[fmt.Sprint("k", i)] = strings.Repeat("x", 200)
	}
	doc["metadata"] = meta
	big := f.Log.Add(0, sinktest.Tenant(0, 0), f.Start.Add(time.Hour), doc)
	f.Produce(t, []chain.Record{big})
	f.Add(t, 9)
	hec := hectest.New(hectest.Options{Token: "tok"})
	url, err := hec.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hec.Close()
	s, err := splunk.New(splunk.Config{URL: url, Token: "tok", MaxEventSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	run(t, f, s, "g-"+f.Chained)
	sinktest.Wait(t, 30*time.Second, func() error {
		n := len(hec.Events()) + len(f.DeadLetters(t, f.Chained+".dlq"))
		if n < 20 {
			return fmt.Errorf("%d of 20 delivered or dead-lettered", n)
		}
		return nil
	})
	dl := f.WaitDeadLetters(t, f.Chained+".dlq", 1)
	if len(dl) != 1 || !bytes.Equal(dl[0].Value, mustJSON(t, big)) || !strings.Contains(sinktest.Header(dl[0], "reason"), "maxEventSize") {
		t.Fatalf("want the big record dead-lettered for maxEventSize; got %d dead letters", len(dl))
	}
	if n := len(hec.Events()); n != 19 {
		t.Fatalf("%d events indexed, want 19", n)
	}
}

func mustJSON(t *testing.T, r chain.Record) []byte {
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// With indexer acknowledgement the sink sends ahead of acks (several ackIds of one
// partition outstanding at once) and still gets every record indexed and committed.
func TestSendsAheadOfIndexerAcks(t *testing.T) {
	f := sinktest.New(t, 1, 1000)
	f.Add(t, 400)
	hec := hectest.New(hectest.Options{Token: "tok", Ack: true, AckDelay: 300 * time.Millisecond})
	url, err := hec.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hec.Close()
	r, _ := run(t, f, newSink(t, url, "tok", true), "")
	sinktest.Wait(t, 60*time.Second, func() error {
		if err := arrived(hec, f.Want)(); err != nil {
			return err
		}
		if n := r.Stats().Acknowledged; n != 400 {
			return fmt.Errorf("%d of 400 acknowledged", n)
		}
		return nil
	})
	if n := hec.MaxPending(); n < 2 {
		t.Fatalf("at most %d ackId outstanding: the sink waited for each ack before sending the next batch", n)
	}
}
