// Package queryapp is the query component: its configuration (Config, read from
// the environment) and Run, shared by the query binary (cmd/query) and trailkeep dev.
//
// The query serves trailkeep's read API (package queryapi): search, single
// events, inclusion proofs, the latest checkpoints, read-only SQL and streamed
// exports for role-based, tenant-scoped tokens, auditing every call into the log.
//
// It is its own service rather than part of ingest on purpose: ingest holds only
// write tokens and Kafka produce rights and must stay fast for hook senders that
// block agents, while this service holds ClickHouse read credentials for every
// tenant and runs heavy exports and SQL. Separate processes keep a bug or overload
// on one side from reaching the other, and let each scale on its own.
package queryapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trailkeep/trailkeep/internal/service"
	"github.com/trailkeep/trailkeep/pkg/console"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Config is read from the environment.
type Config struct {
	// Where the query API listens.
	Addr string `env:"TRAILKEEP_QUERY_ADDR, default=127.0.0.1:8081"`
	// TokensFile holds {"tokens":[...]} (see queryapi.Token; trailctl tokens query
	// prints an entry); Tokens is the same JSON inline.
	TokensFile string `env:"TRAILKEEP_QUERY_TOKENS_FILE"`
	Tokens     string `env:"TRAILKEEP_QUERY_TOKENS"`
	// ClickHouse, as the chainer's writer reads it. Use a ClickHouse user that can
	// only SELECT the audit tables, and INSERT into saved_queries (saved queries
	// are the one thing the API writes): readonly is enforced per query as well.
	ClickHouseAddr []string `env:"TRAILKEEP_CLICKHOUSE_ADDR, default=127.0.0.1:9000"`
	// Database holding audit_events and audit_checkpoints (created by migrations).
	ClickHouseDatabase string `env:"TRAILKEEP_CLICKHOUSE_DATABASE, default=trailkeep"`
	// ClickHouse user.
	ClickHouseUser string `env:"TRAILKEEP_CLICKHOUSE_USER, default=default"`
	// ClickHouse password (TRAILKEEP_CLICKHOUSE_PASSWORD_FILE wins).
	ClickHousePassword string `env:"TRAILKEEP_CLICKHOUSE_PASSWORD"`
	// Brokers and EventsTopic receive the access events, like ingest's events.
	Brokers []string `env:"TRAILKEEP_KAFKA_BROKERS, default=127.0.0.1:19092"`
	// Kafka is TLS and SASL towards the brokers (TRAILKEEP_KAFKA_TLS*, _SASL_*).
	Kafka kafka.Security
	// ClickHouseSecurity is TLS and the password file (TRAILKEEP_CLICKHOUSE_TLS*, _PASSWORD_FILE).
	ClickHouseSecurity clickhouse.Security
	// Topic of canonical events, keyed by tenant (the chain key).
	EventsTopic string `env:"TRAILKEEP_EVENTS_TOPIC, default=audit.events"`
	// OperatorTenant receives the access events of all-tenant admin tokens.
	OperatorTenant string `env:"TRAILKEEP_QUERY_OPERATOR_TENANT, default=trailkeep"`
	// Most rows a read-only SQL statement returns (truncated says when it cut).
	SQLMaxRows int `env:"TRAILKEEP_QUERY_SQL_MAX_ROWS, default=10000"`
	// max_execution_time of a read-only SQL statement, also enforced by a client deadline.
	SQLMaxTime time.Duration `env:"TRAILKEEP_QUERY_SQL_MAX_TIME, default=30s"`
	// max_memory_usage of a read-only SQL statement, in bytes.
	SQLMaxMemory int64 `env:"TRAILKEEP_QUERY_SQL_MAX_MEMORY, default=4000000000"`
	// Most GET /v1/follow calls one token may have waiting for new records at once;
	// one more is answered 429.
	MaxFollowersPerToken int `env:"TRAILKEEP_QUERY_MAX_FOLLOWERS_PER_TOKEN, default=4"`
	// Most GET /v1/follow calls waiting at once over all tokens (each asks
	// ClickHouse every second while it waits).
	MaxFollowers int `env:"TRAILKEEP_QUERY_MAX_FOLLOWERS, default=256"`
	// How long in-flight calls may finish on SIGTERM.
	ShutdownTimeout time.Duration `env:"TRAILKEEP_QUERY_SHUTDOWN_TIMEOUT, default=30s"`
	// debug, info, warn or error.
	LogLevel string `env:"TRAILKEEP_LOG_LEVEL, default=info"`
	// OpenStore, when set, replaces the ClickHouse connection: trailkeep dev passes its
	// in-process engine. Not read from the environment.
	OpenStore func(context.Context) (*clickhouse.Store, error)
}

// Run runs the query until ctx ends or it fails.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {

	data := []byte(cfg.Tokens)
	if cfg.TokensFile != "" {
		b, err := os.ReadFile(cfg.TokensFile)
		if err != nil {
			return fmt.Errorf("TRAILKEEP_QUERY_TOKENS_FILE: %w", err)
		}
		data = b
	}
	if len(data) == 0 {
		return errors.New("no tokens configured: set TRAILKEEP_QUERY_TOKENS_FILE or TRAILKEEP_QUERY_TOKENS (trailctl tokens query prints an entry)")
	}
	tokens, err := queryapi.ParseTokens(data)
	if err != nil {
		return err
	}
	if cfg.TokensFile != "" { // revocation and new tokens take effect without a restart
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		reload := make(chan struct{}, 1)
		go func() {
			for range hup {
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}()
		go tokens.WatchFile(ctx, cfg.TokensFile, 2*time.Second, reload, log)
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := openStore(octx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer store.Close()
	kopts, err := cfg.Kafka.Opts()
	if err != nil {
		return err
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: cfg.Brokers, Topic: cfg.EventsTopic, Opts: kopts})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	api, err := queryapi.New(queryapi.Options{Store: store, Tokens: tokens, Publisher: prod, OperatorTenant: cfg.OperatorTenant,
		SQL:                  clickhouse.SQLLimits{MaxRows: cfg.SQLMaxRows, MaxTime: cfg.SQLMaxTime, MaxMemory: cfg.SQLMaxMemory},
		MaxFollowersPerToken: cfg.MaxFollowersPerToken, MaxFollowers: cfg.MaxFollowers,
		Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	defer api.Close()
	mux := routes(api, prod, reg)
	if err := service.Serve(ctx, cfg.Addr, mux, cfg.ShutdownTimeout, log, "clickhouse", cfg.ClickHouseAddr, "database", cfg.ClickHouseDatabase, "access_log_topic", cfg.EventsTopic); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return prod.Close(cctx)
}

// routes serves the API under /v1/, the console under /ui/ (and / leads there),
// metrics and the health probes.
func routes(api *queryapi.Server, prod *kafka.Producer, reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api.Handler())
	mux.Handle(console.Prefix, console.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(console.Prefix, http.StatusFound))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	// Ready only when calls can be both audited and answered.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !prod.Ready() {
			http.Error(w, "kafka (access log) not reachable", http.StatusServiceUnavailable)
			return
		}
		// Every call is refused while its access event cannot be written; the topic
		// is ingest's to create.
		tctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := prod.TopicExists(tctx); err != nil {
			http.Error(w, "access log unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if err := api.Ready(); err != nil {
			http.Error(w, "clickhouse not answering: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// openStore connects to ClickHouse, or to the store cfg.OpenStore provides.
func openStore(ctx context.Context, cfg *Config) (*clickhouse.Store, error) {
	if cfg.OpenStore != nil {
		return cfg.OpenStore(ctx)
	}
	o := clickhouse.Options{Addr: cfg.ClickHouseAddr, Database: cfg.ClickHouseDatabase, Username: cfg.ClickHouseUser, Password: cfg.ClickHousePassword}
	if err := cfg.ClickHouseSecurity.Apply(&o); err != nil {
		return nil, err
	}
	return clickhouse.Open(ctx, o)
}
