package sink_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/pkg/sink"
)

func TestRetryAfter(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, c := range []struct {
		h        http.Header
		min, max time.Duration
	}{
		{h(), 0, 0},
		{h("Retry-After", "7"), 7 * time.Second, 7 * time.Second},
		{h("X-RateLimit-Reset", "3", "Retry-After", "7"), 3 * time.Second, 3 * time.Second},
		{h("Retry-After", future), 80 * time.Second, 90 * time.Second},
		{h("Retry-After", "soon"), 0, 0},
		{h("Retry-After", "-1"), 0, 0},
	} {
		if got := sink.RetryAfter(c.h); got < c.min || got > c.max {
			t.Errorf("RetryAfter(%v) = %s, want %s..%s", c.h, got, c.min, c.max)
		}
	}
}
