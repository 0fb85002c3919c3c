// Package verify checks a stored log the way an auditor would: each partition's
// chain walked record by record with only the public keys (leaf hashes, links,
// contiguous seq, checkpoint signatures, roots and consistency). The expected origin
// comes from the caller, never from the store. `trailctl verify --store` prints what
// it finds; anything that reads chains from a store can call it.
package verify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

// Source is a stored log (*clickhouse.Store is one).
type Source interface {
	// Checkpoints returns partition p's signed checkpoints.
	Checkpoints(ctx context.Context, p int32) ([]chain.SignedCheckpoint, error)
	// SeqRange returns the first and last seq of p chained in [from, to).
	SeqRange(ctx context.Context, p int32, from, to time.Time) (lo, hi uint64, ok bool, err error)
	// RecordsBetween streams p's records with from <= seq < to, in seq order.
	RecordsBetween(ctx context.Context, p int32, from, to uint64, fn func(chain.Record) error) error
}

// Range restricts a verification to records chained in [From, To), widened to the
// signed checkpoints around them.
type Range struct{ From, To time.Time }

// Result is one partition's outcome.
type Result struct {
	Origin  string         `json:"origin"`
	OK      bool           `json:"ok"`
	Summary *chain.Summary `json:"summary,omitempty"`
	// Problem locates the first thing that does not verify.
	Problem     *chain.Problem `json:"problem,omitempty"`
	FirstCP     uint64         `json:"first_checkpoint_size"`
	LastCP      uint64         `json:"last_checkpoint_size"`
	Empty       bool           `json:"no_records_in_range,omitempty"`
	DurationSec float64        `json:"duration_seconds"`
}

// Partition verifies partition p of src against origin with verifiers, the whole
// chain or (r != nil) the part of it r selects. A chain that does not verify is a
// Result with a Problem; an error is a store that could not be read.
func Partition(ctx context.Context, src Source, origin string, p int32, verifiers note.Verifiers, r *Range) (Result, error) {
	start := time.Now()
	res := Result{Origin: origin}
	cps, err := src.Checkpoints(ctx, p)
	if err != nil {
		return res, err
	}
	lo, hi := uint64(0), uint64(math.MaxUint64)
	var opts []chain.VerifyOption
	if r != nil {
		first, last, ok, err := src.SeqRange(ctx, p, r.From, r.To)
		if err != nil {
			return res, err
		}
		if !ok {
			res.OK, res.Empty = true, true
			return res, nil
		}
		cps, lo, hi, opts = widen(cps, first, last)
	}
	res.FirstCP, res.LastCP = sizes(cps)
	v, err := chain.NewVerifier(origin, p, verifiers, cps, opts...)
	if err != nil {
		var prob *chain.Problem
		if errors.As(err, &prob) {
			res.Problem = prob
			return res, nil
		}
		return res, fmt.Errorf("partition %d: %w", p, err)
	}
	err = src.RecordsBetween(ctx, p, lo, hi, v.Add)
	var prob *chain.Problem
	if err != nil && !errors.As(err, &prob) {
		return res, err
	}
	sum, err := v.Finish()
	res.DurationSec = time.Since(start).Seconds()
	if errors.As(err, &prob) {
		res.Problem = prob
		return res, nil
	} else if err != nil {
		return res, err
	}
	res.OK, res.Summary = true, &sum
	return res, nil
}

// widen keeps the checkpoints from the last one at or before the first record (its
// compact range is checked against its signature, and the walk starts there) to the
// first one covering the last record, and returns the seq bounds to read.
func widen(cps []chain.SignedCheckpoint, first, last uint64) ([]chain.SignedCheckpoint, uint64, uint64, []chain.VerifyOption) {
	lo, hi := uint64(0), uint64(math.MaxUint64)
	var opts []chain.VerifyOption
	for _, cp := range cps {
		c, err := cp.Unverified()
		if err != nil {
			continue // kept below: the verifier reports it where it claims to sit
		}
		switch {
		case c.Size <= first && c.Size > lo:
			lo = c.Size
			opts = []chain.VerifyOption{chain.StartAt(cp)}
		case c.Size > last && c.Size < hi:
			hi = c.Size
		}
	}
	var kept []chain.SignedCheckpoint
	for _, cp := range cps {
		if c, err := cp.Unverified(); err != nil || (c.Size >= lo && c.Size <= hi) {
			kept = append(kept, cp)
		}
	}
	return kept, lo, hi, opts
}

// sizes are the smallest and largest tree sizes among cps.
func sizes(cps []chain.SignedCheckpoint) (first, last uint64) {
	for _, cp := range cps {
		if c, err := cp.Unverified(); err == nil {
			if first == 0 || c.Size < first {
				first = c.Size
			}
			last = max(last, c.Size)
		}
	}
	return first, last
}
