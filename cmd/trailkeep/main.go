// Command trailkeep runs the whole audit pipeline in one process: `trailkeep dev`
// (see internal/dev) for trying it on one machine with nothing else installed.
// The distributed deployment runs the same components as separate binaries
// (cmd/ingest, cmd/chainer, cmd/query, cmd/exporter).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/internal/dev"
	"github.com/trailkeep/trailkeep/internal/version"
	"github.com/trailkeep/trailkeep/pkg/source/claudecode"
)

func main() {
	root := &cobra.Command{Use: "trailkeep", Short: "trailkeep's all-in-one process", Version: version.Get("trailkeep").Version,
		SilenceUsage: true, SilenceErrors: true}
	root.SetVersionTemplate(version.Get("trailkeep").String() + "\n")
	root.AddCommand(newDevCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "trailkeep:", err)
		os.Exit(1)
	}
}

func newDevCmd() *cobra.Command {
	var o dev.Options
	var level string
	var memLimit int64
	var pprofAddr string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run ingest, chainer, writer, query API and archive in one process (not for production)",
		Long: `Runs the whole pipeline on an embedded Kafka broker and an in-process ClickHouse
engine, with every byte under --data-dir (0700): the broker's log, the store, the
archive directory and the secrets. A restart continues every chain. The first start
downloads the ClickHouse engine (~130 MB) into the user cache, once.

Not for production: one broker with replication 1, no TLS, secrets in files, and an
archive directory without Object Lock.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lv}))
			// A soft limit for the Go heap, which otherwise grows to twice the live
			// data between collections; the ClickHouse engine's memory is its own.
			// GOMEMLIMIT, when set, wins.
			if _, set := os.LookupEnv("GOMEMLIMIT"); !set && memLimit > 0 {
				debug.SetMemoryLimit(memLimit << 20)
			}
			out := cmd.OutOrStdout()
			o.Ready = func(info dev.Info) {
				if err := banner(out, info); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "trailkeep dev: banner:", err)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if pprofAddr != "" {
				if err := servePprof(ctx, pprofAddr); err != nil {
					return err
				}
			}
			return dev.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "trailkeep-data", "where everything is kept (created 0700)")
	f.StringVar(&o.IngestAddr, "ingest-addr", "127.0.0.1:8080", "ingest's listen address")
	f.StringVar(&o.QueryAddr, "query-addr", "127.0.0.1:8081", "the query API's listen address")
	f.StringVar(&o.Tenant, "tenant", "acme", "tenant of the dev tokens")
	f.StringVar(&o.Deployment, "deployment", "dev", "the log's name in checkpoint origins")
	f.StringVar(&level, "log-level", "warn", "debug, info, warn or error")
	f.Int64Var(&memLimit, "go-memory-limit", 400, "soft limit of the Go heap in MiB (0: none; GOMEMLIMIT wins)")
	f.StringVar(&pprofAddr, "pprof-addr", "", "serve Go's profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (default off)")
	return cmd
}

// servePprof serves /debug/pprof/ on addr until ctx ends: profiling the whole
// pipeline under load is how its costs are found.
func servePprof(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); srv.Close() }()
	return nil
}

var bannerTmpl = template.Must(template.New("banner").Parse(`
trailkeep dev is running. NOT FOR PRODUCTION: one embedded broker, no TLS, secrets in
files, and an archive directory without Object Lock.

  ingest        {{.IngestURL}}   (Claude Code hooks, events, CloudEvents, OTLP/HTTP logs)
  query API     {{.QueryURL}}
  web console   {{.QueryURL}}/ui/   (sign in with the auditor token; pin the public key)
  data          {{.DataDir}}
  archive       {{.ArchiveDir}}
  public key    {{.PublicKey}}

  ingest token (hooks)   {{index .Tokens "HOOK_TOKEN"}}
  admin query token      {{index .Tokens "ADMIN_TOKEN"}}
  auditor query token    {{index .Tokens "AUDITOR_TOKEN"}}
  (all five tokens: {{.SecretsDir}}/tokens.env, 0600)

Claude Code: merge the "hooks" of {{.Settings}} into ~/.claude/settings.json
and start Claude Code with  export TRAILKEEP_TOKEN={{index .Tokens "HOOK_TOKEN"}}
One of its entries:
  {{.Example}}

Try:
  export TRAILKEEP_QUERY_TOKEN={{index .Tokens "ADMIN_TOKEN"}}
  trailctl search --api {{.QueryURL}} 'event:tool.*' --limit 5
  trailctl prove --api {{.QueryURL}} <event id from the search>
  trailctl verify --s3 file://{{.ArchiveDir}} --deployment {{.Deployment}} --pubkey {{.SecretsDir}}/checkpoints.pub

Ctrl-C stops it; starting it again with the same --data-dir continues every chain.
`))

// banner writes the Claude Code settings file and prints what to do next.
func banner(w io.Writer, info dev.Info) error {
	settings, err := claudecode.Settings(info.IngestURL, "TRAILKEEP_TOKEN", 5)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(info.DataDir, "claude-settings.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	hooks, _ := settings["hooks"].(map[string]any)
	example, _ := json.Marshal(map[string]any{"PostToolUse": hooks["PostToolUse"]})
	return bannerTmpl.Execute(w, struct {
		dev.Info
		Settings, Example string
	}{info, path, strings.TrimSpace(string(example))})
}
