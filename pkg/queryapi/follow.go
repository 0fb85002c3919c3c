package queryapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// MaxFollowWait bounds how long one GET /v1/follow waits for new records.
const MaxFollowWait = 30 * time.Second

// followPoll is how often a waiting follow call asks the store again.
const followPoll = time.Second

// followResponse is GET /v1/follow's answer: the records after the position the
// caller sent, in partition and seq order, and the position to send next.
type followResponse struct {
	Records  []json.RawMessage `json:"records"`
	Position string            `json:"position"`
}

// GET /v1/follow?q=&after=&limit=&wait=&tenant=
//
// The tail of the log, for `trailctl tail -f` and the console: without after, the
// answer is the caller's head (no records) to start from; with after (a position
// from an earlier answer, "" for none seen), the matching records stored since, at
// most limit, waiting up to wait (a duration, at most MaxFollowWait) for the first.
// Scoped and audited like a search: one access event per call, so a waiting
// follower costs one event per wait rather than one per poll.
func (s *Server) follow(w http.ResponseWriter, r *http.Request, c *call) {
	qv := r.URL.Query()
	meta := map[string]any{"query": qv.Get("q"), "after": qv.Get("after"), "limit": qv.Get("limit"), "wait": qv.Get("wait")}
	f, limit, ok := s.searchArgs(w, r, c, meta)
	if !ok {
		return
	}
	wait, fe := followWait(qv.Get("wait"))
	if fe != nil {
		c.invalid(w, ActionSearched, meta, *fe)
		return
	}
	var after clickhouse.Position
	if qv.Has("after") {
		var err error
		if after, err = clickhouse.ParsePosition(qv.Get("after")); err != nil {
			c.invalid(w, ActionSearched, meta, event.FieldError{Field: "after", Rule: "format", Message: err.Error()})
			return
		}
	}
	if after != nil && wait > 0 {
		release, reason := s.followers.acquire(c.tok.Name, s.o.MaxFollowersPerToken, s.o.MaxFollowers)
		if reason != "" {
			c.audit(ActionSearched, event.StatusFailure, reason, meta)
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusTooManyRequests, "too_many_followers", reason, nil)
			return
		}
		defer release()
	}
	if !c.audit(ActionSearched, event.StatusSuccess, "", meta) {
		return
	}
	if after == nil {
		head, err := s.o.Store.Head(r.Context(), c.tenants)
		if err != nil {
			c.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, followResponse{Records: []json.RawMessage{}, Position: head.String()})
		return
	}
	recs, next, err := s.followWaiting(r, f, c.tenants, after, limit, wait)
	if err != nil {
		c.fail(w, err)
		return
	}
	resp := followResponse{Records: make([]json.RawMessage, 0, len(recs)), Position: next.String()}
	for _, rec := range recs {
		b, err := rec.MarshalJSON()
		if err != nil {
			c.fail(w, err)
			return
		}
		resp.Records = append(resp.Records, b)
	}
	writeJSON(w, http.StatusOK, resp)
}

// followWaiting asks the store for records after pos until there are some, wait
// has passed or the caller went away.
func (s *Server) followWaiting(r *http.Request, f query.Filter, tenants []string, pos clickhouse.Position, limit int, wait time.Duration) ([]chain.Record, clickhouse.Position, error) {
	deadline := time.Now().Add(wait)
	req := clickhouse.ExportRequest{Filter: f, Tenants: tenants}
	for {
		recs, next, err := s.o.Store.Follow(r.Context(), req, pos, limit)
		if err != nil || len(recs) > 0 || !time.Now().Add(followPoll).Before(deadline) {
			return recs, next, err
		}
		select {
		case <-r.Context().Done():
			return nil, pos, r.Context().Err()
		case <-time.After(followPoll):
		}
	}
}

// followers counts the follow calls waiting, per token and in all: each polls the
// store every second while it waits, so an unbounded number of them from one token
// (a script gone wrong, or a stolen token) would load the store for every tenant.
type followers struct {
	mu      sync.Mutex
	byToken map[string]int
	total   int
}

// acquire takes a waiting slot for token; reason says why none is free.
func (f *followers) acquire(token string, perToken, total int) (release func(), reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.byToken[token] >= perToken:
		return nil, fmt.Sprintf("token %q already has %d follow calls waiting, the most one token may; wait for one to answer", token, perToken)
	case f.total >= total:
		return nil, fmt.Sprintf("%d follow calls are waiting, the most this server takes; retry shortly", total)
	}
	if f.byToken == nil {
		f.byToken = map[string]int{}
	}
	f.byToken[token]++
	f.total++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.byToken[token]--; f.byToken[token] == 0 {
			delete(f.byToken, token)
		}
		f.total--
	}, ""
}

// followWait reads wait=: 0 when absent, else a Go duration from 0 to MaxFollowWait.
func followWait(v string) (time.Duration, *event.FieldError) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxFollowWait {
		return 0, &event.FieldError{Field: "wait", Rule: "range", Limit: "0s.." + MaxFollowWait.String(),
			Message: "wait must be a duration (e.g. 20s) from 0s to " + MaxFollowWait.String() + ", got " + strconv.Quote(v)}
	}
	return d, nil
}
