// Package ingestapp is the ingest component: its configuration (Config, read from
// the environment) and Run, shared by the ingest binary (cmd/ingest) and trailkeep dev.
//
// The ingest is trailkeep's HTTP front door: it authenticates senders, maps Claude
// Code hooks, CloudEvents and canonical events onto the canonical event, redacts
// secrets and produces the canonical bytes to Kafka (audit.events), answering 2xx only
// once Kafka acknowledged. Configuration comes from the environment; see Config.
package ingestapp

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/trailkeep/trailkeep/internal/service"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/redact"
)

// Config is read from the environment.
type Config struct {
	// Addr is the listen address.
	Addr string `env:"TRAILKEEP_INGEST_ADDR, default=127.0.0.1:8080"`
	// Brokers are the Kafka seed brokers.
	Brokers []string `env:"TRAILKEEP_KAFKA_BROKERS, default=127.0.0.1:19092"`
	// Kafka is TLS and SASL towards the brokers (TRAILKEEP_KAFKA_TLS*, _SASL_*).
	Kafka kafka.Security
	// Topic receives canonical events, keyed by tenant (the chain key).
	Topic string `env:"TRAILKEEP_EVENTS_TOPIC, default=audit.events"`
	// Partitions and Replication are used when the topic must be created.
	Partitions  int32 `env:"TRAILKEEP_EVENTS_PARTITIONS, default=4"`
	Replication int16 `env:"TRAILKEEP_EVENTS_REPLICATION, default=1"`
	// Topics are the settings of the created topic (TRAILKEEP_KAFKA_MIN_INSYNC_REPLICAS).
	Topics kafka.TopicSettings
	// TokensFile holds {"tokens":[...]} (see ingest.Token); Tokens is the same JSON
	// inline. One of them is required.
	TokensFile string `env:"TRAILKEEP_INGEST_TOKENS_FILE"`
	Tokens     string `env:"TRAILKEEP_INGEST_TOKENS"`
	// IPKey (hex or base64, >= 16 bytes) or IPKeyFile is the master secret for
	// client IP HMACs. Required.
	IPKey     string `env:"TRAILKEEP_INGEST_IP_KEY"`
	IPKeyFile string `env:"TRAILKEEP_INGEST_IP_KEY_FILE"`
	// PromptTextTenants opted in to storing (redacted) prompt text.
	PromptTextTenants []string `env:"TRAILKEEP_INGEST_PROMPT_TEXT_TENANTS"`
	// TrustedProxies (CIDRs) may set X-Forwarded-For.
	TrustedProxies []string `env:"TRAILKEEP_INGEST_TRUSTED_PROXIES"`
	// Largest request body (compressed and, for OTLP gzip, decompressed).
	MaxBodyBytes int64 `env:"TRAILKEEP_INGEST_MAX_BODY_BYTES, default=5242880"`
	// Most items in one array, NDJSON or CloudEvents batch request.
	MaxBatchItems int `env:"TRAILKEEP_INGEST_MAX_BATCH_ITEMS, default=1000"`
	// OTLPGRPCAddr is where the OTLP gRPC logs service listens (4317 is OTLP's
	// default gRPC port); empty disables it. OTLP/HTTP is POST /v1/logs on Addr.
	OTLPGRPCAddr string `env:"TRAILKEEP_INGEST_OTLP_GRPC_ADDR, default=127.0.0.1:4317"`
	// OTLPSample thins high-volume OpenTelemetry events per tenant:
	// "tenant:event=fraction,..." with "*" for every tenant, e.g.
	// "*:api_request=0.1,acme:api_request=1" (acme keeps all). Default: keep all.
	OTLPSample string `env:"TRAILKEEP_INGEST_OTLP_SAMPLE"`
	// MaxInFlightBytes bounds the request bodies admitted at once (503 past it), so
	// memory does not grow with the number of connections.
	MaxInFlightBytes int64 `env:"TRAILKEEP_INGEST_MAX_INFLIGHT_BYTES, default=6291456"`
	// MemoryLimit is the Go runtime's soft memory limit (debug.SetMemoryLimit): the
	// collector works harder as the heap nears it, so RSS stays near the live data
	// the in-flight budget bounds. GOMEMLIMIT, when set, takes precedence. 0: none.
	MemoryLimit int64 `env:"TRAILKEEP_INGEST_MEMORY_LIMIT, default=268435456"`
	// Largest canonical event.
	MaxEventBytes int `env:"TRAILKEEP_INGEST_MAX_EVENT_BYTES, default=65536"`
	// MaxBufferedBytes bounds memory held for unacknowledged records.
	MaxBufferedBytes int `env:"TRAILKEEP_INGEST_MAX_BUFFERED_BYTES, default=67108864"`
	// How long an event waits for others to share its produce batch: longer is
	// fewer produce requests for the brokers and a later answer (0: the default).
	KafkaLinger time.Duration `env:"TRAILKEEP_INGEST_KAFKA_LINGER, default=2ms"`
	// Compression of produce batches (lz4, zstd, snappy, gzip or none): CPU on every
	// hop against bytes on the network and the brokers' disks.
	KafkaCompression string `env:"TRAILKEEP_INGEST_KAFKA_COMPRESSION, default=lz4"`
	// How long an event may wait for Kafka's acknowledgement before the item is 503 ack_timeout.
	DeliveryTimeout time.Duration `env:"TRAILKEEP_INGEST_DELIVERY_TIMEOUT, default=10s"`
	// How long an accepted idempotency key is remembered for duplicates and conflicts.
	DedupeWindow time.Duration `env:"TRAILKEEP_INGEST_DEDUPE_WINDOW, default=15m"`
	// Most idempotency keys remembered per process.
	DedupeEntries int `env:"TRAILKEEP_INGEST_DEDUPE_ENTRIES, default=200000"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	ShutdownTimeout time.Duration `env:"TRAILKEEP_INGEST_SHUTDOWN_TIMEOUT, default=30s"`
	// debug, info, warn or error.
	LogLevel string `env:"TRAILKEEP_LOG_LEVEL, default=info"`
}

// Run runs the ingest until ctx ends or it fails.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {

	if cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	tokens, err := loadTokens(*cfg)
	if err != nil {
		return err
	}
	ipKey, err := loadIPKey(*cfg)
	if err != nil {
		return err
	}
	var proxies []netip.Prefix
	for _, c := range cfg.TrustedProxies {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return fmt.Errorf("TRAILKEEP_INGEST_TRUSTED_PROXIES: %w", err)
		}
		proxies = append(proxies, p)
	}
	red, err := redact.New()
	if err != nil {
		return err
	}
	kopts, err := cfg.Kafka.Opts()
	if err != nil {
		return err
	}
	if _, err := kafka.CompressionCodec(cfg.KafkaCompression); err != nil {
		return fmt.Errorf("TRAILKEEP_INGEST_KAFKA_COMPRESSION: %w", err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{
		Brokers: cfg.Brokers, Topic: cfg.Topic, Opts: kopts,
		MaxBufferedBytes: cfg.MaxBufferedBytes, DeliveryTimeout: cfg.DeliveryTimeout,
		Linger: cfg.KafkaLinger, Compression: cfg.KafkaCompression,
	})
	if err != nil {
		return err
	}
	// Creating the topic needs the broker; retry until it answers or we are stopped,
	// so ingest can be started before Kafka (and /readyz says when it is usable).
	go func() {
		for {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := kafka.EnsureTopics(cctx, prod.Client(), kafka.Topic{Name: cfg.Topic, Partitions: cfg.Partitions, Replication: cfg.Replication, Configs: cfg.Topics.Configs()})
			cancel()
			if err == nil {
				log.Info("topic ready", "topic", cfg.Topic)
				return
			}
			log.Warn("creating topic failed; retrying", "topic", cfg.Topic, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()

	sample, err := parseSample(cfg.OTLPSample)
	if err != nil {
		return err
	}
	srv, err := ingest.New(ingest.Options{
		OTLPSample: sample,
		Tokens:     tokens, Publisher: prod, Redactor: red, IPKey: ipKey,
		PromptTextTenants: cfg.PromptTextTenants, TrustedProxies: proxies,
		MaxBodyBytes: cfg.MaxBodyBytes, MaxBatchItems: cfg.MaxBatchItems, MaxInFlightBytes: cfg.MaxInFlightBytes,
		Limits:       event.Limits{MaxEventBytes: cfg.MaxEventBytes, MaxDepth: event.DefaultLimits.MaxDepth},
		DedupeWindow: cfg.DedupeWindow, DedupeEntries: cfg.DedupeEntries,
		Logger: log,
	})
	if err != nil {
		return err
	}
	stopGRPC, err := serveOTLPGRPC(cfg.OTLPGRPCAddr, srv, log)
	if err != nil {
		return err
	}
	err = service.Serve(ctx, cfg.Addr, srv, cfg.ShutdownTimeout, log, "brokers", cfg.Brokers, "topic", cfg.Topic)
	stopGRPC()
	if err != nil {
		return err
	}
	// In-flight requests have their acknowledgements; flush what is left and close.
	cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return prod.Close(cctx)
}

func loadTokens(cfg Config) (*ingest.Tokens, error) {
	data := []byte(cfg.Tokens)
	if cfg.TokensFile != "" {
		b, err := os.ReadFile(cfg.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("TRAILKEEP_INGEST_TOKENS_FILE: %w", err)
		}
		data = b
	}
	if len(data) == 0 {
		return nil, errors.New("no tokens configured: set TRAILKEEP_INGEST_TOKENS_FILE or TRAILKEEP_INGEST_TOKENS (trailctl tokens create prints an entry)")
	}
	return ingest.ParseTokens(data)
}

func loadIPKey(cfg Config) ([]byte, error) {
	s := cfg.IPKey
	if cfg.IPKeyFile != "" {
		b, err := os.ReadFile(cfg.IPKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TRAILKEEP_INGEST_IP_KEY_FILE: %w", err)
		}
		s = strings.TrimSpace(string(b))
	}
	if s == "" {
		return nil, errors.New("TRAILKEEP_INGEST_IP_KEY (or _FILE) is required: client IPs are stored only as HMACs (generate one with: head -c32 /dev/urandom | base64)")
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) >= 16 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) >= 16 {
		return b, nil
	}
	return nil, errors.New("TRAILKEEP_INGEST_IP_KEY must be at least 16 bytes, hex or base64")
}

// serveOTLPGRPC starts the OTLP gRPC logs service on addr ("" disables it) and
// returns the function that stops it gracefully (in-flight exports finish).
func serveOTLPGRPC(addr string, srv *ingest.Server, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("TRAILKEEP_INGEST_OTLP_GRPC_ADDR: %w", err)
	}
	g := grpc.NewServer(grpc.MaxRecvMsgSize(8 << 20))
	srv.RegisterOTLP(g)
	go func() {
		if err := g.Serve(ln); err != nil {
			log.Error("otlp grpc: serve", "err", err)
		}
	}()
	log.Info("otlp grpc listening", "addr", ln.Addr().String())
	return g.GracefulStop, nil
}

// parseSample reads TRAILKEEP_INGEST_OTLP_SAMPLE ("tenant:event=fraction,...").
func parseSample(v string) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		te, frac, ok := strings.Cut(part, "=")
		tenant, ev, ok2 := strings.Cut(te, ":")
		f, err := strconv.ParseFloat(frac, 64)
		if !ok || !ok2 || tenant == "" || ev == "" || err != nil || f < 0 || f > 1 {
			return nil, fmt.Errorf("TRAILKEEP_INGEST_OTLP_SAMPLE: %q: want tenant:event=fraction with a fraction from 0 to 1, e.g. *:api_request=0.1", part)
		}
		if out[tenant] == nil {
			out[tenant] = map[string]float64{}
		}
		out[tenant][ev] = f
	}
	return out, nil
}
