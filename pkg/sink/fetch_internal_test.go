package sink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/pkg/kafka"
)

type nopSink struct{}

func (nopSink) Name() string                          { return "nop" }
func (nopSink) Deliver(context.Context, *Batch) error { return nil }

// TestRunnerFetch holds the Runner's consumer (and the client a watchdog restart
// builds from the same options) to Config.Fetch, and refuses one out of bounds.
func TestRunnerFetch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fetch    kafka.Fetch
		wait     time.Duration
		minBytes int32
	}{
		{"defaults", kafka.Fetch{}, kafka.DefaultFetchMaxWait, kafka.DefaultFetchMinBytes},
		{"answer at once", kafka.Fetch{MaxWait: 250 * time.Millisecond, MinBytes: 1}, 250 * time.Millisecond, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRunner(nopSink{}, Config{Brokers: []string{"127.0.0.1:1"}, Fetch: tc.fetch})
			if err != nil {
				t.Fatal(err)
			}
			defer r.cl.Close()
			if got := r.cl.OptValue(kgo.FetchMaxWait); got != tc.wait {
				t.Errorf("max wait %v, want %v", got, tc.wait)
			}
			if got := r.cl.OptValue(kgo.FetchMinBytes); got != tc.minBytes {
				t.Errorf("min bytes %v, want %v", got, tc.minBytes)
			}
		})
	}
	_, err := NewRunner(nopSink{}, Config{Brokers: []string{"127.0.0.1:1"}, Fetch: kafka.Fetch{MaxWait: time.Minute}})
	if err == nil || !strings.Contains(err.Error(), "TRAILKEEP_KAFKA_FETCH_MAX_WAIT=1m0s") {
		t.Fatalf("a one-minute wait: error %v, want the variable and its bounds named", err)
	}
}
