package s3_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/trailkeep/trailkeep/internal/s3test"
	"github.com/trailkeep/trailkeep/internal/sinktest"
	"github.com/trailkeep/trailkeep/pkg/archive"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/sink"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
)

type env struct {
	srv    *s3test.Server
	cl     *s3.Client
	bucket string
	feed   *sinktest.Feed
	opts   archive.VerifyOptions
}

func setup(t *testing.T, partitions int32, checksum string) *env {
	t.Helper()
	srv := s3test.Shared(t)
	f := sinktest.New(t, partitions, 50)
	f.Step = 200 * time.Millisecond // 23:59:00 onwards: the archive crosses a day
	vs, err := chain.NewVerifiers(f.Log.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, cl: srv.Client(t, checksum), bucket: srv.Bucket(t, true), feed: f,
		opts: archive.VerifyOptions{Deployment: f.Log.Deployment, Topic: f.Chained, Verifiers: vs}}
}

func (e *env) run(t *testing.T, group, checksum string) (*sink.Runner, context.CancelFunc, <-chan error) {
	t.Helper()
	cl, err := sinks3.NewClient(context.Background(), e.srv.ClientConfig(checksum))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sinks3.New(sinks3.Config{Client: cl, Bucket: e.bucket, Prefix: "audit", Mode: types.ObjectLockModeCompliance,
		Retention: 24 * time.Hour, Checksum: checksum})
	if err != nil {
		t.Fatal(err)
	}
	r, done, cancel := e.feed.Run(t, s, sink.Config{Group: group, BatchRecords: 100, Linger: 50 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second})
	return r, cancel, done
}

func (e *env) verify(t *testing.T, bucket string) archive.Report {
	t.Helper()
	rep, err := archive.Verify(context.Background(), sinks3.NewBucket(e.cl, bucket), archive.Layout{Prefix: "audit"}, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (e *env) complete(t *testing.T) archive.Report {
	t.Helper()
	var rep archive.Report
	sinktest.Wait(t, 90*time.Second, func() error {
		rep = e.verify(t, e.bucket)
		n := uint64(0)
		for _, p := range rep.Partitions {
			n += p.Records
			if uint64(p.Checkpoints) != p.Records/50 {
				return fmt.Errorf("partition %d: %d checkpoints archived for %d records", p.Partition, p.Checkpoints, p.Records)
			}
		}
		if len(rep.Problems) > 0 || n != uint64(len(e.feed.Want)) {
			return fmt.Errorf("archived %d of %d records; problems: %v", n, len(e.feed.Want), rep.Problems)
		}
		return nil
	})
	return rep
}

// The archive holds every record, verifies offline with the public key alone, and is
// not duplicated by a re-delivery from offset zero (a crash before any commit).
func TestArchiveCompleteVerifiableAndIdempotent(t *testing.T) {
	e := setup(t, 3, sinks3.ChecksumSHA256)
	e.feed.Add(t, 900)
	_, stop, done := e.run(t, "g1-"+e.feed.Chained, sinks3.ChecksumSHA256)
	rep := e.complete(t)
	for _, p := range rep.Partitions {
		if p.Manifests != 1 || p.AnchoredSize != 300 || p.Unanchored != 0 || p.Checkpoints != 6 {
			t.Fatalf("partition %d: %+v (want one closed day's manifest, 6 checkpoints anchoring all 300 records)", p.Partition, p)
		}
	}
	stop()
	<-done
	before := e.keys(t, e.bucket)
	// A new group re-reads everything, as after a crash before the first commit.
	e.run(t, "g2-"+e.feed.Chained, sinks3.ChecksumSHA256)
	e.feed.Add(t, 30)
	e.complete(t)
	after := e.keys(t, e.bucket)
	for k := range before {
		delete(after, k)
	}
	for k := range after {
		if !strings.Contains(k, "/date=2026-11-21/") {
			t.Fatalf("re-delivery wrote %s", k)
		}
	}
	if len(after) == 0 {
		t.Fatal("the 30 new records were not archived")
	}
}

// With the MD5 checksum mode (servers that reject the SDK's checksum headers) the
// retention upload is accepted as well.
func TestArchiveWithContentMD5(t *testing.T) {
	e := setup(t, 1, sinks3.ChecksumMD5)
	e.feed.Add(t, 120)
	e.run(t, "g-"+e.feed.Chained, sinks3.ChecksumMD5)
	e.complete(t)
}

func (e *env) keys(t *testing.T, bucket string) map[string]bool {
	t.Helper()
	keys, err := sinks3.NewBucket(e.cl, bucket).List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range keys {
		out[k] = true
	}
	return out
}

func statusOf(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// A locked object version cannot be deleted or have its retention shortened; a copy
// of the archive that was tampered with fails verification naming each object.
func TestLockedAndTamperEvident(t *testing.T) {
	e := setup(t, 2, sinks3.ChecksumSHA256)
	e.feed.Add(t, 400)
	e.run(t, "g-"+e.feed.Chained, sinks3.ChecksumSHA256)
	e.complete(t)
	ctx := context.Background()
	keys := e.keys(t, e.bucket)
	var obj, digest string
	for k := range keys {
		if strings.HasSuffix(k, ".ndjson.gz") && strings.Contains(k, "/partition=0/") && obj == "" {
			obj = k
		}
		if strings.Contains(k, "/chain/partition=1/date=2026-11-20/") && digest == "" {
			digest = k
		}
	}
	head, err := e.cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(obj)})
	if err != nil {
		t.Fatal(err)
	}
	if head.ObjectLockMode != types.ObjectLockModeCompliance || head.ObjectLockRetainUntilDate == nil || head.VersionId == nil {
		t.Fatalf("object not locked: mode %q until %v version %v", head.ObjectLockMode, head.ObjectLockRetainUntilDate, head.VersionId)
	}
	_, err = e.cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(obj), VersionId: head.VersionId})
	if statusOf(err) != http.StatusForbidden {
		t.Fatalf("deleting a locked version: %v, want 403", err)
	}
	_, err = e.cl.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String(e.bucket), Key: aws.String(obj), VersionId: head.VersionId,
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(time.Now().Add(time.Hour))}})
	if err == nil {
		t.Fatal("shortening a COMPLIANCE retention succeeded")
	}
	_, err = e.cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(obj), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")})
	if statusOf(err) != http.StatusPreconditionFailed {
		t.Fatalf("create-only overwrite: %v, want 412", err)
	}

	// A copy without Object Lock, then tampered with.
	cp := e.srv.Bucket(t, false)
	for k := range keys {
		out, err := e.cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatal(err)
		}
		out.Body.Close()
		if k == obj {
			data = tamper(t, data)
		}
		if k == digest {
			continue // deleted from the copy
		}
		if _, err := e.cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(cp), Key: aws.String(k), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	if rep := e.verify(t, e.bucket); len(rep.Problems) != 0 {
		t.Fatalf("original archive: %v", rep.Problems)
	}
	rep := e.verify(t, cp)
	var text []string
	for _, p := range rep.Problems {
		text = append(text, p.String())
	}
	all := strings.Join(text, "\n")
	if !strings.Contains(all, obj+": altered") || !strings.Contains(all, digest+": missing") {
		t.Fatalf("verify of the tampered copy did not name the altered object %s and the deleted digest %s:\n%s", obj, digest, all)
	}
}

// tamper changes one character of the first record's event and re-compresses.
func tamper(t *testing.T, data []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.Replace(raw, []byte(`"rule.updated"`), []byte(`"rule.deleted"`), 1)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	return buf.Bytes()
}
