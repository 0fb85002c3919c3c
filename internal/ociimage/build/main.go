// Command build writes trailkeep's container images as an OCI image layout from
// static binaries already built (`make image-layout` builds them and runs this), with
// no container engine.
//
//	go run ./internal/ociimage/build -bin bin/static -out bin/oci \
//	    -version v0.3.0 -commit $(git rev-parse HEAD) -created 2026-12-02T18:00:00Z
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/trailkeep/trailkeep/internal/ociimage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		binDir  = flag.String("bin", "bin/static", "directory of the static binaries")
		out     = flag.String("out", "bin/oci", "OCI image layout to write (replaced)")
		names   = flag.String("binaries", "ingest,chainer,query,exporter,trailctl", "images to build, one per binary")
		version = flag.String("version", "dev", "org.opencontainers.image.version")
		commit  = flag.String("commit", "unknown", "org.opencontainers.image.revision")
		created = flag.String("created", "", "RFC 3339 build time (file times and labels); default SOURCE_DATE_EPOCH, else now")
		source  = flag.String("source", "https://github.com/trailkeep/trailkeep", "org.opencontainers.image.source")
		root    = flag.String("root", ".", "repository root (deploy/image, CA bundle)")
		arch    = flag.String("arch", runtime.GOARCH, "GOARCH of the binaries")
	)
	flag.Parse()
	when, err := buildTime(*created)
	if err != nil {
		return err
	}
	var bins []ociimage.Binary
	for _, n := range strings.Split(*names, ",") {
		bins = append(bins, ociimage.Binary{Name: n, Path: filepath.Join(*binDir, n)})
	}
	idx, err := ociimage.Build(bins, ociimage.Options{
		Version: *version, Commit: *commit, Created: when, Source: *source, Arch: *arch,
		Passwd:  filepath.Join(*root, "deploy/image/passwd"),
		Group:   filepath.Join(*root, "deploy/image/group"),
		CACerts: "/etc/ssl/certs/ca-certificates.crt",
	})
	if err != nil {
		return err
	}
	if err := os.RemoveAll(*out); err != nil {
		return err
	}
	if err := ociimage.WriteLayout(*out, idx); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (index %s): %s\n", *out, d, *names)
	return nil
}

// buildTime is -created, else SOURCE_DATE_EPOCH, else now (not reproducible).
func buildTime(created string) (time.Time, error) {
	if created != "" {
		t, err := time.Parse(time.RFC3339, created)
		if err != nil {
			return time.Time{}, fmt.Errorf("-created: %w", err)
		}
		return t.UTC(), nil
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Now().UTC().Truncate(time.Second), nil
}
