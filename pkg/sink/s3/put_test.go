package s3_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/trailkeep/trailkeep/internal/s3test"
	"github.com/trailkeep/trailkeep/pkg/sink"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
)

// A retried upload that finds its key taken (412) succeeds when the stored bytes are
// the same, and stops the sink, leaving the locked object alone, when they differ.
func TestCreateOnlyPutAcceptsIdenticalRetryAndRefusesConflict(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.Bucket(t, true)
	for _, mode := range []string{sinks3.ChecksumSHA256, sinks3.ChecksumMD5, sinks3.ChecksumCRC32} {
		cl, err := sinks3.NewClient(context.Background(), srv.ClientConfig(mode))
		if err != nil {
			t.Fatal(err)
		}
		s, err := sinks3.New(sinks3.Config{Client: cl, Bucket: bucket, Mode: types.ObjectLockModeCompliance, Retention: time.Hour, Checksum: mode})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		key := "put-test/" + mode
		if err := s.Put(ctx, key, []byte("same bytes")); err != nil {
			t.Fatalf("%s: first put: %v", mode, err)
		}
		if err := s.Put(ctx, key, []byte("same bytes")); err != nil {
			t.Fatalf("%s: identical retry: %v", mode, err)
		}
		err = s.Put(ctx, key, []byte("other bytes"))
		var se *sink.Error
		if !errors.As(err, &se) || se.Kind != sink.Fatal || !strings.Contains(err.Error(), "archive conflict") {
			t.Fatalf("%s: conflicting put: %v, want a fatal archive conflict", mode, err)
		}
		if got, err := sinks3.NewBucket(cl, bucket).Get(ctx, key); err != nil || string(got) != "same bytes" {
			t.Fatalf("%s: stored object now %q (%v)", mode, got, err)
		}
	}
}
