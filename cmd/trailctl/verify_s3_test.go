package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/s3test"
	"github.com/trailkeep/trailkeep/pkg/sink"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
)

// trailctl verify --s3 passes on an archive the S3 sink wrote and, on a copy with
// one object deleted, exits 1 naming that object.
func TestVerifyS3Archive(t *testing.T) {
	srv := s3test.Shared(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	bucket := srv.Bucket(t, true)
	ctx := context.Background()
	cl, err := sinks3.NewClient(ctx, srv.ClientConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sinks3.New(sinks3.Config{Client: cl, Bucket: bucket, Prefix: "a/b"})
	if err != nil {
		t.Fatal(err)
	}
	log := chaintest.New(t, "verify.test", 0)
	at := time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC)
	for p := int32(0); p < 2; p++ {
		if err := s.OpenPartition(ctx, p); err != nil {
			t.Fatal(err)
		}
		for batch := 0; batch < 3; batch++ {
			var recs []sink.Record
			for i := 0; i < 10; i++ {
				r := log.Add(p, []string{"acme", "globex"}[i%2], at.Add(time.Duration(batch)*time.Hour), chaintest.Doc("skill.published", "user:a", "skill", "s"))
				v, _ := r.MarshalJSON()
				rec, err := sink.Decode(int64(i), v)
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, rec)
			}
			if err := s.Deliver(ctx, &sink.Batch{Partition: p, Records: recs}); err != nil {
				t.Fatal(err)
			}
			cp := log.Sign(p)
			v, _ := json.Marshal(cp)
			if err := s.DeliverCheckpoints(ctx, p, []sink.Checkpoint{{Value: v, Signed: cp, Size: uint64(10 * (batch + 1))}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	args := []string{"verify", "--s3", "s3://" + bucket + "/a/b", "--s3-endpoint", srv.Endpoint, "--s3-path-style",
		"--deployment", "verify.test", "--pubkey", log.PublicKeyFile()}
	out := mustRun(t, args...)
	if !strings.Contains(out, "OK  s3://"+bucket+"/a/b") || !strings.Contains(out, "partition 1  records 30  segments 3") || !strings.Contains(out, "manifests 1") {
		t.Fatalf("verify output:\n%s", out)
	}

	copyBucket := srv.Bucket(t, false)
	keys, err := sinks3.NewBucket(cl, bucket).List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var deleted string
	for _, k := range keys {
		if deleted == "" && strings.Contains(k, "tenant=globex/partition=1/") {
			deleted = k
			continue
		}
		data, err := sinks3.NewBucket(cl, bucket).Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(copyBucket), Key: aws.String(k), Body: strings.NewReader(string(data))}); err != nil {
			t.Fatal(err)
		}
	}
	args[2] = "s3://" + copyBucket + "/a/b"
	out, _, code := run(t, args...)
	if code != 1 || !strings.Contains(out, "PROBLEM  partition 1: "+deleted+": missing") {
		t.Fatalf("exit %d, want 1 naming %s:\n%s", code, deleted, out)
	}
	if _, _, code := run(t, "verify", "--s3", "http://x", "--deployment", "d", "--pubkey", log.PublicKeyFile()); code != 2 {
		t.Fatalf("bad --s3 URL: exit %d, want 2", code)
	}
}
