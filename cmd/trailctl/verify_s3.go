package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/archive"
	"github.com/trailkeep/trailkeep/pkg/archive/localdir"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
)

// s3VerifyFlags select the archive `trailctl verify --s3` walks.
type s3VerifyFlags struct {
	url, endpoint, region string
	pathStyle             bool
	pubkeys               []string
}

func (s *s3VerifyFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.url, "s3", "", "verify the WORM archive at s3://bucket/prefix (or file:///dir/prefix, trailkeep dev's archive directory), offline (no Kafka, no ClickHouse); credentials from the AWS environment")
	f.StringVar(&s.endpoint, "s3-endpoint", "", "with --s3: an S3-compatible endpoint URL instead of AWS")
	f.StringVar(&s.region, "s3-region", "us-east-1", "with --s3: the bucket's region")
	f.BoolVar(&s.pathStyle, "s3-path-style", false, "with --s3: path-style bucket addressing (most S3-compatible servers)")
	f.StringArrayVar(&s.pubkeys, "pubkey", nil, "with --s3: file of trusted checkpoint public keys (same as --verifier-key)")
}

// parseS3URL splits s3://bucket/prefix; file:///dir is an archive directory
// (returned as dir, with no prefix).
func parseS3URL(raw string) (bucket, prefix, dir string, err error) {
	u, err := url.Parse(raw)
	if err == nil && u.Scheme == "file" && u.Host == "" && u.Path != "" {
		return "", "", u.Path, nil
	}
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", "", fmt.Errorf("--s3 %q: want s3://bucket/prefix or file:///dir", raw)
	}
	return u.Host, strings.Trim(u.Path, "/"), "", nil
}

// openArchive returns read access to the archive --s3 names.
func openArchive(cmd *cobra.Command, s *s3VerifyFlags, bucket, dir string) (archive.Bucket, error) {
	if dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("--s3: %w", err)
		}
		return localdir.New(dir)
	}
	cl, err := sinks3.NewClient(cmd.Context(), sinks3.ClientConfig{Endpoint: s.endpoint, Region: s.region, PathStyle: s.pathStyle, Retry: true})
	if err != nil {
		return nil, err
	}
	return sinks3.NewBucket(cl, bucket), nil
}

// verifyS3 walks the archive with only read access and the public keys: the digest
// chain from seq 0, every object's SHA-256, every record's link and leaf hash, every
// checkpoint's signature and root, and the daily manifests. Every problem is printed
// with the object it concerns; exit 1 if there is any.
func verifyS3(cmd *cobra.Command, s *s3VerifyFlags, sv *storeVerifyFlags, keys []string, onePartition *int32, output string) error {
	bucket, prefix, dir, err := parseS3URL(s.url)
	if err != nil {
		return usageError(err)
	}
	if sv.deployment == "" {
		return usageError(fmt.Errorf("--s3 needs --deployment: the expected checkpoint origin is <deployment>/<topic>/<partition>"))
	}
	verifiers, err := loadVerifiers(append(append([]string(nil), keys...), s.pubkeys...))
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	objects, err := openArchive(cmd, s, bucket, dir)
	if err != nil {
		return err
	}
	opts := archive.VerifyOptions{Deployment: sv.deployment, Topic: sv.topic, Verifiers: verifiers}
	if onePartition != nil {
		opts.Partitions = []int32{*onePartition}
	}
	start := time.Now()
	rep, err := archive.Verify(ctx, objects, archive.Layout{Prefix: prefix}, opts)
	if err != nil {
		return fmt.Errorf("reading the archive: %w", err)
	}
	w := cmd.OutOrStdout()
	if output == "json" {
		b, _ := json.Marshal(map[string]any{"ok": len(rep.Problems) == 0, "report": rep})
		fmt.Fprintln(w, string(b))
	} else {
		for _, p := range rep.Partitions {
			fmt.Fprintf(w, "partition %d  records %d  segments %d  objects %d  checkpoints %d  manifests %d  anchored %d  unanchored %d\n",
				p.Partition, p.Records, p.Segments, p.Objects, p.Checkpoints, p.Manifests, p.AnchoredSize, p.Unanchored)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "PROBLEM  %s\n", p)
		}
		if len(rep.Problems) == 0 {
			fmt.Fprintf(w, "OK  %s verified offline in %s\n", s.url, time.Since(start).Round(time.Millisecond))
		}
	}
	if len(rep.Problems) > 0 {
		return failed("archive verification FAILED: %d problem(s)", len(rep.Problems))
	}
	return nil
}
