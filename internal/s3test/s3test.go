// Package s3test starts the real S3-compatible server with versioning and Object Lock
// (Versity Gateway, scripts/versitygw.sh) for integration tests and gives each test a
// fresh bucket created with Object Lock enabled. A server that cannot start fails the
// test; it is never skipped.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/trailkeep/trailkeep/internal/integration"
	"github.com/trailkeep/trailkeep/internal/repo"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
)

// Server is the shared local gateway.
type Server struct {
	Endpoint             string
	AccessKey, SecretKey string
}

// Shared starts (or reuses) the gateway on 127.0.0.1:17070; scripts/versitygw.sh stop
// ends it.
func Shared(t testing.TB) *Server {
	t.Helper()
	integration.Require(t, "the S3 gateway (scripts/versitygw.sh)")
	root, err := repo.Root()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "versitygw.sh"), "start")
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("s3test: scripts/versitygw.sh start: %v\n%s", err, out)
	}
	return &Server{Endpoint: "http://127.0.0.1:17070", AccessKey: "trailkeep", SecretKey: "trailkeep-secret"}
}

// ClientConfig returns the client configuration for the server.
func (s *Server) ClientConfig(checksum string) sinks3.ClientConfig {
	return sinks3.ClientConfig{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, PathStyle: true, Checksum: checksum}
}

// Client returns a client with the SDK's retries on.
func (s *Server) Client(t testing.TB, checksum string) *s3.Client {
	t.Helper()
	cc := s.ClientConfig(checksum)
	cc.Retry = true
	cl, err := sinks3.NewClient(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// Bucket creates a fresh bucket with Object Lock (and so versioning) enabled.
func (s *Server) Bucket(t testing.TB, objectLock bool) string {
	t.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "trailkeep-test-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.Client(t, "").CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), ObjectLockEnabledForBucket: aws.Bool(objectLock)})
	if err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	return name
}
