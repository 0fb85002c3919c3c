// Command chainer runs trailkeep's chainer: one transactional writer per partition of
// audit.events producing audit.chained, audit.checkpoints and audit.deadletter (see
// package chainer). Configuration comes from the environment; see Config.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sethvargo/go-envconfig"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/chainer"
)

// Config is read from the environment.
type Config struct {
	Brokers []string `env:"TRAILKEEP_KAFKA_BROKERS, default=127.0.0.1:19092"`
	Group   string   `env:"TRAILKEEP_CHAINER_GROUP, default=trailkeep-chainer"`
	// TransactionalID must be stable per instance (a StatefulSet pod name); default
	// the host name.
	TransactionalID string `env:"TRAILKEEP_CHAINER_TRANSACTIONAL_ID"`
	// Deployment is the checkpoint origin prefix; never change it for a running log.
	Deployment string `env:"TRAILKEEP_DEPLOYMENT, required"`
	InputTopic string `env:"TRAILKEEP_EVENTS_TOPIC, default=audit.events"`
	Chained    string `env:"TRAILKEEP_CHAINED_TOPIC, default=audit.chained"`
	Checkpoint string `env:"TRAILKEEP_CHECKPOINTS_TOPIC, default=audit.checkpoints"`
	DeadLetter string `env:"TRAILKEEP_DEADLETTER_TOPIC, default=audit.deadletter"`
	// Replication of output topics created at start-up.
	Replication int16 `env:"TRAILKEEP_CHAINER_REPLICATION, default=1"`
	// SignerKey(File) is the note signer key ("PRIVATE+KEY+name+hash+key", as
	// written by `trailctl keys generate`).
	SignerKey     string `env:"TRAILKEEP_SIGNER_KEY"`
	SignerKeyFile string `env:"TRAILKEEP_SIGNER_KEY_FILE"`
	// VerifierKeys lists older public keys still accepted when restoring (key
	// rotation); the signer's own public key is always included.
	VerifierKeys       []string      `env:"TRAILKEEP_VERIFIER_KEYS, delimiter=;"`
	CheckpointEvery    int           `env:"TRAILKEEP_CHECKPOINT_EVERY, default=1000"`
	CheckpointInterval time.Duration `env:"TRAILKEEP_CHECKPOINT_INTERVAL, default=5s"`
	MaxPollRecords     int           `env:"TRAILKEEP_CHAINER_MAX_POLL_RECORDS, default=10000"`
	LogLevel           string        `env:"TRAILKEEP_LOG_LEVEL, default=info"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chainer:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var cfg Config
	if err := envconfig.Process(ctx, &cfg); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("TRAILKEEP_LOG_LEVEL: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if cfg.TransactionalID == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("TRAILKEEP_CHAINER_TRANSACTIONAL_ID unset and no host name: %w", err)
		}
		cfg.TransactionalID = "trailkeep-chainer-" + h
	}
	signer, verifiers, err := keys(cfg)
	if err != nil {
		return err
	}
	c, err := chainer.New(chainer.Config{
		Brokers: cfg.Brokers, Group: cfg.Group, TransactionalID: cfg.TransactionalID, Deployment: cfg.Deployment,
		InputTopic: cfg.InputTopic, ChainedTopic: cfg.Chained, CheckpointTopic: cfg.Checkpoint, DeadLetterTopic: cfg.DeadLetter,
		Replication: cfg.Replication, Signer: signer, Verifiers: verifiers,
		CheckpointEvery: cfg.CheckpointEvery, CheckpointInterval: cfg.CheckpointInterval, MaxPollRecords: cfg.MaxPollRecords,
		Logger: log,
	})
	if err != nil {
		return err
	}
	defer c.Close()
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
	log.Info("chaining", "transactional_id", cfg.TransactionalID, "signer", signer.Name(), "input", cfg.InputTopic)
	if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
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
