// Package exporterapp is the exporter component: its configuration (Config, read from
// the environment) and Run, shared by the exporter binary (cmd/exporter) and trailkeep dev.
//
// The exporter delivers audit.chained to the systems that keep the audit log past
// ClickHouse's hot window: Splunk HEC, Datadog Logs and the S3 Object Lock archive
// (packages sink/splunk, sink/datadog, sink/s3). Each enabled sink runs in its own
// consumer group with its own Kafka client and buffers (package sink), so a slow or
// broken sink never holds back another. A sink whose credentials are refused stops
// (trailkeep_exporter_sink_up 0, /healthz 503 naming it) while the others go on; the
// process exits non-zero once no sink is left running. Configuration comes from the
// environment; see Config.
package exporterapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trailkeep/trailkeep/internal/service"
	"github.com/trailkeep/trailkeep/pkg/archive/localdir"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/sink"
	"github.com/trailkeep/trailkeep/pkg/sink/datadog"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
	"github.com/trailkeep/trailkeep/pkg/sink/splunk"
)

// Config is read from the environment.
type Config struct {
	// Kafka seed brokers, host:port.
	Brokers []string `env:"TRAILKEEP_KAFKA_BROKERS, default=127.0.0.1:19092"`
	// Kafka is TLS and SASL towards the brokers (TRAILKEEP_KAFKA_TLS*, _SASL_*).
	Kafka kafka.Security
	// Fetch is how long each sink's fetches wait at the broker for chained
	// records (TRAILKEEP_KAFKA_FETCH_*).
	Fetch kafka.Fetch
	// Topic of chained records (the chain of partition p in partition p).
	Chained string `env:"TRAILKEEP_CHAINED_TOPIC, default=audit.chained"`
	// Topic of signed checkpoints.
	Checkpoints string `env:"TRAILKEEP_CHECKPOINTS_TOPIC, default=audit.checkpoints"`
	// Sinks lists the enabled sinks: any of splunk, datadog, s3.
	Sinks []string `env:"TRAILKEEP_EXPORTER_SINKS, required"`
	// GroupPrefix + sink name is each sink's consumer group; the dead-letter topic
	// is audit.exporter.<sink>.deadletter, created with Replication.
	GroupPrefix string `env:"TRAILKEEP_EXPORTER_GROUP_PREFIX, default=trailkeep-exporter-"`
	Replication int16  `env:"TRAILKEEP_EXPORTER_REPLICATION, default=1"`
	// Topics are the settings of created topics (TRAILKEEP_KAFKA_MIN_INSYNC_REPLICAS).
	Topics kafka.TopicSettings
	// InstanceID makes each sink a static group member (<instance>-<sink>), so a
	// restarted exporter resumes at once; default the host name (a pod name).
	InstanceID string `env:"TRAILKEEP_EXPORTER_INSTANCE_ID"`
	// BufferBytes is the per-partition fetch buffer of each sink (memory bound
	// under a stalled sink).
	BufferBytes int `env:"TRAILKEEP_EXPORTER_BUFFER_BYTES, default=8388608"`
	// StallTimeout: a sink whose group has lag while it acknowledges nothing for this
	// long is reported (trailkeep_exporter_stalls_total) and its consumer restarted.
	// A negative value disables the watchdog.
	StallTimeout time.Duration `env:"TRAILKEEP_EXPORTER_STALL_TIMEOUT, default=5m"`
	// Addr serves /metrics, /healthz and /readyz.
	Addr string `env:"TRAILKEEP_EXPORTER_ADDR, default=127.0.0.1:8082"`
	// debug, info, warn or error.
	LogLevel string `env:"TRAILKEEP_LOG_LEVEL, default=info"`

	// Splunk HTTP Event Collector base URL.
	SplunkURL string `env:"TRAILKEEP_SPLUNK_HEC_URL"`
	// HEC token.
	SplunkToken string `env:"TRAILKEEP_SPLUNK_HEC_TOKEN"`
	// Index for the events; empty: the token's default.
	SplunkIndex string `env:"TRAILKEEP_SPLUNK_INDEX"`
	// source field of the events.
	SplunkSource string `env:"TRAILKEEP_SPLUNK_SOURCE, default=trailkeep"`
	// sourcetype field of the events.
	SplunkSourcetype string `env:"TRAILKEEP_SPLUNK_SOURCETYPE, default=trailkeep:audit"`
	// host field of the events; empty: none.
	SplunkHost string `env:"TRAILKEEP_SPLUNK_HOST"`
	// Wait for indexer acknowledgement before committing (the token must have it enabled).
	SplunkAck bool `env:"TRAILKEEP_SPLUNK_ACK, default=true"`
	// How long an unacknowledged batch waits before it is sent again.
	SplunkAckTimeout time.Duration `env:"TRAILKEEP_SPLUNK_ACK_TIMEOUT, default=5m"`
	// How often pending acknowledgements are polled.
	SplunkAckPoll time.Duration `env:"TRAILKEEP_SPLUNK_ACK_POLL_INTERVAL, default=1s"`
	// Most batches awaiting acknowledgement.
	SplunkPendingAcks int `env:"TRAILKEEP_SPLUNK_MAX_PENDING_ACKS, default=100"`
	// Largest event HEC accepts; larger records are dead-lettered.
	SplunkMaxEventSize int `env:"TRAILKEEP_SPLUNK_MAX_EVENT_SIZE, default=5242880"`
	// Most records per HEC request.
	SplunkBatchRecords int `env:"TRAILKEEP_SPLUNK_BATCH_RECORDS, default=1000"`
	// Most bytes per HEC request.
	SplunkBatchBytes int `env:"TRAILKEEP_SPLUNK_BATCH_BYTES, default=1048576"`
	// How long a partial HEC batch waits for more records.
	SplunkLinger time.Duration `env:"TRAILKEEP_SPLUNK_LINGER, default=200ms"`

	// Datadog API key for the datadog sink (Datadog's own variable name).
	DatadogAPIKey string `env:"DD_API_KEY"`
	// Datadog site the datadog sink sends to (datadoghq.com, datadoghq.eu, ...).
	DatadogSite string `env:"DD_SITE, default=datadoghq.com"`
	// Overrides the Datadog Logs intake URL (tests, proxies).
	DatadogURL string `env:"TRAILKEEP_DATADOG_URL"`
	// service attribute of the logs sent to Datadog.
	DatadogService string `env:"TRAILKEEP_DATADOG_SERVICE, default=trailkeep"`
	// ddsource attribute of the logs sent to Datadog.
	DatadogSource string `env:"TRAILKEEP_DATADOG_SOURCE, default=trailkeep"`
	// ddtags added to every log (comma-separated key:value).
	DatadogTags string `env:"TRAILKEEP_DATADOG_TAGS"`
	// Most records per Datadog request.
	DatadogBatchRecords int `env:"TRAILKEEP_DATADOG_BATCH_RECORDS, default=1000"`
	// Most bytes per Datadog request (the intake accepts 5 MB).
	DatadogBatchBytes int `env:"TRAILKEEP_DATADOG_BATCH_BYTES, default=4000000"`
	// How long a partial Datadog batch waits for more records.
	DatadogLinger time.Duration `env:"TRAILKEEP_DATADOG_LINGER, default=500ms"`

	// Archive bucket (versioning and Object Lock enabled).
	S3Bucket string `env:"TRAILKEEP_S3_BUCKET"`
	// S3Dir, instead of a bucket, writes the archive's objects as files under this
	// directory (trailkeep dev): same keys and verification, no Object Lock, so it
	// needs TRAILKEEP_S3_LOCK_MODE=none.
	S3Dir string `env:"TRAILKEEP_S3_DIR"`
	// Key prefix of the archive inside the bucket.
	S3Prefix string `env:"TRAILKEEP_S3_PREFIX"`
	// S3 endpoint URL for S3-compatible servers; default AWS.
	S3Endpoint string `env:"TRAILKEEP_S3_ENDPOINT"`
	// S3 region.
	S3Region string `env:"TRAILKEEP_S3_REGION, default=us-east-1"`
	// Static access key; empty: the SDK's default credential chain (IAM role, profile, ...).
	S3AccessKey string `env:"TRAILKEEP_S3_ACCESS_KEY"`
	// Static secret key, with TRAILKEEP_S3_ACCESS_KEY.
	S3SecretKey string `env:"TRAILKEEP_S3_SECRET_KEY"`
	// Path-style addressing (most S3-compatible servers).
	S3PathStyle bool `env:"TRAILKEEP_S3_PATH_STYLE, default=false"`
	// S3Checksum: sha256 (default), crc32, crc32c or md5 (Content-MD5 only, for
	// S3-compatible servers that reject the SDK's checksum headers).
	S3Checksum string `env:"TRAILKEEP_S3_CHECKSUM, default=sha256"`
	// S3LockMode COMPLIANCE or GOVERNANCE ("none": rely on the bucket default);
	// S3Retention as <n>d or <n>y (HIPAA: 6y).
	S3LockMode  string `env:"TRAILKEEP_S3_LOCK_MODE, default=COMPLIANCE"`
	S3Retention string `env:"TRAILKEEP_S3_RETENTION, default=6y"`
	// Put a legal hold on every archive object.
	S3LegalHold bool `env:"TRAILKEEP_S3_LEGAL_HOLD, default=false"`
	// Objects roll at S3BatchRecords or S3BatchBytes per partition, when the
	// partition's buffer (BufferBytes) is full, or S3Linger after the oldest
	// waiting record (object age).
	S3BatchRecords int           `env:"TRAILKEEP_S3_BATCH_RECORDS, default=20000"`
	S3BatchBytes   int           `env:"TRAILKEEP_S3_BATCH_BYTES, default=16777216"`
	S3Linger       time.Duration `env:"TRAILKEEP_S3_LINGER, default=30s"`
}

// ParseRetention reads "<n>d" or "<n>y" (a year is 365 days).
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("retention %q: want <n>d or <n>y", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("retention %q: want a positive <n>d or <n>y", s)
	}
	switch s[len(s)-1] {
	case 'd':
		return time.Duration(n) * 24 * time.Hour, nil
	case 'y':
		return time.Duration(n) * 365 * 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("retention %q: want <n>d or <n>y", s)
}

type built struct {
	s   sink.Sink
	cfg sink.Config
}

func buildSinks(ctx context.Context, cfg Config, log *slog.Logger, m *sink.Metrics) ([]built, func(), error) {
	var out []built
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	kopts, err := cfg.Kafka.Opts()
	if err != nil {
		return nil, closeAll, err
	}
	base := func(name string, records, bytes int, linger time.Duration) sink.Config {
		instance := ""
		if cfg.InstanceID != "" {
			instance = cfg.InstanceID + "-" + name
		}
		return sink.Config{ClientOpts: kopts, Fetch: cfg.Fetch, Brokers: cfg.Brokers, Group: cfg.GroupPrefix + name, InstanceID: instance, ChainedTopic: cfg.Chained,
			CheckpointTopic: cfg.Checkpoints, Replication: cfg.Replication, TopicConfigs: cfg.Topics.Configs(), BatchRecords: records, BatchBytes: bytes,
			Linger: linger, BufferBytes: cfg.BufferBytes, StallTimeout: cfg.StallTimeout, Logger: log, Metrics: m}
	}
	seen := map[string]bool{}
	for _, name := range cfg.Sinks {
		name = strings.TrimSpace(name)
		if seen[name] {
			return nil, closeAll, fmt.Errorf("TRAILKEEP_EXPORTER_SINKS names %s twice", name)
		}
		seen[name] = true
		switch name {
		case "splunk":
			if cfg.SplunkURL == "" || cfg.SplunkToken == "" {
				return nil, closeAll, errors.New("sink splunk needs TRAILKEEP_SPLUNK_HEC_URL and TRAILKEEP_SPLUNK_HEC_TOKEN")
			}
			s, err := splunk.New(splunk.Config{URL: cfg.SplunkURL, Token: cfg.SplunkToken, Index: cfg.SplunkIndex, Source: cfg.SplunkSource,
				Sourcetype: cfg.SplunkSourcetype, Host: cfg.SplunkHost, Ack: cfg.SplunkAck, AckTimeout: cfg.SplunkAckTimeout,
				AckPollInterval: cfg.SplunkAckPoll, MaxPendingAcks: cfg.SplunkPendingAcks, MaxEventSize: cfg.SplunkMaxEventSize, Logger: log})
			if err != nil {
				return nil, closeAll, err
			}
			closers = append(closers, s.Close)
			out = append(out, built{s, base(name, cfg.SplunkBatchRecords, cfg.SplunkBatchBytes, cfg.SplunkLinger)})
		case "datadog":
			if cfg.DatadogAPIKey == "" {
				return nil, closeAll, errors.New("sink datadog needs DD_API_KEY")
			}
			s, err := datadog.New(datadog.Config{APIKey: cfg.DatadogAPIKey, Site: cfg.DatadogSite, URL: cfg.DatadogURL,
				Service: cfg.DatadogService, Source: cfg.DatadogSource, Tags: cfg.DatadogTags, Logger: log})
			if err != nil {
				return nil, closeAll, err
			}
			out = append(out, built{s, base(name, cfg.DatadogBatchRecords, cfg.DatadogBatchBytes, cfg.DatadogLinger)})
		case "s3":
			sk, err := buildS3(ctx, cfg, log)
			if err != nil {
				return nil, closeAll, err
			}
			out = append(out, built{sk, base(name, cfg.S3BatchRecords, cfg.S3BatchBytes, cfg.S3Linger)})
		default:
			return nil, closeAll, fmt.Errorf("TRAILKEEP_EXPORTER_SINKS: unknown sink %q (want splunk, datadog, s3)", name)
		}
	}
	if len(out) == 0 {
		return nil, closeAll, errors.New("TRAILKEEP_EXPORTER_SINKS is empty")
	}
	return out, closeAll, nil
}

// Run runs the exporter until ctx ends or it fails.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	// One stage failing ends the others: stop cancels their context.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := cfg.Fetch.Validate(); err != nil {
		return err
	}
	var err error
	if cfg.InstanceID == "" {
		if cfg.InstanceID, err = os.Hostname(); err != nil {
			return fmt.Errorf("TRAILKEEP_EXPORTER_INSTANCE_ID unset and no host name: %w", err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := sink.NewMetrics(reg)
	sinks, closeSinks, err := buildSinks(ctx, *cfg, log, metrics)
	defer closeSinks()
	if err != nil {
		return err
	}

	var mu sync.Mutex
	stopped := map[string]string{}
	var wg sync.WaitGroup
	for _, b := range sinks {
		r, err := sink.NewRunner(b.s, b.cfg)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := b.s.Name()
			log.Info("sink running", "sink", name, "group", b.cfg.Group)
			err := r.Run(ctx)
			if err == nil || ctx.Err() != nil {
				return
			}
			log.Error("sink stopped; the other sinks go on", "sink", name, "err", err)
			mu.Lock()
			stopped[name] = err.Error()
			all := len(stopped) == len(sinks)
			mu.Unlock()
			if all {
				stop()
			}
		}()
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	health := func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if len(stopped) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"stopped": stopped})
	}
	mux.HandleFunc("GET /healthz", health)
	mux.HandleFunc("GET /readyz", health)
	serveErr := make(chan error, 1)
	go func() { serveErr <- service.Serve(ctx, cfg.Addr, mux, 5*time.Second, log, "service", "exporter") }()
	wg.Wait()
	stop()
	if err := <-serveErr; err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stopped) == len(sinks) {
		return fmt.Errorf("every sink stopped: %v", stopped)
	}
	return nil
}

// buildS3 builds the archive sink: a bucket with Object Lock, or a directory.
func buildS3(ctx context.Context, cfg Config, log *slog.Logger) (*sinks3.Sink, error) {
	if (cfg.S3Bucket == "") == (cfg.S3Dir == "") {
		return nil, errors.New("sink s3 needs one of TRAILKEEP_S3_BUCKET and TRAILKEEP_S3_DIR")
	}
	var mode types.ObjectLockMode
	var retention time.Duration
	var err error
	switch strings.ToUpper(cfg.S3LockMode) {
	case "NONE":
	case "COMPLIANCE", "GOVERNANCE":
		mode = types.ObjectLockMode(strings.ToUpper(cfg.S3LockMode))
		if retention, err = ParseRetention(cfg.S3Retention); err != nil {
			return nil, fmt.Errorf("TRAILKEEP_S3_RETENTION: %w", err)
		}
	default:
		return nil, fmt.Errorf("TRAILKEEP_S3_LOCK_MODE %q: want COMPLIANCE, GOVERNANCE or none", cfg.S3LockMode)
	}
	sc := sinks3.Config{Bucket: cfg.S3Bucket, Prefix: cfg.S3Prefix, Mode: mode, Retention: retention,
		LegalHold: cfg.S3LegalHold, Checksum: cfg.S3Checksum, Logger: log}
	if cfg.S3Dir != "" {
		if mode != "" || cfg.S3LegalHold {
			return nil, errors.New("TRAILKEEP_S3_DIR has no Object Lock: set TRAILKEEP_S3_LOCK_MODE=none and no legal hold")
		}
		if sc.Objects, err = localdir.New(cfg.S3Dir); err != nil {
			return nil, fmt.Errorf("TRAILKEEP_S3_DIR: %w", err)
		}
	} else if sc.Client, err = sinks3.NewClient(ctx, sinks3.ClientConfig{Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, AccessKey: cfg.S3AccessKey,
		SecretKey: cfg.S3SecretKey, PathStyle: cfg.S3PathStyle, Checksum: cfg.S3Checksum}); err != nil {
		return nil, err
	}
	return sinks3.New(sc)
}
