package queryapi

import (
	"testing"
	"time"
)

func TestHistogramRange(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	cases := []struct {
		name, from, to, buckets string
		wantFrom, wantTo        time.Time
		wantStep                time.Duration
		wantField               string
	}{
		{"default: the last day in 60 buckets", "", "", "", now.Add(-24 * time.Hour).Truncate(time.Second), now.Add(time.Second).Truncate(time.Second), 1441 * time.Second, ""},
		{"a week by day", "2026-02-22", "2026-03-01", "7", time.Date(2026, 2, 22, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 24 * time.Hour, ""},
		{"steps round up to whole seconds", "2026-03-01T00:00:00Z", "2026-03-01T00:00:10Z", "3", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 10, 0, time.UTC), 4 * time.Second, ""},
		{"more buckets than seconds", "2026-03-01T00:00:00Z", "2026-03-01T00:00:02Z", "500", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 2, 0, time.UTC), time.Second, ""},
		{"relative", "-2h", "-1h", "60", now.Add(-2 * time.Hour).Truncate(time.Second), now.Add(-time.Hour + time.Second).Truncate(time.Second), 61 * time.Second, ""},
		{"empty range", "2026-03-01", "2026-03-01", "", time.Time{}, time.Time{}, 0, "from"},
		{"reversed", "2026-03-02", "2026-03-01", "", time.Time{}, time.Time{}, 0, "from"},
		{"bad from", "yesterday", "", "", time.Time{}, time.Time{}, 0, "from"},
		{"bad to", "", "soon", "", time.Time{}, time.Time{}, 0, "to"},
		{"zero buckets", "", "", "0", time.Time{}, time.Time{}, 0, "buckets"},
		{"too many buckets", "", "", "501", time.Time{}, time.Time{}, 0, "buckets"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, fe := histogramRange(c.from, c.to, c.buckets, now)
			if c.wantField != "" {
				if fe == nil || fe.Field != c.wantField {
					t.Fatalf("error %v, want one naming %s", fe, c.wantField)
				}
				return
			}
			if fe != nil {
				t.Fatal(fe.Message)
			}
			if !req.From.Equal(c.wantFrom) || !req.To.Equal(c.wantTo) || req.Step != c.wantStep {
				t.Errorf("%s..%s step %s, want %s..%s step %s", req.From, req.To, req.Step, c.wantFrom, c.wantTo, c.wantStep)
			}
			if n := (req.To.Sub(req.From) + req.Step - 1) / req.Step; n < 1 || n > 500 {
				t.Errorf("%d buckets", n)
			}
		})
	}
}
