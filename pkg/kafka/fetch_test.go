package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/pkg/kafka"
)

func TestFetchValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fetch kafka.Fetch
		want  string // in the error; "" accepts
	}{
		{"zero is the defaults", kafka.Fetch{}, ""},
		{"shortest wait", kafka.Fetch{MaxWait: 10 * time.Millisecond, MinBytes: 1}, ""},
		{"longest wait, largest min", kafka.Fetch{MaxWait: 5 * time.Second, MinBytes: 50 << 20}, ""},
		{"wait under franz-go's floor", kafka.Fetch{MaxWait: 9 * time.Millisecond}, "TRAILKEEP_KAFKA_FETCH_MAX_WAIT=9ms: want 10ms to 5s"},
		{"negative wait", kafka.Fetch{MaxWait: -time.Second}, "TRAILKEEP_KAFKA_FETCH_MAX_WAIT=-1s"},
		{"wait over 5s", kafka.Fetch{MaxWait: 5*time.Second + time.Millisecond}, "TRAILKEEP_KAFKA_FETCH_MAX_WAIT=5.001s"},
		{"negative min bytes", kafka.Fetch{MinBytes: -1}, "TRAILKEEP_KAFKA_FETCH_MIN_BYTES=-1: want 1 to 52428800"},
		{"min bytes over the fetch limit", kafka.Fetch{MinBytes: 50<<20 + 1}, "TRAILKEEP_KAFKA_FETCH_MIN_BYTES=52428801"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.fetch.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestGroupFetchOptions reads back, from a client built with a Group's options, the
// fetch settings the broker will be sent: the defaults for a zero Fetch, the values
// otherwise.
func TestGroupFetchOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fetch    kafka.Fetch
		wait     time.Duration
		minBytes int32
	}{
		{"zero", kafka.Fetch{}, kafka.DefaultFetchMaxWait, kafka.DefaultFetchMinBytes},
		{"set", kafka.Fetch{MaxWait: 20 * time.Millisecond, MinBytes: 1}, 20 * time.Millisecond, 1},
		{"wait only", kafka.Fetch{MaxWait: time.Second}, time.Second, kafka.DefaultFetchMinBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := kafka.Group{Brokers: []string{"127.0.0.1:1"}, Name: "g", Topics: []string{"t"}, Fetch: tc.fetch}
			cl, err := kgo.NewClient(g.Opts()...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if got := cl.OptValue(kgo.FetchMaxWait); got != tc.wait {
				t.Errorf("max wait %v, want %v", got, tc.wait)
			}
			if got := cl.OptValue(kgo.FetchMinBytes); got != tc.minBytes {
				t.Errorf("min bytes %v, want %v", got, tc.minBytes)
			}
		})
	}
}

// TestFetchEnvDefaults holds the documented environment defaults to the package's.
func TestFetchEnvDefaults(t *testing.T) {
	var f kafka.Fetch
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &f, Lookuper: envconfig.MapLookuper(nil)}); err != nil {
		t.Fatal(err)
	}
	if want := (kafka.Fetch{MaxWait: kafka.DefaultFetchMaxWait, MinBytes: kafka.DefaultFetchMinBytes}); f != want {
		t.Fatalf("environment defaults %+v, package defaults %+v", f, want)
	}
}
