package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/trailkeep/trailkeep/internal/version"
)

// usage is the services' whole command line: everything else is environment.
const usage = "%s is configured from the environment (see CONFIGURATION.md); its only arguments are --version and --probe URL"

// HandleArgs answers the arguments a service accepts, for its main: --version prints
// the build identity; --probe URL GETs URL and exits 0 on a 2xx (the container
// health check: the images have no shell and no curl). It returns only when there
// are no arguments; any other argument exits 2, since a service that silently ignored
// "--adr" would start on defaults.
func HandleArgs(binary string) {
	code, done := handleArgs(binary, os.Args[1:], os.Stdout, os.Stderr)
	if done {
		os.Exit(code)
	}
}

func handleArgs(binary string, args []string, stdout, stderr io.Writer) (code int, done bool) {
	switch {
	case len(args) == 0:
		return 0, false
	case len(args) == 1 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version"):
		fmt.Fprintln(stdout, version.Get(binary))
		return 0, true
	case len(args) == 2 && args[0] == "--probe":
		if err := probe(args[1], 5*time.Second); err != nil {
			fmt.Fprintf(stderr, "%s: probe: %v\n", binary, err)
			return 1, true
		}
		return 0, true
	}
	fmt.Fprintf(stderr, "%s: unexpected arguments %q: "+usage+"\n", binary, args, binary)
	return 2, true
}

// probe GETs url and wants a 2xx within timeout.
func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s %s", url, resp.Status, body)
	}
	return nil
}

// Main is a service's whole main: the arguments (HandleArgs), SIGINT and SIGTERM
// ending ctx, the configuration read from the environment into a C, the logger at
// the level level(cfg) points to, then run. An error exits 1 as "binary: error".
func Main[C any](binary string, level func(*C) *string, run func(ctx context.Context, cfg *C, log *slog.Logger) error) {
	HandleArgs(binary)
	if err := runMain(level, run); err != nil {
		fmt.Fprintln(os.Stderr, binary+":", err)
		os.Exit(1)
	}
}

func runMain[C any](level func(*C) *string, run func(ctx context.Context, cfg *C, log *slog.Logger) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var cfg C
	log, err := Configure(ctx, &cfg, level(&cfg))
	if err != nil {
		return err
	}
	return run(ctx, &cfg, log)
}
