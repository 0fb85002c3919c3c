package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/export"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// exportOptions are the flags of trailctl export.
type exportOptions struct {
	sf                   storeFlags
	api                  apiFlags
	tenants              []string
	out, format, keyFile string
	by                   string
	quiet, force         bool
}

func newExportCmd() *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export QUERY --out FILE --signing-key KEY",
		Short: "Export matching events to a file with a signed manifest",
		Long: `Streams every event matching QUERY (the search filter language; '*' or '' for
everything) to --out, partition by partition in seq order, in flat memory, and
writes FILE.manifest: a note signed with --signing-key that lists the query,
tenants, row count, the file's size and SHA-256, the earliest and latest
occurred_at, and per partition the first and last seq with the signed checkpoint
covering them. 'trailctl verify-export FILE.manifest' checks it.

With --api URL the records come through the query API instead (scoped to the
token's tenants and audited there; the stream is checked against the API's row
count and SHA-256 trailers), and a partition's latest checkpoint is attached when
it covers the export.

Formats: ndjson (default: one chain record per line, verifiable), json (one array),
csv (flat columns plus the canonical event), ocsf (OCSF 1.1 API Activity, NDJSON).

  trailctl export 'tenant:acme after:2026-01-01 before:2026-04-01' --out q1.ndjson --signing-key exporter.key`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, strings.TrimSpace(strings.Join(args, " ")))
		},
	}
	o.sf.register(cmd)
	o.api.register(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&o.tenants, "tenant", nil, "only these tenants (default all)")
	fl.StringVar(&o.out, "out", "", "file to write (the manifest goes to FILE.manifest)")
	fl.StringVar(&o.format, "format", "ndjson", "ndjson, json, csv or ocsf")
	fl.StringVar(&o.keyFile, "signing-key", "", "file with the exporter's note signing key (trailctl keys generate)")
	fl.StringVar(&o.by, "by", defaultIdentity(), "who exports, recorded in the manifest")
	fl.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fl.BoolVar(&o.force, "force", false, "replace an existing file")
	return cmd
}

// run exports the events matching q: validate, stream to the file, attach the
// covering checkpoints, sign the manifest. A failed export leaves no file.
func (o *exportOptions) run(cmd *cobra.Command, q string) error {
	f, signer, err := o.validate(q)
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if o.force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	file, err := os.OpenFile(o.out, flags, 0o644)
	if err != nil {
		return usageError(fmt.Errorf("%w (use --force to replace it)", err))
	}
	ok := false
	defer func() {
		if !ok { // never leave a partial file that looks complete
			file.Close()
			os.Remove(o.out)
		}
	}()
	ctx := cmd.Context()
	src, closeSrc, err := o.source(ctx, f, q)
	if err != nil {
		return err
	}
	defer closeSrc()
	tr, err := o.stream(cmd, src, q, file)
	if err != nil {
		return err
	}
	if err := src.attachCheckpoints(ctx, tr); err != nil {
		return err
	}
	m := tr.Finish(filepath.Base(o.out))
	signed, err := export.Sign(m, signer)
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out+".manifest", signed, 0o644); err != nil {
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	ok = true
	fmt.Fprintf(cmd.OutOrStdout(), "exported %d events (%d partitions, %d bytes, sha256 %s) to %s\nsigned manifest: %s.manifest\n",
		m.Rows, len(m.Partitions), m.File.Bytes, m.File.SHA256, o.out, o.out)
	for _, p := range m.Partitions {
		if p.Checkpoint == "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: partition %d seq %d..%d is not covered by a signed checkpoint yet\n", p.Partition, p.FirstSeq, p.LastSeq)
		}
	}
	return nil
}

// validate compiles the query and reads the signing key.
func (o *exportOptions) validate(q string) (query.Filter, note.Signer, error) {
	var f query.Filter
	if q != "" && q != "*" {
		var err error
		if f, err = query.Compile(q, time.Now()); err != nil {
			return f, nil, usageError(err)
		}
	}
	if o.out == "" || o.keyFile == "" {
		return f, nil, usageError(errors.New("--out and --signing-key are required (trailctl keys generate makes a key)"))
	}
	skey, err := readSigner(o.keyFile)
	if err != nil {
		return f, nil, usageError(err)
	}
	signer, err := chain.NewSigner(skey)
	if err != nil {
		return f, nil, usageError(fmt.Errorf("--signing-key: %w", err))
	}
	return f, signer, nil
}

// stream writes every matching record to file (synced) and returns the tracker
// that holds the manifest's figures.
func (o *exportOptions) stream(cmd *cobra.Command, src exportSource, q string, file *os.File) (*export.Tracker, error) {
	ctx := cmd.Context()
	total, err := src.count(ctx)
	if err != nil {
		return nil, err
	}
	bar := progressbar.NewOptions64(total, progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionSetDescription("exporting"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
		progressbar.OptionThrottle(250*time.Millisecond), progressbar.OptionSetVisibility(!o.quiet), progressbar.OptionClearOnFinish())
	tr := export.NewTracker(q, o.tenants, o.format, o.by, time.Now())
	bw := bufio.NewWriterSize(file, 1<<20)
	enc, err := export.NewEncoder(o.format, tr.Writer(bw))
	if err != nil {
		return nil, usageError(err)
	}
	err = src.export(ctx, func(rec chain.Record) error {
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
		return nil, fmt.Errorf("export: %w", err)
	}
	bar.Finish()
	return tr, nil
}

// exportSource is where an export's records come from: ClickHouse, or the query
// API with --api (scoped to the token and audited there).
type exportSource interface {
	count(ctx context.Context) (int64, error) // -1: not known up front
	export(ctx context.Context, fn func(chain.Record) error) error
	attachCheckpoints(ctx context.Context, tr *export.Tracker) error
}

// source opens the export's source; closeSrc releases it.
func (o *exportOptions) source(ctx context.Context, f query.Filter, q string) (src exportSource, closeSrc func(), err error) {
	if o.api.url != "" {
		cl, err := o.api.client()
		if err != nil {
			return nil, nil, err
		}
		if q == "*" {
			q = ""
		}
		return &apiExport{cl: cl, q: q, tenants: o.tenants}, func() {}, nil
	}
	store, err := o.sf.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &storeExport{store: store, req: clickhouse.ExportRequest{Filter: f, Tenants: o.tenants}}, func() { store.Close() }, nil
}

type storeExport struct {
	store *clickhouse.Store
	req   clickhouse.ExportRequest
}

func (s *storeExport) count(ctx context.Context) (int64, error) {
	n, err := s.store.Count(ctx, s.req)
	return int64(n), err
}

func (s *storeExport) export(ctx context.Context, fn func(chain.Record) error) error {
	return s.store.Export(ctx, s.req, fn)
}

type apiExport struct {
	cl      *queryapi.Client
	q       string
	tenants []string
}

func (a *apiExport) count(context.Context) (int64, error) { return -1, nil }

func (a *apiExport) export(ctx context.Context, fn func(chain.Record) error) error {
	if err := a.cl.Export(ctx, a.q, a.tenants, fn); err != nil {
		return apiFailure(err)
	}
	return nil
}

// attachCheckpoints records, per exported partition, its latest checkpoint when
// that covers the last exported seq (the API serves only the latest).
func (a *apiExport) attachCheckpoints(ctx context.Context, tr *export.Tracker) error {
	cps, err := a.cl.LatestCheckpoints(ctx)
	if err != nil {
		return apiFailure(err)
	}
	latest := map[int32]queryapi.Checkpoint{}
	for _, cp := range cps {
		latest[cp.Partition] = cp
	}
	for _, p := range tr.PartitionRanges() {
		if cp, ok := latest[p.Partition]; ok && cp.TreeSize > p.LastSeq {
			p.Checkpoint, p.CheckpointSize = cp.Note, cp.TreeSize
		}
	}
	return nil
}

// attachCheckpoints records, per exported partition, the signed checkpoint that
// covers its last exported seq (none yet: left empty, and reported).
func (s *storeExport) attachCheckpoints(ctx context.Context, tr *export.Tracker) error {
	for _, p := range tr.PartitionRanges() {
		cp, found, err := s.store.CoveringCheckpoint(ctx, p.Partition, p.LastSeq)
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
	return nil
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
