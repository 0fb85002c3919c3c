// Package hectest is an in-process HTTP Event Collector for tests and benchmarks. It
// implements the parts of Splunk's HEC contract the exporter depends on: token
// authentication (codes 2–4), gzip bodies, concatenated event objects, the request
// channel and indexer acknowledgement (/services/collector/ack), the content-length
// limit (413), invalid-event-number on bad events, and injected failures (503 with
// code 9, 429 with Retry-After, lost acks). It keeps every event it indexed, so a test
// can check that each chained record arrived and that duplicates are byte-identical.
package hectest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trailkeep/trailkeep/internal/httpfake"
)

// Options configure a Server.
type Options struct {
	Token string
	// Ack requires a channel and answers with ackIds.
	Ack bool
	// AckDelay is how long an ackId stays unindexed.
	AckDelay time.Duration
	// MaxContentLength (default 10 MB) answers 413 for larger decompressed bodies.
	MaxContentLength int
	// Discard counts events without keeping them (benchmarks).
	Discard bool
	// Reject, when set, marks events the server refuses with code 6 and
	// invalid-event-number (the events before it in the request are indexed).
	Reject func(event []byte) bool
}

// Fault is one injected answer.
type Fault struct {
	Status     int
	Code       int
	RetryAfter string
}

// Event is one indexed event object.
type Event struct {
	Raw       []byte
	Partition int64
	Seq       uint64
	Fields    map[string]string
	Record    json.RawMessage // the "event" member
}

// Server is a fake HEC.
type Server struct {
	opts Options

	ln       httpfake.Listener
	mu       sync.Mutex
	events   []Event
	faults   []Fault
	dropAcks int
	nextAck  uint64
	acks     map[uint64]time.Time // ackId -> time it becomes indexed (zero: never)
	// maxPending is the most ackIds ever outstanding (issued, not yet reported).
	maxPending int
}

// New returns a server that is not listening yet; call Listen.
func New(opts Options) *Server {
	if opts.MaxContentLength <= 0 {
		opts.MaxContentLength = 10 << 20
	}
	return &Server{opts: opts, acks: map[uint64]time.Time{}}
}

// Listen serves on addr ("127.0.0.1:0" for any port) and returns the base URL.
// Listen after Close on the same address brings the collector back.
func (s *Server) Listen(addr string) (string, error) { return s.ln.Listen(addr, s) }

// Close stops listening (connections are refused until the next Listen).
func (s *Server) Close() { s.ln.Close() }

// Fail queues answers for the next event requests.
func (s *Server) Fail(faults ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, faults...)
	s.mu.Unlock()
}

// DropAcks makes the next n ackIds never report indexed (the events are kept).
func (s *Server) DropAcks(n int) {
	s.mu.Lock()
	s.dropAcks += n
	s.mu.Unlock()
}

// Events returns a copy of the indexed events, in arrival order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// MaxPending returns the most ackIds that were ever outstanding at once: above one
// per partition, the sender ran ahead of acknowledgement.
func (s *Server) MaxPending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxPending
}

type reply struct {
	Text    string  `json:"text"`
	Code    int     `json:"code"`
	AckID   *uint64 `json:"ackId,omitempty"`
	Invalid *int    `json:"invalid-event-number,omitempty"`
}

func write(w http.ResponseWriter, status int, r reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(r)
}

// ServeHTTP implements the collector's /services/collector/event and /ack.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		write(w, http.StatusUnauthorized, reply{Text: "Token is required", Code: 2})
		return
	case auth != "Splunk "+s.opts.Token:
		write(w, http.StatusForbidden, reply{Text: "Invalid token", Code: 4})
		return
	}
	channel := r.Header.Get("X-Splunk-Request-Channel")
	if channel == "" {
		channel = r.URL.Query().Get("channel")
	}
	if s.opts.Ack && channel == "" {
		write(w, http.StatusBadRequest, reply{Text: "Data channel is missing", Code: 10})
		return
	}
	switch r.URL.Path {
	case "/services/collector/event":
		s.event(w, r)
	case "/services/collector/ack":
		s.ack(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) event(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var fault *Fault
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		fault = &f
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		write(w, fault.Status, reply{Text: "injected", Code: fault.Code})
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			write(w, http.StatusBadRequest, reply{Text: "Invalid data format", Code: 6})
			return
		}
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, int64(s.opts.MaxContentLength)+1))
	if err != nil {
		write(w, http.StatusBadRequest, reply{Text: "Invalid data format", Code: 6})
		return
	}
	if len(data) > s.opts.MaxContentLength {
		write(w, http.StatusRequestEntityTooLarge, reply{Text: "Content too large", Code: 27})
		return
	}
	evs, bad, code := parse(data, s.opts.Reject)
	s.mu.Lock()
	defer s.mu.Unlock()
	// HEC indexes the events before the first bad one.
	if !s.opts.Discard {
		s.events = append(s.events, evs...)
	}
	if bad >= 0 {
		write(w, http.StatusBadRequest, reply{Text: "Invalid data format", Code: code, Invalid: &bad})
		return
	}
	if len(evs) == 0 {
		write(w, http.StatusBadRequest, reply{Text: "No data", Code: 5})
		return
	}
	rep := reply{Text: "Success", Code: 0}
	if s.opts.Ack {
		s.nextAck++
		id := s.nextAck
		if s.dropAcks > 0 {
			s.dropAcks--
			s.acks[id] = time.Time{}
		} else {
			s.acks[id] = time.Now().Add(s.opts.AckDelay)
		}
		rep.AckID = &id
		s.maxPending = max(s.maxPending, len(s.acks))
	}
	write(w, http.StatusOK, rep)
}

// parse splits concatenated event objects; bad is the index of the first refused one.
func parse(data []byte, reject func([]byte) bool) (evs []Event, bad, code int) {
	dec := json.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return evs, -1, 0
			}
			return evs, i, 6
		}
		var obj struct {
			Event  json.RawMessage   `json:"event"`
			Fields map[string]string `json:"fields"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return evs, i, 6
		}
		if len(obj.Event) == 0 {
			return evs, i, 12
		}
		if reject != nil && reject(obj.Event) {
			return evs, i, 6
		}
		ev := Event{Raw: append([]byte(nil), raw...), Fields: obj.Fields, Record: obj.Event}
		ev.Partition, _ = strconv.ParseInt(obj.Fields["partition"], 10, 32)
		ev.Seq, _ = strconv.ParseUint(obj.Fields["seq"], 10, 64)
		evs = append(evs, ev)
	}
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Acks []uint64 `json:"acks"`
	}
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		write(w, http.StatusBadRequest, reply{Text: "Invalid data format", Code: 6})
		return
	}
	s.mu.Lock()
	out := map[string]bool{}
	now := time.Now()
	for _, id := range q.Acks {
		at, ok := s.acks[id]
		done := ok && !at.IsZero() && !now.Before(at)
		out[strconv.FormatUint(id, 10)] = done
		if done {
			delete(s.acks, id) // HEC forgets an ackId once it reported it
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"acks": out})
}

// Check verifies the indexed events against want (partition, seq) positions: each
// arrived at least once, and every duplicate is byte-identical to the first copy.
// It returns the number of duplicates.
func Check(evs []Event, want map[[2]uint64]bool) (dups int, err error) {
	first := map[[2]uint64][]byte{}
	for _, e := range evs {
		k := [2]uint64{uint64(e.Partition), e.Seq}
		if prev, ok := first[k]; ok {
			dups++
			if !bytes.Equal(prev, e.Raw) {
				return dups, fmt.Errorf("duplicate of %d/%d differs:\n%s\n%s", e.Partition, e.Seq, prev, e.Raw)
			}
			continue
		}
		first[k] = e.Raw
	}
	var missing []string
	for k := range want {
		if _, ok := first[k]; !ok {
			missing = append(missing, fmt.Sprintf("%d/%d", k[0], k[1]))
		}
	}
	if len(missing) > 0 {
		if len(missing) > 10 {
			missing = append(missing[:10], "…")
		}
		return dups, fmt.Errorf("%d records never arrived: %s", len(missing), strings.Join(missing, " "))
	}
	return dups, nil
}
