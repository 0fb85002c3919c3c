// Package dev runs the whole pipeline in one process for trying trailkeep:
// ingest, the chainer, the ClickHouse writer, the query API and the archive
// exporter — the same components (internal/app/*) the distributed deployment runs —
// on an embedded Kafka broker (franz-go's kfake, persisted with fsync per batch) and
// the in-process ClickHouse engine (chDB), with the archive in a directory.
//
// Everything lives under one data directory (0700): kafka/, clickhouse/, archive/
// and secrets/. A restart continues every chain: the chainer restores its state
// from the embedded broker, the writer skips what the store already has, and the
// archive finds its last digest.
//
// Not for production: one broker with replication 1, no TLS, secrets in files, and
// an archive directory without Object Lock.
package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/app/chainer"
	"github.com/trailkeep/trailkeep/internal/app/exporter"
	"github.com/trailkeep/trailkeep/internal/app/ingest"
	"github.com/trailkeep/trailkeep/internal/app/query"
	"github.com/trailkeep/trailkeep/internal/chdb"
	"github.com/trailkeep/trailkeep/internal/devlog"
	"github.com/trailkeep/trailkeep/internal/trialsecrets"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Options configure Run. Zero values take the documented defaults.
type Options struct {
	// DataDir holds everything. Default ./trailkeep-data.
	DataDir string
	// IngestAddr and QueryAddr are the HTTP listen addresses. Defaults
	// 127.0.0.1:8080 and 127.0.0.1:8081 (the distributed stack's).
	IngestAddr, QueryAddr string
	// Tenant of the dev tokens. Default acme.
	Tenant string
	// Deployment names the log in checkpoint origins. Default dev.
	Deployment string
	// ChDBCache is where libchdb is fetched once. Default $XDG_CACHE_HOME/trailkeep
	// (~/.cache/trailkeep).
	ChDBCache string
	// Logger receives the components' logs. Default: warnings to stderr.
	Logger *slog.Logger
	// Progress receives start-up messages (the engine download). Default stderr.
	Progress io.Writer
	// Ready is called once every component answers, with what the banner shows.
	Ready func(Info)
}

// Info is what a running dev instance offers.
type Info struct {
	DataDir, IngestURL, QueryURL, KafkaAddr, ArchiveDir, SecretsDir string
	Deployment, Tenant                                              string
	// PublicKey verifies the checkpoints (note verifier key).
	PublicKey string
	// Tokens are the dev secrets: HOOK_TOKEN, OTEL_TOKEN, REGISTRY_TOKEN,
	// AUDITOR_TOKEN, ADMIN_TOKEN.
	Tokens map[string]string
	// ClaudeSettings is a settings.json with every hook pointed at ingest.
	ClaudeSettings string
}

func (o *Options) defaults() error {
	if o.DataDir == "" {
		o.DataDir = "trailkeep-data"
	}
	abs, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	o.DataDir = abs
	if o.IngestAddr == "" {
		o.IngestAddr = "127.0.0.1:8080"
	}
	if o.QueryAddr == "" {
		o.QueryAddr = "127.0.0.1:8081"
	}
	if o.Tenant == "" {
		o.Tenant = "acme"
	}
	if o.Deployment == "" {
		o.Deployment = "dev"
	}
	if o.ChDBCache == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("no cache directory for the ClickHouse engine (set XDG_CACHE_HOME): %w", err)
		}
		o.ChDBCache = filepath.Join(c, "trailkeep", "chdb")
	}
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return nil
}

// Run starts everything, calls o.Ready once it answers, and runs until ctx ends
// or a component fails; then it stops the components, the broker and the engine.
func Run(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	unlock, err := devlog.Lock(o.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	info := Info{DataDir: o.DataDir, Deployment: o.Deployment, Tenant: o.Tenant,
		ArchiveDir: filepath.Join(o.DataDir, "archive"), SecretsDir: filepath.Join(o.DataDir, "secrets")}
	if err := trialsecrets.Init(info.SecretsDir, o.Tenant, "dev@"+o.Tenant+".example"); err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	broker, err := devlog.Open(ctx, o.DataDir, o.Logger)
	if err != nil {
		return err
	}
	defer broker.Close()
	info.KafkaAddr = broker.ListenAddrs()[0]
	engine, err := openEngine(o)
	if err != nil {
		return err
	}
	// The engine is left open on return: libchdb cannot reconnect in a process, and
	// closing it while a statement of a stopping component runs is a crash. Its
	// tables are durable per insert.
	store, err := clickhouse.OpenEmbedded(engine, clickhouse.EmbeddedOptions{})
	if err == nil {
		err = store.Migrate(ctx)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	comps, err := configure(o, info, store)
	if err != nil {
		return err
	}
	return runAll(ctx, o, info, comps)
}

// engineSettings size the engine's caches for one machine shared with everything
// else: ClickHouse's defaults (5 GiB mark and index caches) are a server's.
var engineSettings = []string{
	"mark_cache_size=67108864", "index_mark_cache_size=33554432", "primary_index_cache_size=33554432",
	"query_condition_cache_size=16777216", "uncompressed_cache_size=0",
}

func openEngine(o Options) (*chdb.Engine, error) {
	lib, err := chdb.Fetch(o.ChDBCache, o.Progress)
	if err != nil {
		return nil, fmt.Errorf("the in-process ClickHouse engine: %w", err)
	}
	e, err := chdb.Open(lib, filepath.Join(o.DataDir, "clickhouse"), engineSettings...)
	if err != nil {
		return nil, fmt.Errorf("the in-process ClickHouse engine: %w", err)
	}
	return e, nil
}

// component is one of the pipeline's services with its configuration.
type component struct {
	name string
	run  func(context.Context, *slog.Logger) error
	// afterTopics: the component reads the chainer's output topics, which must
	// exist before it starts (the exporter stops on a missing topic).
	afterTopics bool
}

// configs are the components' configurations, read as their binaries would.
type configs struct {
	ingest   ingestapp.Config
	chainer  chainerapp.Config
	query    queryapp.Config
	exporter exporterapp.Config
}

// devDefaults are dev's tuning for one machine: the environment overrides them
// (TRAILKEEP_WRITER_BATCH_ROWS=10000 measures the server's batch in dev).
var devDefaults = map[string]string{
	"TRAILKEEP_INGEST_MEMORY_LIMIT": "0", // one process: not ingest's to cap
	// A writer batch is held as rows and again as the INSERT's text: the server's
	// 10k rows are most of dev's Go heap for a throughput one machine does not need.
	"TRAILKEEP_WRITER_BATCH_ROWS":   "2500",
	"TRAILKEEP_WRITER_BUFFER_BYTES": "4194304",
	// The archive is a local directory: a short linger shows objects while trying.
	"TRAILKEEP_S3_LINGER": "2s",
}

// readConfigs reads each component's configuration in three layers: dev's wiring
// (addresses, files and modes dev owns, which the environment must not redirect:
// a TRAILKEEP_KAFKA_BROKERS left in the shell would send dev's events elsewhere),
// then the environment (any TRAILKEEP_* tuning), then devDefaults.
func readConfigs(o Options, info Info) (*configs, error) {
	s := func(name string) string { return filepath.Join(info.SecretsDir, name) }
	wiring := map[string]string{
		"TRAILKEEP_KAFKA_BROKERS":            info.KafkaAddr,
		"TRAILKEEP_DEPLOYMENT":               o.Deployment,
		"TRAILKEEP_INGEST_ADDR":              o.IngestAddr,
		"TRAILKEEP_INGEST_OTLP_GRPC_ADDR":    "", // OTLP/HTTP is on the ingest address
		"TRAILKEEP_INGEST_TOKENS_FILE":       s(trialsecrets.IngestTokens),
		"TRAILKEEP_INGEST_IP_KEY_FILE":       s(trialsecrets.IPKey),
		"TRAILKEEP_SIGNER_KEY_FILE":          s(trialsecrets.SignerKey),
		"TRAILKEEP_CHAINER_TRANSACTIONAL_ID": "trailkeep-dev-chainer",
		"TRAILKEEP_CHAINER_ADDR":             "",
		"TRAILKEEP_WRITER_STATIC_MEMBERSHIP": "false", // kfake lacks KIP-345
		"TRAILKEEP_QUERY_ADDR":               o.QueryAddr,
		"TRAILKEEP_QUERY_TOKENS_FILE":        s(trialsecrets.QueryTokens),
		"TRAILKEEP_EXPORTER_SINKS":           "s3",
		"TRAILKEEP_EXPORTER_ADDR":            "127.0.0.1:0",
		"TRAILKEEP_S3_DIR":                   info.ArchiveDir,
		"TRAILKEEP_S3_LOCK_MODE":             "none",
	}
	look := envconfig.MultiLookuper(envconfig.MapLookuper(wiring), envconfig.OsLookuper(), envconfig.MapLookuper(devDefaults))
	var c configs
	for _, target := range []any{&c.ingest, &c.chainer, &c.query, &c.exporter} {
		if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: target, Lookuper: look}); err != nil {
			return nil, fmt.Errorf("configuration: %w", err)
		}
	}
	return &c, nil
}

// configure builds the components from their configurations, sharing store.
func configure(o Options, info Info, store *clickhouse.Store) ([]component, error) {
	c, err := readConfigs(o, info)
	if err != nil {
		return nil, err
	}
	open := func(context.Context) (*clickhouse.Store, error) { return store, nil }
	c.chainer.OpenStore, c.query.OpenStore = open, open
	return []component{
		{"ingest", func(ctx context.Context, l *slog.Logger) error { return ingestapp.Run(ctx, &c.ingest, l) }, false},
		{"chainer", func(ctx context.Context, l *slog.Logger) error { return chainerapp.Run(ctx, &c.chainer, l) }, false},
		{"query", func(ctx context.Context, l *slog.Logger) error { return queryapp.Run(ctx, &c.query, l) }, true},
		{"exporter", func(ctx context.Context, l *slog.Logger) error { return exporterapp.Run(ctx, &c.exporter, l) }, true},
	}, nil
}

// runAll runs the components until ctx ends or one fails, and stops the rest.
// Readiness is awaited on this goroutine, so every component is started (wg.Add)
// before wg.Wait, and none starts after the context ended: a failing component
// cancels ctx, which ends the waits at once.
func runAll(ctx context.Context, o Options, info Info, comps []component) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errc := make(chan error, len(comps))
	start := func(after bool) {
		for _, c := range comps {
			if c.afterTopics != after {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := c.run(ctx, o.Logger.With("component", c.name))
				if err != nil && !errors.Is(err, context.Canceled) {
					errc <- fmt.Errorf("%s: %w", c.name, err)
					stop()
				}
			}()
		}
	}
	start(false)
	err := waitTopics(ctx, info.KafkaAddr)
	if err == nil {
		start(true)
		err = waitReady(ctx, o, &info)
	}
	if err == nil {
		if o.Ready != nil {
			o.Ready(info)
		}
		<-ctx.Done()
	}
	stop()
	wg.Wait()
	select {
	case cerr := <-errc: // the failure that stopped everything comes first
		return cerr
	default:
	}
	if errors.Is(err, context.Canceled) {
		return nil // stopped (signal) while starting
	}
	return err
}

// waitTopics waits until the chainer has created its output topics.
func waitTopics(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, topic := range []string{kafka.ChainedTopic, kafka.CheckpointsTopic} {
		for {
			if _, err := kafka.PartitionCount(ctx, cl, topic); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitReady polls the ingest and query readiness endpoints, then fills in the
// secrets the banner shows.
func waitReady(ctx context.Context, o Options, info *Info) error {
	info.IngestURL, info.QueryURL = "http://"+o.IngestAddr, "http://"+o.QueryAddr
	cl := &http.Client{Timeout: 2 * time.Second} // a hung probe must not stall start-up
	for _, u := range []string{info.IngestURL + "/readyz", info.QueryURL + "/readyz"} {
		for {
			if resp, err := cl.Get(u); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	pub, err := os.ReadFile(filepath.Join(info.SecretsDir, trialsecrets.SignerPub))
	if err != nil {
		return err
	}
	info.PublicKey = strings.TrimSpace(string(pub))
	if info.Tokens, err = trialsecrets.Tokens(info.SecretsDir); err != nil {
		return err
	}
	return nil
}
