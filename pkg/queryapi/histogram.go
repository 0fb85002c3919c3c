package queryapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// histogram answers GET /v1/histogram?q=&from=&to=&buckets=: how many events the
// filter matches in the caller's tenants per time bucket (the console's volume
// chart). from and to take what after: and before: take (default the last 24
// hours); buckets is 1 to clickhouse.MaxHistogramBuckets (default 60), each a
// whole number of seconds wide. Audited as a search.
func (s *Server) histogram(w http.ResponseWriter, r *http.Request, c *call) {
	qv := r.URL.Query()
	meta := map[string]any{"query": qv.Get("q"), "from": qv.Get("from"), "to": qv.Get("to"), "buckets": qv.Get("buckets"), "report": "histogram"}
	if !c.authorize(w, ActionSearched, RoleReader, meta) {
		return
	}
	now := s.o.Now()
	_, f, err := compile(r, now)
	if err != nil {
		c.invalid(w, ActionSearched, meta, queryError("q", err))
		return
	}
	req, fe := histogramRange(qv.Get("from"), qv.Get("to"), qv.Get("buckets"), now)
	if fe != nil {
		c.invalid(w, ActionSearched, meta, *fe)
		return
	}
	req.Filter, req.Tenants = f, c.tenants
	if !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	buckets, err := s.o.Store.Histogram(r.Context(), req)
	if err != nil {
		c.fail(w, err)
		return
	}
	total := uint64(0)
	for _, b := range buckets {
		total += b.Count
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": event.FormatTime(req.From), "to": event.FormatTime(req.To),
		"step_seconds": int64(req.Step / time.Second), "total": total, "buckets": buckets})
}

// histogramRange reads from, to and buckets into whole-second bounds and a step
// that covers the range in at most that many buckets.
func histogramRange(fromText, toText, bucketsText string, now time.Time) (clickhouse.HistogramRequest, *event.FieldError) {
	var req clickhouse.HistogramRequest
	to, from := now, now.Add(-24*time.Hour)
	var err error
	if toText != "" {
		if to, err = query.ParseTime(toText, now); err != nil {
			return req, &event.FieldError{Field: "to", Rule: "format", Limit: "RFC 3339, a date or -30d", Message: err.Error()}
		}
	}
	if fromText != "" {
		if from, err = query.ParseTime(fromText, now); err != nil {
			return req, &event.FieldError{Field: "from", Rule: "format", Limit: "RFC 3339, a date or -30d", Message: err.Error()}
		}
	}
	from, to = from.Truncate(time.Second), to.Add(time.Second-1).Truncate(time.Second)
	if !from.Before(to) {
		return req, &event.FieldError{Field: "from", Rule: "range", Message: "from must be before to"}
	}
	n := 60
	if bucketsText != "" {
		n, err = strconv.Atoi(bucketsText)
		if err != nil || n < 1 || n > clickhouse.MaxHistogramBuckets {
			return req, &event.FieldError{Field: "buckets", Rule: "range", Limit: "1.." + strconv.Itoa(clickhouse.MaxHistogramBuckets),
				Message: "buckets must be a whole number from 1 to " + strconv.Itoa(clickhouse.MaxHistogramBuckets)}
		}
	}
	span := to.Sub(from)
	step := max(((span+time.Duration(n)-1)/time.Duration(n)+time.Second-1)/time.Second*time.Second, time.Second)
	req.From, req.To, req.Step = from, to, step
	return req, nil
}
