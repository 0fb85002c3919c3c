// Package ddtest is an in-process Datadog Logs intake (POST /api/v2/logs) for tests
// and benchmarks. Like the real intake it checks DD-API-KEY (403), accepts gzip,
// refuses payloads over 5 MB (413) and arrays over 1000 entries (400), and silently
// truncates entries over 1 MB while still answering 202 — the behaviour the exporter
// must prevent on its side. Failures can be injected (429 with X-RateLimit-Reset, 408,
// 503), and every accepted log is kept for the test to inspect.
package ddtest

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/trailkeep/trailkeep/internal/httpfake"
)

// Limits of the real intake.
const (
	MaxPayload = 5_000_000
	MaxEntries = 1000
	MaxEntry   = 1_000_000
)

// Log is one accepted log entry.
type Log struct {
	Raw       json.RawMessage
	Message   string
	Partition int64
	Seq       uint64
	// SilentlyTruncated is set when the intake cut the entry (it was over 1 MB).
	SilentlyTruncated bool
}

// Fault is one injected answer.
type Fault struct {
	Status int
	// Reset is sent as X-RateLimit-Reset (seconds) when non-empty.
	Reset string
}

// Server is a fake intake.
type Server struct {
	APIKey string
	// Reject, when set, makes a request containing a matching message answer 400.
	Reject func(message string) bool

	ln     httpfake.Listener
	mu     sync.Mutex
	logs   []Log
	faults []Fault
}

// Listen serves on addr and returns the base URL.
func (s *Server) Listen(addr string) (string, error) { return s.ln.Listen(addr, s) }

// Close stops listening.
func (s *Server) Close() { s.ln.Close() }

// Fail queues answers for the next requests.
func (s *Server) Fail(f ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// Logs returns the accepted logs in arrival order.
func (s *Server) Logs() []Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Log(nil), s.logs...)
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"status": strconv.Itoa(status), "detail": msg}}})
}

// ServeHTTP implements POST /api/v2/logs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v2/logs" || r.Method != http.MethodPost {
		answer(w, http.StatusNotFound, "not found")
		return
	}
	if r.Header.Get("DD-API-KEY") != s.APIKey {
		answer(w, http.StatusForbidden, "Forbidden")
		return
	}
	s.mu.Lock()
	var fault *Fault
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		fault = &f
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.Reset != "" {
			w.Header().Set("X-RateLimit-Reset", fault.Reset)
		}
		answer(w, fault.Status, "injected")
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			answer(w, http.StatusBadRequest, "bad gzip")
			return
		}
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxPayload+1))
	if err != nil {
		answer(w, http.StatusBadRequest, "bad body")
		return
	}
	if len(data) > MaxPayload {
		answer(w, http.StatusRequestEntityTooLarge, "Payload too large")
		return
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		answer(w, http.StatusBadRequest, "Bad Request: "+err.Error())
		return
	}
	if len(items) > MaxEntries {
		answer(w, http.StatusBadRequest, "too many entries")
		return
	}
	var got []Log
	for _, raw := range items {
		var it struct {
			Message   string `json:"message"`
			Trailkeep struct {
				Partition int64  `json:"partition"`
				Seq       uint64 `json:"seq"`
			} `json:"trailkeep"`
		}
		if err := json.Unmarshal(raw, &it); err != nil {
			answer(w, http.StatusBadRequest, "Bad Request: "+err.Error())
			return
		}
		if s.Reject != nil && s.Reject(it.Message) {
			answer(w, http.StatusBadRequest, "Bad Request: rejected entry")
			return
		}
		l := Log{Raw: append(json.RawMessage(nil), raw...), Message: it.Message, Partition: it.Trailkeep.Partition, Seq: it.Trailkeep.Seq}
		if len(raw) > MaxEntry {
			// The real intake keeps the first 1 MB and still answers 202.
			l.SilentlyTruncated = true
			l.Message = l.Message[:min(len(l.Message), MaxEntry)]
		}
		got = append(got, l)
	}
	s.mu.Lock()
	s.logs = append(s.logs, got...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte("{}"))
}
