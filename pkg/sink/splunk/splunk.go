// Package splunk delivers the chained audit log to a Splunk HTTP Event Collector.
//
// A batch is one gzip-compressed POST to /services/collector/event of concatenated
// event objects (no array, no separators). Each object's "event" is the chained
// record exactly as the chainer wrote it — partition, seq, chained_at, prev_hash,
// leaf_hash and the canonical event verbatim — and its indexed "fields" carry the
// chain position, so a search can verify records and drop the duplicates that
// at-least-once delivery produces (they are byte-identical).
//
// With indexer acknowledgement (Splunk Enterprise tokens with useACK), a batch counts
// as delivered only once /services/collector/ack reports its ackId indexed; pending
// ackIds of all partitions are polled together, a batch whose ack does not come
// within AckTimeout is sent again, and at most MaxPendingAcks batches wait at once
// (further batches block: backpressure). Splunk Cloud offers acknowledgement only to
// Firehose, so there the HTTP 200 counts: set Ack false. A token without
// acknowledgement answers without an ackId and the 200 counts as well.
package splunk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/klauspost/compress/gzip"

	"github.com/trailkeep/trailkeep/pkg/sink"
)

// Config configures the HEC sink. Zero values take the documented defaults.
type Config struct {
	// URL is the collector's base URL, e.g. https://splunk.example.com:8088. Required.
	URL string
	// Token is the HEC token. Required.
	Token string
	// Index, Source, Sourcetype and Host are set on every event. Index empty
	// leaves the token's default index; Source defaults to "trailkeep",
	// Sourcetype to "trailkeep:audit", Host to the exporter's host name.
	Index, Source, Sourcetype, Host string
	// Ack turns on indexer acknowledgement (the token must have it).
	Ack bool
	// Channel is the request channel GUID. Default: a random one per process.
	Channel string
	// AckPollInterval (default 1s) is how often pending acks are polled;
	// AckTimeout (default 5m) is when an unacknowledged batch is sent again;
	// MaxPendingAcks (default 100) bounds the batches waiting for their ack.
	AckPollInterval, AckTimeout time.Duration
	MaxPendingAcks              int
	// MaxEventSize is HEC's maxEventSize (default 5 MB): a larger event is
	// dead-lettered (the complete record stays in the archive) rather than sent.
	MaxEventSize int
	// Client defaults to an http.Client with a 60s timeout.
	Client *http.Client
	Logger *slog.Logger
}

// Sink is a Splunk HEC sink.
type Sink struct {
	cfg     Config
	event   string
	ackURL  string
	slots   chan struct{}
	log     *slog.Logger
	gzPool  sync.Pool
	mu      sync.Mutex
	pending map[uint64]chan struct{}
	stop    chan struct{}
	once    sync.Once
}

// New returns a HEC sink; Close stops its ack poller.
func New(cfg Config) (*Sink, error) {
	if cfg.URL == "" || cfg.Token == "" {
		return nil, errors.New("splunk: URL and Token are required")
	}
	if cfg.Source == "" {
		cfg.Source = "trailkeep"
	}
	if cfg.Sourcetype == "" {
		cfg.Sourcetype = "trailkeep:audit"
	}
	if cfg.Channel == "" {
		cfg.Channel = newGUID()
	}
	if cfg.AckPollInterval <= 0 {
		cfg.AckPollInterval = time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 5 * time.Minute
	}
	if cfg.MaxPendingAcks <= 0 {
		cfg.MaxPendingAcks = 100
	}
	if cfg.MaxEventSize <= 0 {
		cfg.MaxEventSize = 5 << 20
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 60 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	base := strings.TrimRight(cfg.URL, "/")
	s := &Sink{cfg: cfg, event: base + "/services/collector/event", ackURL: base + "/services/collector/ack?channel=" + cfg.Channel,
		slots: make(chan struct{}, cfg.MaxPendingAcks), log: cfg.Logger.With("sink", "splunk"),
		pending: map[uint64]chan struct{}{}, stop: make(chan struct{})}
	if cfg.Ack {
		go s.pollAcks()
	}
	return s, nil
}

// Name implements sink.Sink.
func (s *Sink) Name() string { return "splunk" }

// Close stops the ack poller.
func (s *Sink) Close() { s.once.Do(func() { close(s.stop) }) }

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// AppendEvent appends the HEC event object for rec. The output depends on rec and
// the configuration only, so a re-delivered record is byte-identical.
func (s *Sink) AppendEvent(b []byte, rec *sink.Record) []byte {
	b = append(b, `{"time":`...)
	t := rec.OccurredAt
	if t.IsZero() {
		t = rec.Chain.ChainedAt
	}
	b = strconv.AppendInt(b, t.Unix(), 10)
	b = append(b, '.')
	us := strconv.Itoa(t.Nanosecond() / 1000)
	b = append(b, "000000"[len(us):]...)
	b = append(b, us...)
	b = appendField(b, "host", s.cfg.Host)
	b = appendField(b, "source", s.cfg.Source)
	b = appendField(b, "sourcetype", s.cfg.Sourcetype)
	if s.cfg.Index != "" {
		b = appendField(b, "index", s.cfg.Index)
	}
	b = append(b, `,"fields":{"tenant":`...)
	b, _ = jsontext.AppendQuote(b, rec.Tenant)
	b = append(b, `,"partition":"`...)
	b = strconv.AppendInt(b, int64(rec.Chain.Partition), 10)
	b = append(b, `","seq":"`...)
	b = strconv.AppendUint(b, rec.Chain.Seq, 10)
	b = append(b, `","leaf_hash":"`...)
	b = append(b, rec.Chain.LeafHash.String()...)
	b = append(b, `","prev_hash":"`...)
	b = append(b, rec.Chain.PrevHash.String()...)
	b = append(b, `","event_id":`...)
	b, _ = jsontext.AppendQuote(b, rec.ID)
	b = append(b, `,"action":`...)
	b, _ = jsontext.AppendQuote(b, rec.Action)
	b = append(b, `},"event":`...)
	b = append(b, rec.Value...)
	return append(b, '}')
}

func appendField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	b, _ = jsontext.AppendQuote(b, v)
	return b
}

// response is HEC's reply body.
type response struct {
	Text    string  `json:"text"`
	Code    *int    `json:"code"`
	AckID   *uint64 `json:"ackId"`
	Invalid *int    `json:"invalid-event-number"`
}

// Deliver implements sink.Sink: Send, then wait for the acknowledgement.
func (s *Sink) Deliver(ctx context.Context, b *sink.Batch) error {
	a, err := s.Send(ctx, b)
	if err != nil {
		return err
	}
	return a.Wait(ctx)
}

// Send implements sink.AckSink: it posts the batch and returns its pending indexer
// acknowledgement (already done when acknowledgement is off or the token has none).
// At most MaxPendingAcks batches wait for acks at once; Send blocks beyond that.
func (s *Sink) Send(ctx context.Context, b *sink.Batch) (sink.Ack, error) {
	var raw bytes.Buffer
	var ev []byte
	for i := range b.Records {
		ev = s.AppendEvent(ev[:0], &b.Records[i])
		if len(ev) > s.cfg.MaxEventSize {
			return nil, sink.Rejected(fmt.Errorf("splunk: event %d/%d is %d bytes, over HEC maxEventSize %d; it is kept in the archive",
				b.Partition, b.Records[i].Chain.Seq, len(ev), s.cfg.MaxEventSize), i)
		}
		raw.Write(ev)
	}
	body, err := s.gzip(raw.Bytes())
	if err != nil {
		return nil, err
	}
	if s.cfg.Ack {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	a, err := s.post(ctx, body)
	if err != nil || a == nil {
		if s.cfg.Ack {
			<-s.slots
		}
		if err != nil {
			return nil, err
		}
		return done{}, nil
	}
	return a, nil
}

type done struct{}

func (done) Wait(context.Context) error { return nil }

// post sends one gzip body; it returns the pending ack, or nil when the 200 counts.
func (s *Sink) post(ctx context.Context, body []byte) (*ack, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.event, bytes.NewReader(body))
	if err != nil {
		return nil, sink.Fatalf("splunk: request: %v", err)
	}
	req.Header.Set("Authorization", "Splunk "+s.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("X-Splunk-Request-Channel", s.cfg.Channel)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, sink.Retryable(fmt.Errorf("splunk: post batch: %w", err), 0)
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var r response
	_ = json.Unmarshal(data, &r)
	if err := classify(resp, r, data); err != nil {
		return nil, err
	}
	if !s.cfg.Ack || r.AckID == nil {
		return nil, nil
	}
	a := &ack{s: s, id: *r.AckID, ch: make(chan struct{}), deadline: time.Now().Add(s.cfg.AckTimeout)}
	s.mu.Lock()
	s.pending[a.id] = a.ch
	s.mu.Unlock()
	return a, nil
}

// ack is a batch waiting for HEC's indexer acknowledgement.
type ack struct {
	s        *Sink
	id       uint64
	ch       chan struct{}
	deadline time.Time
}

// Wait implements sink.Ack. After AckTimeout from the send the batch counts as lost
// (a retryable error: the Runner sends it again), since HEC may have dropped it.
func (a *ack) Wait(ctx context.Context) error {
	defer func() { <-a.s.slots }()
	t := time.NewTimer(time.Until(a.deadline))
	defer t.Stop()
	select {
	case <-a.ch:
		return nil
	case <-ctx.Done():
		a.s.forget(a.id)
		return ctx.Err()
	case <-t.C:
		a.s.forget(a.id)
		return sink.Retryable(fmt.Errorf("splunk: ackId %d not indexed within %s; sending the batch again", a.id, a.s.cfg.AckTimeout), 0)
	}
}

// classify maps an HEC answer to nil (accepted) or a sink error, following the HEC
// status codes: 1–4 credentials, 5–7 and 10–15 content, 8, 9 and 18–20 transient.
func classify(resp *http.Response, r response, body []byte) error {
	code := -1
	if r.Code != nil {
		code = *r.Code
	}
	if resp.StatusCode == http.StatusOK && (code == 0 || code == -1) {
		return nil
	}
	err := fmt.Errorf("splunk: HEC answered %s, code %d: %q", resp.Status, code, strings.TrimSpace(string(body)))
	index := -1
	if r.Invalid != nil {
		index = *r.Invalid
	}
	switch {
	case code >= 1 && code <= 4, resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return sink.Fatalf("%w (check the HEC token and that it may write the index)", err)
	case code == 8 || code == 9 || (code >= 18 && code <= 20), resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return sink.Retryable(err, sink.RetryAfter(resp.Header))
	case (code >= 5 && code <= 7) || (code >= 10 && code <= 15), resp.StatusCode == http.StatusBadRequest,
		resp.StatusCode == http.StatusRequestEntityTooLarge:
		return sink.Rejected(err, index)
	case resp.StatusCode >= 400:
		return sink.Rejected(err, index)
	}
	return sink.Retryable(err, 0)
}

func (s *Sink) gzip(p []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(p) / 4)
	zw, _ := s.gzPool.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(&out, gzip.BestSpeed)
	} else {
		zw.Reset(&out)
	}
	defer s.gzPool.Put(zw)
	if _, err := zw.Write(p); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (s *Sink) forget(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// pollAcks asks HEC about every pending ackId at once, each AckPollInterval.
func (s *Sink) pollAcks() {
	tick := time.NewTicker(s.cfg.AckPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		ids := make([]uint64, 0, len(s.pending))
		for id := range s.pending {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		done, err := s.queryAcks(ids)
		if err != nil {
			s.log.Warn("ack poll failed; pending batches wait or are resent after the ack timeout", "pending", len(ids), "err", err)
			continue
		}
		s.mu.Lock()
		for _, id := range done {
			if ch, ok := s.pending[id]; ok {
				close(ch)
				delete(s.pending, id)
			}
		}
		s.mu.Unlock()
	}
}

func (s *Sink) queryAcks(ids []uint64) ([]uint64, error) {
	body, _ := json.Marshal(map[string][]uint64{"acks": ids})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.ackURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Splunk "+s.cfg.Token)
	req.Header.Set("X-Splunk-Request-Channel", s.cfg.Channel)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ack endpoint answered %s: %q", resp.Status, strings.TrimSpace(string(data)))
	}
	var r struct {
		Acks map[string]bool `json:"acks"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("ack response: %w", err)
	}
	var done []uint64
	for k, ok := range r.Acks {
		if id, err := strconv.ParseUint(k, 10, 64); err == nil && ok {
			done = append(done, id)
		}
	}
	return done, nil
}
