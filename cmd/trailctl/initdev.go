package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/internal/trialsecrets"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
)

// initFlags configure `trailctl init`.
type initFlags struct {
	dir, tenant, actor             string
	s3Endpoint, s3Bucket, s3Region string
	s3PathStyle                    bool
	wait                           time.Duration
}

func newInitCmd() *cobra.Command {
	var f initFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a trial deployment's secrets once (signing key, IP key, tokens) and its Object Lock bucket",
		Long: `Writes into --dir, only what is missing (a second run changes nothing):

  checkpoints.key / .pub   the checkpoint signing key (0600) and its public key
  ip.key                   the ingest's client-IP HMAC key (0600)
  ingest-tokens.json       hashes of the hook, OpenTelemetry and registry write tokens
  query-tokens.json        hashes of an auditor token (--tenant) and an admin token ('*')
  tokens.env               the five secrets themselves (0600), shown nowhere else

With --s3-bucket it also creates the bucket with Object Lock enabled (retrying until
the endpoint answers, up to --wait); credentials come from the AWS environment.
This is the one-shot init of docker-compose.yml; production secrets come from your
secret store (see the Helm chart's existingSecret values).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := trialsecrets.Init(f.dir, f.tenant, f.actor); err != nil {
				return err
			}
			if f.s3Bucket != "" {
				ctx, cancel := context.WithTimeout(cmd.Context(), f.wait)
				defer cancel()
				if err := initBucket(ctx, f); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "secrets in %s (tokens in %s)\n", f.dir, filepath.Join(f.dir, trialsecrets.TokensEnv))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", "", "directory for the secrets (created 0700; required)")
	fl.StringVar(&f.tenant, "tenant", "acme", "tenant of the write tokens and the auditor token")
	fl.StringVar(&f.actor, "actor", "dev@acme.example", "person behind the hook and OpenTelemetry tokens")
	fl.StringVar(&f.s3Endpoint, "s3-endpoint", "", "S3-compatible endpoint URL (default AWS)")
	fl.StringVar(&f.s3Bucket, "s3-bucket", "", "create this bucket with Object Lock enabled")
	fl.StringVar(&f.s3Region, "s3-region", "us-east-1", "the bucket's region")
	fl.BoolVar(&f.s3PathStyle, "s3-path-style", false, "path-style bucket addressing (most S3-compatible servers)")
	fl.DurationVar(&f.wait, "wait", time.Minute, "how long to retry the S3 endpoint")
	cmd.MarkFlagRequired("dir")
	return cmd
}

// initBucket creates the Object Lock bucket, retrying while the endpoint is not up.
// A bucket that exists is accepted only if Object Lock is enabled on it: archiving
// into an unlocked bucket would silently drop the WORM guarantee.
func initBucket(ctx context.Context, f initFlags) error {
	cl, err := sinks3.NewClient(ctx, sinks3.ClientConfig{Endpoint: f.s3Endpoint, Region: f.s3Region, PathStyle: f.s3PathStyle, Retry: true})
	if err != nil {
		return err
	}
	for {
		_, err = cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(f.s3Bucket), ObjectLockEnabledForBucket: aws.Bool(true)})
		var ae smithy.APIError
		if err == nil || (errors.As(err, &ae) && (ae.ErrorCode() == "BucketAlreadyOwnedByYou" || ae.ErrorCode() == "BucketAlreadyExists")) {
			break
		}
		if errors.As(err, &ae) { // the server answered: retrying will not help
			return fmt.Errorf("create bucket %s: %w", f.s3Bucket, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create bucket %s: endpoint not answering after %s: %w", f.s3Bucket, f.wait, err)
		case <-time.After(time.Second):
		}
	}
	lock, err := cl.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(f.s3Bucket)})
	var ae smithy.APIError
	unlocked := errors.As(err, &ae) && ae.ErrorCode() == "ObjectLockConfigurationNotFoundError"
	if err != nil && !unlocked {
		return fmt.Errorf("bucket %s: reading its Object Lock configuration: %w", f.s3Bucket, err)
	}
	if unlocked || lock.ObjectLockConfiguration == nil || lock.ObjectLockConfiguration.ObjectLockEnabled != "Enabled" {
		return failed("bucket %s exists without Object Lock: the archive needs a bucket created with Object Lock enabled", f.s3Bucket)
	}
	return nil
}
