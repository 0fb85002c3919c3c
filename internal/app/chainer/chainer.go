// Package chainerapp is the chainer component: its configuration (Config, read from
// the environment) and Run, shared by the chainer binary (cmd/chainer) and trailkeep dev.
//
// The chainer runs trailkeep's chainer — one transactional writer per partition of
// audit.events producing audit.chained, audit.checkpoints and audit.deadletter (package
// chainer) — and the ClickHouse writer stage, which stores audit.chained and
// audit.checkpoints in ClickHouse in its own consumer group (package
// store/clickhouse). Either stage can be switched off to scale them separately.
// Configuration comes from the environment; see Config.
package chainerapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/internal/service"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/chainer"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/sink"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Config is read from the environment.
type Config struct {
	// Kafka seed brokers, host:port.
	Brokers []string `env:"TRAILKEEP_KAFKA_BROKERS, default=127.0.0.1:19092"`
	// Kafka is TLS and SASL towards the brokers (TRAILKEEP_KAFKA_TLS*, _SASL_*).
	Kafka kafka.Security
	// Fetch is how long the chainer's and the writer's fetches wait at the broker
	// for input (TRAILKEEP_KAFKA_FETCH_*).
	Fetch kafka.Fetch
	// ClickHouseSecurity is TLS and the password file (TRAILKEEP_CLICKHOUSE_TLS*, _PASSWORD_FILE).
	ClickHouseSecurity clickhouse.Security
	// Consumer group of the chainers on the events topic.
	Group string `env:"TRAILKEEP_CHAINER_GROUP, default=trailkeep-chainer"`
	// TransactionalID must be stable per instance (a StatefulSet pod name); default
	// the host name.
	TransactionalID string `env:"TRAILKEEP_CHAINER_TRANSACTIONAL_ID"`
	// Deployment is the checkpoint origin prefix; never change it for a running log.
	Deployment string `env:"TRAILKEEP_DEPLOYMENT, default=trailkeep"`
	// Topic of canonical events, keyed by tenant (the chain key).
	InputTopic string `env:"TRAILKEEP_EVENTS_TOPIC, default=audit.events"`
	// Topic of chained records (the chain of partition p in partition p).
	Chained string `env:"TRAILKEEP_CHAINED_TOPIC, default=audit.chained"`
	// Topic of signed checkpoints.
	Checkpoint string `env:"TRAILKEEP_CHECKPOINTS_TOPIC, default=audit.checkpoints"`
	// Topic of input records the chainer could not chain, with the reason.
	DeadLetter string `env:"TRAILKEEP_DEADLETTER_TOPIC, default=audit.deadletter"`
	// Replication of output topics created at start-up.
	Replication int16 `env:"TRAILKEEP_CHAINER_REPLICATION, default=1"`
	// Topics are the settings of created topics (TRAILKEEP_KAFKA_MIN_INSYNC_REPLICAS).
	Topics kafka.TopicSettings
	// SignerKey(File) is the checkpoint signing key: the note form
	// ("PRIVATE+KEY+name+hash+key", as written by `trailctl keys generate`) or an
	// Ed25519 private key in PEM (PKCS #8), which is then named SignerName.
	SignerKey string `env:"TRAILKEEP_SIGNER_KEY"`
	// File holding the checkpoint signing key (wins over TRAILKEEP_SIGNER_KEY).
	SignerKeyFile string `env:"TRAILKEEP_SIGNER_KEY_FILE"`
	// SignerName names a PEM signing key in checkpoints (the note form names itself).
	SignerName string `env:"TRAILKEEP_SIGNER_NAME, default=trailkeep-checkpoints"`
	// VerifierKeys lists older public keys still accepted when restoring (key
	// rotation); the signer's own public key is always included.
	VerifierKeys []string `env:"TRAILKEEP_VERIFIER_KEYS, delimiter=;"`
	// A checkpoint is signed after this many records of a partition...
	CheckpointEvery int `env:"TRAILKEEP_CHECKPOINT_EVERY, default=1000"`
	// ... or this long after the last one, whichever comes first.
	CheckpointInterval time.Duration `env:"TRAILKEEP_CHECKPOINT_INTERVAL, default=5s"`
	// A partition's last checkpoint is published again when it is this old, so
	// that retention never empties the checkpoint topic of a quiet partition;
	// keep it under half the checkpoint topic's retention.ms (checked at start).
	CheckpointRefresh time.Duration `env:"TRAILKEEP_CHECKPOINT_REFRESH, default=24h"`
	// Most input records chained in one Kafka transaction.
	MaxPollRecords int `env:"TRAILKEEP_CHAINER_MAX_POLL_RECORDS, default=10000"`
	// debug, info, warn or error.
	LogLevel string `env:"TRAILKEEP_LOG_LEVEL, default=info"`
	// Addr serves /healthz, /readyz (every enabled stage is running: topics exist,
	// ClickHouse is migrated) and /metrics; empty disables it.
	Addr string `env:"TRAILKEEP_CHAINER_ADDR, default=127.0.0.1:8083"`

	// ChainerEnabled and WriterEnabled switch the two stages.
	ChainerEnabled bool `env:"TRAILKEEP_CHAINER_ENABLED, default=true"`
	WriterEnabled  bool `env:"TRAILKEEP_WRITER_ENABLED, default=true"`
	// ClickHouse (native protocol).
	ClickHouseAddr []string `env:"TRAILKEEP_CLICKHOUSE_ADDR, default=127.0.0.1:9000"`
	// Database holding audit_events and audit_checkpoints (created by migrations).
	ClickHouseDatabase string `env:"TRAILKEEP_CLICKHOUSE_DATABASE, default=trailkeep"`
	// ClickHouse user.
	ClickHouseUser string `env:"TRAILKEEP_CLICKHOUSE_USER, default=default"`
	// ClickHouse password (TRAILKEEP_CLICKHOUSE_PASSWORD_FILE wins).
	ClickHousePassword string `env:"TRAILKEEP_CLICKHOUSE_PASSWORD"`
	// How long events stay in ClickHouse (checkpoints stay forever); the archive keeps them for years.
	HotWindow time.Duration `env:"TRAILKEEP_HOT_WINDOW, default=2160h"`
	// Consumer group of the ClickHouse writers on the chained topic.
	WriterGroup string `env:"TRAILKEEP_WRITER_GROUP, default=trailkeep-clickhouse-writer"`
	// WriterInstanceID is the writer's static group membership id; default the
	// chainer's transactional id (unique per instance).
	WriterInstanceID string `env:"TRAILKEEP_WRITER_INSTANCE_ID"`
	// WriterStaticMembership makes the writer a static group member (KIP-345) named
	// by TRAILKEEP_WRITER_INSTANCE_ID. Switch it off for brokers without static
	// membership (trailkeep dev's embedded broker).
	WriterStaticMembership bool `env:"TRAILKEEP_WRITER_STATIC_MEMBERSHIP, default=true"`
	// OpenStore, when set, replaces the ClickHouse connection: trailkeep dev passes its
	// in-process engine. Not read from the environment.
	OpenStore func(context.Context) (*clickhouse.Store, error)
	// A partition's rows go to ClickHouse in batches of this many rows (the batches
	// of every partition that arrive while an insert runs share the next insert)...
	WriterBatchRows int `env:"TRAILKEEP_WRITER_BATCH_ROWS, default=10000"`
	// ... or of what arrived this long after the first waiting row.
	WriterBatchAge time.Duration `env:"TRAILKEEP_WRITER_BATCH_AGE, default=1s"`
	// Topic of audit.chained values the writer could not decode, with the reason.
	WriterDeadLetter string `env:"TRAILKEEP_WRITER_DEADLETTER_TOPIC, default=audit.writer.deadletter"`
	// Bytes of fetched records one partition may hold while its insert runs.
	WriterBufferBytes int `env:"TRAILKEEP_WRITER_BUFFER_BYTES, default=33554432"`
	// The writer's stall watchdog: a group with lag and nothing stored for this long
	// is logged, counted (trailkeep_exporter_stalls_total{sink="clickhouse"}) and
	// gets a fresh consumer; negative disables it.
	WriterStallTimeout time.Duration `env:"TRAILKEEP_WRITER_STALL_TIMEOUT, default=5m"`
}

// Run runs the chainer until ctx ends or it fails.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	// One stage failing ends the others: stop cancels their context.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := cfg.Fetch.Validate(); err != nil {
		return err
	}
	if cfg.TransactionalID == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("TRAILKEEP_CHAINER_TRANSACTIONAL_ID unset and no host name: %w", err)
		}
		cfg.TransactionalID = "trailkeep-chainer-" + h
	}
	errc := make(chan error, 3)
	stages := 0
	var ready readiness
	reg := prometheus.NewRegistry()
	if cfg.ChainerEnabled {
		stages++
		ready.want("chainer")
		go func() { errc <- runChainer(ctx, *cfg, log, &ready, reg) }()
	}
	if cfg.WriterEnabled {
		stages++
		ready.want("writer")
		m := sink.NewMetrics(reg)
		go func() { errc <- runWriter(ctx, *cfg, log, &ready, m) }()
	}
	if cfg.Addr != "" && stages > 0 {
		stages++
		go func() { errc <- service.Serve(ctx, cfg.Addr, healthMux(&ready, reg), 5*time.Second, log) }()
	}
	if stages == 0 {
		return errors.New("both stages are disabled (TRAILKEEP_CHAINER_ENABLED, TRAILKEEP_WRITER_ENABLED)")
	}
	// One stage failing stops the process: an orchestrator restarts it whole, and
	// both stages recover from Kafka and ClickHouse alone.
	var first error
	for i := 0; i < stages; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
			stop()
		}
	}
	return first
}

func runChainer(ctx context.Context, cfg Config, log *slog.Logger, ready *readiness, reg prometheus.Registerer) error {
	signer, verifiers, err := keys(cfg)
	if err != nil {
		return err
	}
	kopts, err := cfg.Kafka.Opts()
	if err != nil {
		return err
	}
	c, err := chainer.New(chainer.Config{
		ClientOpts: kopts, Fetch: cfg.Fetch,
		Brokers: cfg.Brokers, Group: cfg.Group, TransactionalID: cfg.TransactionalID, Deployment: cfg.Deployment,
		InputTopic: cfg.InputTopic, ChainedTopic: cfg.Chained, CheckpointTopic: cfg.Checkpoint, DeadLetterTopic: cfg.DeadLetter,
		Replication: cfg.Replication, TopicConfigs: cfg.Topics.Configs(), Signer: signer, Verifiers: verifiers,
		CheckpointEvery: cfg.CheckpointEvery, CheckpointInterval: cfg.CheckpointInterval, CheckpointRefresh: cfg.CheckpointRefresh, MaxPollRecords: cfg.MaxPollRecords,
		Logger: log,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	registerChainer(reg, c)
	for {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.EnsureTopics(tctx)
		cancel()
		if err == nil {
			break
		}
		log.Warn("output topics not ready; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	ready.set("chainer")
	log.Info("chaining", "transactional_id", cfg.TransactionalID, "signer", signer.Name(), "input", cfg.InputTopic)
	if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("chainer: %w", err)
	}
	return nil
}

func runWriter(ctx context.Context, cfg Config, log *slog.Logger, ready *readiness, m *sink.Metrics) error {
	var store *clickhouse.Store
	for {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := openStore(octx, cfg)
		if err == nil {
			err = s.Migrate(octx)
			if err != nil {
				s.Close()
			}
		}
		cancel()
		if err == nil {
			store = s
			break
		}
		log.Warn("ClickHouse not ready; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	defer store.Close()
	ver, modern := store.Version()
	log.Info("writing to ClickHouse", "version", ver, "modern_ddl", modern, "database", cfg.ClickHouseDatabase)
	if !modern {
		// No TTL on legacy servers: drop expired day partitions once a day.
		go func() {
			t := time.NewTicker(24 * time.Hour)
			defer t.Stop()
			for {
				if dropped, err := store.DropExpired(ctx, time.Now()); err != nil {
					log.Error("retention: dropping expired partitions failed", "err", err)
				} else if len(dropped) > 0 {
					log.Info("retention: dropped expired partitions", "partitions", dropped)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	if cfg.WriterInstanceID == "" {
		cfg.WriterInstanceID = cfg.TransactionalID
	}
	if !cfg.WriterStaticMembership {
		cfg.WriterInstanceID = ""
	}
	kopts, err := cfg.Kafka.Opts()
	if err != nil {
		return err
	}
	w, err := clickhouse.NewWriter(store, clickhouse.WriterConfig{ClientOpts: kopts, Fetch: cfg.Fetch, Brokers: cfg.Brokers, Group: cfg.WriterGroup, InstanceID: cfg.WriterInstanceID,
		ChainedTopic: cfg.Chained, CheckpointTopic: cfg.Checkpoint, BatchRows: cfg.WriterBatchRows, BatchAge: cfg.WriterBatchAge,
		DeadLetterTopic: cfg.WriterDeadLetter, BufferBytes: cfg.WriterBufferBytes, StallTimeout: cfg.WriterStallTimeout, Replication: cfg.Replication, TopicConfigs: cfg.Topics.Configs(),
		Metrics: m, Logger: log})
	if err != nil {
		return err
	}
	defer w.Close()
	ready.set("writer")
	if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("clickhouse writer: %w", err)
	}
	return nil
}

// openStore connects to ClickHouse, or to the store cfg.OpenStore provides.
func openStore(ctx context.Context, cfg Config) (*clickhouse.Store, error) {
	if cfg.OpenStore != nil {
		return cfg.OpenStore(ctx)
	}
	o := clickhouse.Options{Addr: cfg.ClickHouseAddr, Database: cfg.ClickHouseDatabase,
		Username: cfg.ClickHouseUser, Password: cfg.ClickHousePassword, HotWindow: cfg.HotWindow}
	if err := cfg.ClickHouseSecurity.Apply(&o); err != nil {
		return nil, err
	}
	return clickhouse.Open(ctx, o)
}

func keys(cfg Config) (note.Signer, note.Verifiers, error) {
	skey := cfg.SignerKey
	if cfg.SignerKeyFile != "" {
		b, err := os.ReadFile(cfg.SignerKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("TRAILKEEP_SIGNER_KEY_FILE: %w", err)
		}
		skey = string(b)
	}
	skey = strings.TrimSpace(skey)
	if strings.HasPrefix(skey, "-----BEGIN") {
		k, err := chain.SignerKeyFromPEM(cfg.SignerName, []byte(skey))
		if err != nil {
			return nil, nil, err
		}
		skey = k
	}
	if skey == "" {
		return nil, nil, errors.New("TRAILKEEP_SIGNER_KEY or TRAILKEEP_SIGNER_KEY_FILE is required (trailctl keys generate NAME)")
	}
	signer, err := chain.NewSigner(skey)
	if err != nil {
		return nil, nil, fmt.Errorf("signer key: %w", err)
	}
	vkey, err := chain.VerifierKey(skey)
	if err != nil {
		return nil, nil, err
	}
	verifiers, err := chain.NewVerifiers(append([]string{vkey}, cfg.VerifierKeys...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("TRAILKEEP_VERIFIER_KEYS: %w", err)
	}
	return signer, verifiers, nil
}
