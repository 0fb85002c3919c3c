package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

func newExportCmd() *cobra.Command {
	var (
		sf       storeFlags
		tenants  []string
		out      string
		format   string
		keyFile  string
		by       string
		quiet    bool
		overwrit bool
	)
	cmd := &cobra.Command{
		Use:   "export QUERY --out FILE --signing-key KEY",
		Short: "Export matching events to a file with a signed manifest",
		Long: `Streams every event matching QUERY (the search filter language; '*' or '' for
everything) to --out, partition by partition in seq order, in flat memory, and
writes FILE.manifest: a note signed with --signing-key that lists the query,
tenants, row count, the file's size and SHA-256, the earliest and latest
occurred_at, and per partition the first and last seq with the signed checkpoint
covering them. 'trailctl verify-export FILE.manifest' checks it.

Formats: ndjson (default: one chain record per line, verifiable), json (one array),
csv (flat columns plus the canonical event), ocsf (OCSF 1.1 API Activity, NDJSON).

  trailctl export 'tenant:acme after:2026-01-01 before:2026-04-01' --out q1.ndjson --signing-key exporter.key`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := strings.TrimSpace(strings.Join(args, " "))
			var f query.Filter
			if q != "" && q != "*" {
				var err error
				if f, err = query.Compile(q, time.Now()); err != nil {
					return usageError(err)
				}
			}
			if out == "" || keyFile == "" {
				return usageError(errors.New("--out and --signing-key are required (trailctl keys generate makes a key)"))
			}
			skey, err := readSigner(keyFile)
			if err != nil {
				return usageError(err)
			}
			signer, err := chain.NewSigner(skey)
			if err != nil {
				return usageError(fmt.Errorf("--signing-key: %w", err))
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if overwrit {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			file, err := os.OpenFile(out, flags, 0o644)
			if err != nil {
				return usageError(fmt.Errorf("%w (use --force to replace it)", err))
			}
			ok := false
			defer func() {
				if !ok { // never leave a partial file that looks complete
					file.Close()
					os.Remove(out)
				}
			}()
			ctx := cmd.Context()
			store, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			req := clickhouse.ExportRequest{Filter: f, Tenants: tenants}
			total, err := store.Count(ctx, req)
			if err != nil {
				return err
			}
			bar := progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionSetDescription("exporting"),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
				progressbar.OptionThrottle(250*time.Millisecond), progressbar.OptionSetVisibility(!quiet), progressbar.OptionClearOnFinish())
			tr := export.NewTracker(q, tenants, format, by, time.Now())
			bw := bufio.NewWriterSize(file, 1<<20)
			enc, err := export.NewEncoder(format, tr.Writer(bw))
			if err != nil {
				return usageError(err)
			}
			err = store.Export(ctx, req, func(rec chain.Record) error {
				bar.Add(1)
				return tr.Encode(enc, rec)
			})
			if err == nil {
				err = enc.Close()
			}
			if err == nil {
				err = bw.Flush()
			}
			if err == nil {
				err = file.Sync()
			}
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			bar.Finish()
			for _, p := range tr.PartitionRanges() {
				cp, found, err := store.CoveringCheckpoint(ctx, p.Partition, p.LastSeq)
				if err != nil {
					return err
				}
				if found {
					c, err := cp.Unverified()
					if err != nil {
						return err
					}
					p.Checkpoint, p.CheckpointSize = string(cp.Note), c.Size
				}
			}
			m := tr.Finish(filepath.Base(out))
			signed, err := export.Sign(m, signer)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out+".manifest", signed, 0o644); err != nil {
				return err
			}
			if err := file.Close(); err != nil {
				return err
			}
			ok = true
			fmt.Fprintf(cmd.OutOrStdout(), "exported %d events (%d partitions, %d bytes, sha256 %s) to %s\nsigned manifest: %s.manifest\n",
				m.Rows, len(m.Partitions), m.File.Bytes, m.File.SHA256, out, out)
			for _, p := range m.Partitions {
				if p.Checkpoint == "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "note: partition %d seq %d..%d is not covered by a signed checkpoint yet\n", p.Partition, p.FirstSeq, p.LastSeq)
				}
			}
			return nil
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&tenants, "tenant", nil, "only these tenants (default all)")
	fl.StringVar(&out, "out", "", "file to write (the manifest goes to FILE.manifest)")
	fl.StringVar(&format, "format", "ndjson", "ndjson, json, csv or ocsf")
	fl.StringVar(&keyFile, "signing-key", "", "file with the exporter's note signing key (trailctl keys generate)")
	fl.StringVar(&by, "by", defaultIdentity(), "who exports, recorded in the manifest")
	fl.BoolVar(&quiet, "quiet", false, "no progress bar")
	fl.BoolVar(&overwrit, "force", false, "replace an existing file")
	return cmd
}

func defaultIdentity() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

func newVerifyExportCmd() *cobra.Command {
	var exporterKeys, logKeys []string
	cmd := &cobra.Command{
		Use:   "verify-export MANIFEST",
		Short: "Check an export against its signed manifest (and its checkpoints against the log key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(exporterKeys) == 0 {
				return usageError(errors.New("--exporter-key is required"))
			}
			signed, err := os.ReadFile(args[0])
			if err != nil {
				return usageError(err)
			}
			verifiers, err := loadVerifiers(exporterKeys)
			if err != nil {
				return err
			}
			m, err := export.Open(signed, verifiers)
			if err != nil {
				return failed("%v", err)
			}
			data, err := os.Open(filepath.Join(filepath.Dir(args[0]), m.File.Name))
			if err != nil {
				return failed("the exported file: %v", err)
			}
			defer data.Close()
			if err := m.CheckFile(data); err != nil {
				return failed("%v", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "OK  %s: %d events, %d bytes, sha256 %s, exported by %s at %s\n    query %q tenants %v\n",
				m.File.Name, m.Rows, m.File.Bytes, m.File.SHA256, m.CreatedBy, m.CreatedAt, m.Query, m.Tenants)
			if len(logKeys) > 0 {
				lv, err := loadVerifiers(logKeys)
				if err != nil {
					return err
				}
				uncovered, err := m.CheckCheckpoints(lv)
				if err != nil {
					return failed("%v", err)
				}
				fmt.Fprintf(w, "OK  %d partition checkpoint(s) signed by the log key\n", len(m.Partitions)-len(uncovered))
				for _, p := range uncovered {
					fmt.Fprintf(w, "    partition %d: no covering checkpoint was signed at export time\n", p)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&exporterKeys, "exporter-key", nil, "file with the exporter's public key (repeatable)")
	cmd.Flags().StringArrayVar(&logKeys, "verifier-key", nil, "file with the log's checkpoint public key, to check the listed checkpoints")
	return cmd
}
