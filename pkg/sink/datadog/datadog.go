// Package datadog delivers the chained audit log to Datadog Logs through the official
// client (datadog-api-client-go/v2, LogsApi.SubmitLog, gzip).
//
// Each log's message is the canonical event verbatim and its "trailkeep" attribute
// carries the chain position (tenant, partition, seq, chained_at, prev_hash,
// leaf_hash), from which the leaf hash can be recomputed inside Datadog; duplicates
// from at-least-once delivery are byte-identical and can be dropped by (partition,
// seq).
//
// The intake's limits are enforced before sending, because Datadog answers 2xx and
// silently truncates what exceeds them: at most 1000 entries and 5 MB uncompressed per
// request, and under 1 MB per entry — a larger event is truncated here with an explicit
// marker and "trailkeep.truncated": true (the complete record is in the S3 archive).
//
// The client's own retry is left off (it never retries 408 or network errors and
// can spin with zero backoff): the Runner owns the policy, fed by this package's
// classification — 408, 429 (with its rate-limit reset header), 5xx and network
// errors retry; 400 and 413 are rejected; 401 and 403 stop the sink.
package datadog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV2"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/sink"
)

// Intake limits of the Datadog Logs HTTP API.
const (
	MaxEntries      = 1000
	MaxPayloadBytes = 5_000_000
	MaxEntryBytes   = 1_000_000
)

const operation = "v2.LogsApi.SubmitLog"

// Config configures the Datadog sink.
type Config struct {
	// APIKey is the Datadog API key. Required.
	APIKey string
	// Site is the Datadog site (datadoghq.com, datadoghq.eu, us5.datadoghq.com,
	// …). Default datadoghq.com.
	Site string
	// URL, when set, replaces the site's intake (a proxy, or a test server).
	URL string
	// Service (default "trailkeep"), Source (ddsource, default "trailkeep"),
	// Hostname (default the host name) and Tags (extra ddtags, "env:prod,team:sec").
	Service, Source, Hostname, Tags string
	// Timeout of one request. Default 30s.
	Timeout time.Duration
	// MaxEntryBytes is the largest log entry sent whole (default just under the
	// intake's 1 MB); MaxPayloadBytes and MaxEntries bound one request.
	MaxEntryBytes, MaxPayloadBytes, MaxEntries int
	Logger                                     *slog.Logger
}

// Sink is a Datadog Logs sink.
type Sink struct {
	cfg Config
	api *datadogV2.LogsApi
	ctx context.Context
}

// New returns a Datadog sink.
func New(cfg Config) (*Sink, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("datadog: APIKey is required")
	}
	if cfg.Site == "" {
		cfg.Site = "datadoghq.com"
	}
	if cfg.Service == "" {
		cfg.Service = "trailkeep"
	}
	if cfg.Source == "" {
		cfg.Source = "trailkeep"
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxEntryBytes <= 0 || cfg.MaxEntryBytes > MaxEntryBytes-4096 {
		cfg.MaxEntryBytes = MaxEntryBytes - 4096
	}
	if cfg.MaxPayloadBytes <= 0 || cfg.MaxPayloadBytes > MaxPayloadBytes {
		cfg.MaxPayloadBytes = MaxPayloadBytes
	}
	if cfg.MaxEntries <= 0 || cfg.MaxEntries > MaxEntries {
		cfg.MaxEntries = MaxEntries
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dc := datadog.NewConfiguration()
	dc.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	dc.RetryConfiguration.EnableRetry = false
	dc.Compress = true
	ctx := context.WithValue(context.Background(), datadog.ContextAPIKeys,
		map[string]datadog.APIKey{"apiKeyAuth": {Key: cfg.APIKey}})
	if cfg.URL != "" {
		u, err := url.Parse(cfg.URL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("datadog: URL %q must be http(s)://host[:port]", cfg.URL)
		}
		// The operation's second server is "{protocol}://{name}".
		ctx = context.WithValue(ctx, datadog.ContextOperationServerIndices, map[string]int{operation: 1})
		ctx = context.WithValue(ctx, datadog.ContextOperationServerVariables,
			map[string]map[string]string{operation: {"protocol": u.Scheme, "name": u.Host}})
	} else {
		// The third server accepts any site ("https://{subdomain}.{site}").
		ctx = context.WithValue(ctx, datadog.ContextOperationServerIndices, map[string]int{operation: 2})
		ctx = context.WithValue(ctx, datadog.ContextOperationServerVariables,
			map[string]map[string]string{operation: {"site": cfg.Site}})
	}
	return &Sink{cfg: cfg, api: datadogV2.NewLogsApi(datadog.NewAPIClient(dc)), ctx: ctx}, nil
}

// Name implements sink.Sink.
func (s *Sink) Name() string { return "datadog" }

// Position is the "trailkeep" attribute of every log.
type Position struct {
	Tenant    string `json:"tenant"`
	Partition int32  `json:"partition"`
	Seq       uint64 `json:"seq"`
	ChainedAt string `json:"chained_at"`
	PrevHash  string `json:"prev_hash"`
	LeafHash  string `json:"leaf_hash"`
	EventID   string `json:"event_id"`
	// Truncated is set when the message is cut to fit the intake's entry limit;
	// EventBytes is then the full event's length.
	Truncated  bool `json:"truncated,omitempty"`
	EventBytes int  `json:"event_bytes,omitempty"`
}

// Item returns the log entry for rec and its approximate encoded size.
func (s *Sink) Item(rec *sink.Record) (datadogV2.HTTPLogItem, int) {
	pos := Position{Tenant: rec.Tenant, Partition: rec.Chain.Partition, Seq: rec.Chain.Seq,
		ChainedAt: rec.Chain.ChainedAt.UTC().Format(event.TimeLayout), PrevHash: rec.Chain.PrevHash.String(),
		LeafHash: rec.Chain.LeafHash.String(), EventID: rec.ID}
	msg := string(rec.Chain.Event)
	// JSON escaping can grow the message; budget for it by counting the characters
	// that escape.
	size := escapedLen(msg)
	if size > s.cfg.MaxEntryBytes {
		pos.Truncated, pos.EventBytes = true, len(msg)
		marker := func(keep int) string {
			return fmt.Sprintf(" …[trailkeep: truncated, %d of %d bytes; the complete record is in the S3 archive at %d/%d]",
				keep, len(msg), rec.Chain.Partition, rec.Chain.Seq)
		}
		keep := max(s.cfg.MaxEntryBytes-len(marker(len(msg)))-(size-len(msg)), 0)
		for keep > 0 && !utf8.RuneStart(msg[keep]) {
			keep--
		}
		msg = msg[:keep] + marker(keep)
		size = escapedLen(msg)
	}
	tags := "tenant:" + rec.Tenant + ",partition:" + strconv.Itoa(int(rec.Chain.Partition))
	if rec.Action != "" {
		tags += ",action:" + rec.Action
	}
	if s.cfg.Tags != "" {
		tags += "," + s.cfg.Tags
	}
	// UnparsedObject is serialised as is: the nested "trailkeep" attribute would
	// otherwise have to go through AdditionalProperties.
	item := datadogV2.HTTPLogItem{UnparsedObject: map[string]any{
		"message":   msg,
		"ddsource":  s.cfg.Source,
		"ddtags":    tags,
		"hostname":  s.cfg.Hostname,
		"service":   s.cfg.Service,
		"trailkeep": pos,
	}}
	return item, size + len(tags) + 400
}

// escapedLen is an upper bound of len(s) once JSON-encoded.
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			n++
		case c < 0x20, c == '<', c == '>', c == '&':
			n += 5
		}
	}
	return n
}

// Deliver implements sink.Sink: the batch goes in as few requests as the intake's
// limits allow, in order; a failure fails the batch (the Runner re-sends it whole,
// and the logs already accepted become duplicates, as the contract allows).
func (s *Sink) Deliver(ctx context.Context, b *sink.Batch) error {
	var items []datadogV2.HTTPLogItem
	size := 0
	for i := range b.Records {
		it, n := s.Item(&b.Records[i])
		if len(items) > 0 && (len(items) >= s.cfg.MaxEntries || size+n > s.cfg.MaxPayloadBytes) {
			if err := s.submit(ctx, items); err != nil {
				return err
			}
			items, size = nil, 0
		}
		items = append(items, it)
		size += n
	}
	if len(items) == 0 {
		return nil
	}
	return s.submit(ctx, items)
}

func (s *Sink) submit(ctx context.Context, items []datadogV2.HTTPLogItem) error {
	rctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	_, resp, err := s.api.SubmitLog(rctx, items, *datadogV2.NewSubmitLogOptionalParameters().WithContentEncoding(datadogV2.CONTENTENCODING_GZIP))
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		return sink.Retryable(fmt.Errorf("datadog: submit %d logs: %w", len(items), err), 0)
	}
	if resp.StatusCode < 300 {
		return nil
	}
	detail := ""
	var oe datadog.GenericOpenAPIError
	if errors.As(err, &oe) {
		detail = strings.TrimSpace(string(oe.Body()))
	}
	e := fmt.Errorf("datadog: intake answered %s to %d logs: %q", resp.Status, len(items), detail)
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return sink.Fatalf("%w (check DD_API_KEY and the site)", e)
	case code == http.StatusRequestTimeout || code >= 500:
		return sink.Retryable(e, sink.RetryAfter(resp.Header))
	case code == http.StatusTooManyRequests:
		return sink.Retryable(e, sink.RetryAfter(resp.Header))
	default: // 400, 413 and other refusals of the content
		return sink.Rejected(e, -1)
	}
}
