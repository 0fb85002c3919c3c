package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/bearer"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/ingest"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
)

// The files `trailctl init` writes into --dir. The services read them through their
// *_FILE variables (docker-compose.yml mounts the directory into each).
const (
	initSignerKey    = "checkpoints.key"    // TRAILKEEP_SIGNER_KEY_FILE
	initSignerPub    = "checkpoints.pub"    // trailctl verify --verifier-key
	initIPKey        = "ip.key"             // TRAILKEEP_INGEST_IP_KEY_FILE
	initIngestTokens = "ingest-tokens.json" // TRAILKEEP_INGEST_TOKENS_FILE
	initQueryTokens  = "query-tokens.json"  // TRAILKEEP_QUERY_TOKENS_FILE
	initTokensEnv    = "tokens.env"         // the secrets, for the person trying it
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
			if err := initSecrets(f); err != nil {
				return err
			}
			if f.s3Bucket != "" {
				ctx, cancel := context.WithTimeout(cmd.Context(), f.wait)
				defer cancel()
				if err := initBucket(ctx, f); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "secrets in %s (tokens in %s)\n", f.dir, filepath.Join(f.dir, initTokensEnv))
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

// initSecrets writes the missing secret files. The token files and tokens.env are
// one unit: they are written together or not at all, so hashes and secrets match.
func initSecrets(f initFlags) error {
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return err
	}
	if !exists(filepath.Join(f.dir, initSignerKey)) {
		skey, vkey, err := chain.GenerateKey("trailkeep-checkpoints")
		if err != nil {
			return err
		}
		if err := writeSecret(f.dir, initSignerPub, vkey+"\n", 0o644); err != nil {
			return err
		}
		if err := writeSecret(f.dir, initSignerKey, skey+"\n", 0o600); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(f.dir, initIPKey)) {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return err
		}
		if err := writeSecret(f.dir, initIPKey, base64.StdEncoding.EncodeToString(k)+"\n", 0o600); err != nil {
			return err
		}
	}
	if exists(filepath.Join(f.dir, initTokensEnv)) {
		return nil
	}
	return initTokens(f)
}

// initTokens creates the write and read tokens, validated as the services will.
func initTokens(f initFlags) error {
	secrets := map[string]string{}
	var ing []ingest.Token
	for _, w := range []struct{ env, name, source, scope string }{
		{"HOOK_TOKEN", "dev-hooks", "claude_code", ingest.ScopeHooks},
		{"OTEL_TOKEN", "dev-telemetry", "claude_code", "logs:write"},
		{"REGISTRY_TOKEN", "dev-registry", "registry", "events:write,cloudevents:write"},
	} {
		secret, sum, err := bearer.New()
		if err != nil {
			return err
		}
		t := ingest.Token{Name: w.name, SHA256: sum, Tenant: f.tenant, Source: w.source, Scopes: strings.Split(w.scope, ",")}
		if w.source == "claude_code" {
			t.Actor = map[string]any{"type": "user", "id": f.actor, "email": f.actor}
		}
		ing, secrets[w.env] = append(ing, t), secret
	}
	var qry []queryapi.Token
	for _, r := range []struct {
		env, name string
		role      queryapi.Role
		tenant    string
	}{
		{"AUDITOR_TOKEN", "dev-auditor", queryapi.RoleAuditor, f.tenant},
		{"ADMIN_TOKEN", "dev-admin", queryapi.RoleAdmin, "*"},
	} {
		secret, sum, err := bearer.New()
		if err != nil {
			return err
		}
		qry, secrets[r.env] = append(qry, queryapi.Token{Name: r.name, SHA256: sum, Role: r.role, Tenants: []string{r.tenant}}), secret
	}
	ib, _ := json.MarshalIndent(map[string]any{"tokens": ing}, "", "  ")
	if _, err := ingest.ParseTokens(ib); err != nil {
		return fmt.Errorf("ingest tokens: %w", err)
	}
	qb, _ := json.MarshalIndent(map[string]any{"tokens": qry}, "", "  ")
	if _, err := queryapi.ParseTokens(qb); err != nil {
		return fmt.Errorf("query tokens: %w", err)
	}
	var env []string
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	// tokens.env last: its presence means the unit is complete.
	for _, w := range []struct {
		name, data string
	}{{initIngestTokens, string(ib) + "\n"}, {initQueryTokens, string(qb) + "\n"}, {initTokensEnv, strings.Join(env, "\n") + "\n"}} {
		if err := writeSecret(f.dir, w.name, w.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writeSecret writes name in dir atomically (temporary file, then rename).
func writeSecret(dir, name, data string, mode os.FileMode) error {
	tmp, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

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
