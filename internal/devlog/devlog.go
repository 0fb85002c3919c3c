// Package devlog is the embedded Kafka broker of a `trailkeep dev` data directory:
// opening its log (kfake, fsync per batch) under the directory's lock, and
// repairing what a killed run leaves in it (recover.go). trailkeep dev runs the
// pipeline on it; trailctl migrate reads it. It has no cgo, so trailctl stays a
// static binary.
package devlog

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Open starts the embedded broker on the data directory's log (on a free
// loopback port) and repairs what a killed run left in it.
func Open(ctx context.Context, dataDir string, logger *slog.Logger) (*kfake.Cluster, error) {
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(filepath.Join(dataDir, "kafka")), kfake.SyncWrites(),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }))
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := recoverBroker(ctx, broker, logger); err != nil {
		broker.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return broker, nil
}

// OpenLog serves the log of a stopped trailkeep dev's data directory on an
// embedded broker, for tools that read it (trailctl migrate). It holds the
// directory's lock, so trailkeep dev cannot start on it meanwhile; closeLog stops
// the broker and releases the lock.
func OpenLog(ctx context.Context, dataDir string, logger *slog.Logger) (broker *kfake.Cluster, closeLog func(), err error) {
	if _, err := os.Stat(filepath.Join(dataDir, "kafka")); err != nil {
		return nil, nil, fmt.Errorf("%s is not a trailkeep dev data directory (no kafka log): %w", dataDir, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	unlock, err := Lock(dataDir)
	if err != nil {
		return nil, nil, err
	}
	broker, err = Open(ctx, dataDir, logger)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return broker, func() { broker.Close(); unlock() }, nil
}

// Lock creates the data directory (0700) and holds an exclusive lock on it:
// two instances on one directory would interleave two brokers' logs. The returned
// function releases it.
func Lock(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is in use by another trailkeep dev (lock %s): %w", dir, f.Name(), err)
	}
	return func() { f.Close() }, nil
}
