package s3_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/trailkeep/trailkeep/internal/s3test"
	"github.com/trailkeep/trailkeep/pkg/chain"
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

// A checkpoint the chainer re-published (a quiet partition's, refreshed before
// retention) is accepted when it states the same as the archived copy, even if
// that copy was written before checkpoints carried the last leaf's proof; one
// that differs in any signed or restored part stops the sink.
func TestRepublishedCheckpointAcceptedConflictingRefused(t *testing.T) {
	srv := s3test.Shared(t)
	cl, err := sinks3.NewClient(context.Background(), srv.ClientConfig(sinks3.ChecksumSHA256))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sinks3.New(sinks3.Config{Client: cl, Bucket: srv.Bucket(t, true), Mode: types.ObjectLockModeCompliance, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	skey, _, err := chain.GenerateKey("republish")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := chain.NewSigner(skey)
	c := chain.New(0)
	for i := range 4 {
		if _, err := c.Append([]byte(fmt.Sprintf(`{"n":%d}`, i)), time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := c.Sign("test/chained/0", signer)
	if err != nil || len(cp.LastLeafProof) != 2 {
		t.Fatalf("checkpoint at 4: proof %d hashes, %v", len(cp.LastLeafProof), err)
	}
	deliver := func(sc chain.SignedCheckpoint) error {
		val, err := json.Marshal(sc)
		if err != nil {
			t.Fatal(err)
		}
		return s.DeliverCheckpoints(context.Background(), 0, []sink.Checkpoint{{Value: val, Signed: sc, Size: 4}})
	}
	legacy := cp
	legacy.LastLeafProof = nil
	if err := deliver(legacy); err != nil {
		t.Fatalf("first copy: %v", err)
	}
	if err := deliver(cp); err != nil {
		t.Fatalf("the same checkpoint with its proof: %v", err)
	}
	for name, alter := range map[string]func(*chain.SignedCheckpoint){
		"note": func(sc *chain.SignedCheckpoint) { sc.Note = append(chain.NoteText(nil), sc.Note[:len(sc.Note)-2]...) },
		"range": func(sc *chain.SignedCheckpoint) {
			sc.Range = append([]chain.Hash(nil), sc.Range...)
			sc.Range[0][0] ^= 1
		},
		"last leaf": func(sc *chain.SignedCheckpoint) { sc.LastLeaf[0] ^= 1 },
	} {
		bad := cp
		alter(&bad)
		err := deliver(bad)
		var se *sink.Error
		if !errors.As(err, &se) || se.Kind != sink.Fatal {
			t.Errorf("a re-published checkpoint with another %s: %v, want a fatal archive conflict", name, err)
		}
	}
}
