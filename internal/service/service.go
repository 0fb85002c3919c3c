// Package service is the start-up and shutdown the trailkeep binaries share: the
// JSON logger and an HTTP server that drains in-flight requests on SIGTERM.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Configure reads the binary's configuration from the environment into cfg (a
// pointer to a struct with go-envconfig tags) and returns the logger at the level
// the configuration names (*level, a field of cfg).
func Configure(ctx context.Context, cfg any, level *string) (*slog.Logger, error) {
	if err := envconfig.Process(ctx, cfg); err != nil {
		return nil, fmt.Errorf("configuration: %w", namedError(cfg, err))
	}
	return Logger(*level)
}

// namedError rewrites go-envconfig's "GoField: reason" (nested: "Kafka: TLS: reason")
// into "TRAILKEEP_VAR: reason": the operator sets variables and has never seen the Go
// field names.
func namedError(cfg any, err error) error {
	names := map[string]string{}
	envNames(reflect.TypeOf(cfg), "", names)
	parts := strings.Split(err.Error(), ": ")
	for k := 1; k < len(parts); k++ {
		if env, ok := names[strings.Join(parts[:k], ".")]; ok {
			return fmt.Errorf("%s: %s", env, strings.Join(parts[k:], ": "))
		}
	}
	return err
}

// envNames maps the path of every field of t (a struct or a pointer to one) with an
// env tag, e.g. "Kafka.TLS", to its variable, descending into nested structs.
func envNames(t reflect.Type, prefix string, out map[string]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, ok := f.Tag.Lookup("env"); ok {
			name, _, _ := strings.Cut(tag, ",")
			out[prefix+f.Name] = strings.TrimSpace(name)
			continue
		}
		envNames(f.Type, prefix+f.Name+".", out)
	}
}

// Logger returns the JSON logger at level, the value of TRAILKEEP_LOG_LEVEL.
func Logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("TRAILKEEP_LOG_LEVEL: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// Serve serves h on addr until ctx ends, then stops accepting and lets in-flight
// requests finish for up to drain. There is no write timeout: exports stream for as
// long as they need, and ingest answers only after Kafka acknowledged.
func Serve(ctx context.Context, addr string, h http.Handler, drain time.Duration, log *slog.Logger, attrs ...any) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Info("listening", append([]any{"addr", ln.Addr().String()}, attrs...)...)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down; draining in-flight requests", "timeout", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("drain incomplete", "err", err)
	}
	return nil
}
