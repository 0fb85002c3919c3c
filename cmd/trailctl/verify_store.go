package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// storeVerifyFlags select what `trailctl verify --store` walks.
type storeVerifyFlags struct {
	store             bool
	sf                storeFlags
	deployment, topic string
	tenants           []string
	after, before     string
}

func (s *storeVerifyFlags) register(cmd *cobra.Command) {
	s.sf.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&s.store, "store", false, "verify the chains stored in ClickHouse instead of files")
	f.StringVar(&s.deployment, "deployment", "", "with --store or --s3: the deployment name in checkpoint origins (<deployment>/<topic>/<partition>)")
	f.StringVar(&s.topic, "topic", kafka.ChainedTopic, "with --store or --s3: the topic name in checkpoint origins")
	f.StringSliceVar(&s.tenants, "tenant", nil, "with --store: verify the partitions that hold these tenants' events")
	f.StringVar(&s.after, "after", "", "with --store: verify from the last checkpoint before records chained at this time (RFC 3339, date, -30d)")
	f.StringVar(&s.before, "before", "", "with --store: verify up to the first checkpoint covering records chained before this time")
}

// partitionResult is one partition's outcome, as printed.
type partitionResult struct {
	Origin      string         `json:"origin"`
	OK          bool           `json:"ok"`
	Summary     *chain.Summary `json:"summary,omitempty"`
	Problem     *chain.Problem `json:"problem,omitempty"`
	FirstCP     uint64         `json:"first_checkpoint_size"`
	LastCP      uint64         `json:"last_checkpoint_size"`
	Empty       bool           `json:"no_records_in_range,omitempty"`
	DurationSec float64        `json:"duration_seconds"`
}

// verifyStore walks every selected partition's chain in ClickHouse with only the
// public keys: leaf hashes, links, contiguous seq, checkpoint signatures, roots and
// consistency. Records stream through the verifier; the expected origin comes from
// the auditor's flags, never from the store.
func verifyStore(cmd *cobra.Command, s *storeVerifyFlags, keys []string, onePartition *int32, output string) error {
	if s.deployment == "" {
		return usageError(fmt.Errorf("--store needs --deployment: the expected checkpoint origin is <deployment>/<topic>/<partition>"))
	}
	verifiers, err := loadVerifiers(keys)
	if err != nil {
		return err
	}
	now := time.Now()
	from, to := time.Unix(0, 0), time.Unix(0, math.MaxInt64)
	ranged := s.after != "" || s.before != ""
	if s.after != "" {
		if from, err = query.ParseTime(s.after, now); err != nil {
			return usageError(fmt.Errorf("--after: %w", err))
		}
	}
	if s.before != "" {
		if to, err = query.ParseTime(s.before, now); err != nil {
			return usageError(fmt.Errorf("--before: %w", err))
		}
	}
	ctx := cmd.Context()
	store, err := s.sf.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	parts := []int32{}
	if onePartition != nil {
		parts = append(parts, *onePartition)
	} else if parts, err = store.Partitions(ctx, s.tenants); err != nil {
		return err
	}
	if len(parts) == 0 {
		return failed("nothing to verify: the store has no checkpointed partition%s", map[bool]string{true: " holding these tenants", false: ""}[len(s.tenants) > 0])
	}
	var results []partitionResult
	bad := 0
	for _, p := range parts {
		r, err := verifyPartition(ctx, store, chain.Origin(s.deployment, s.topic, p), p, verifiers, ranged, from, to)
		if err != nil {
			return err
		}
		if !r.OK {
			bad++
		}
		results = append(results, r)
	}
	printResults(cmd.OutOrStdout(), results, output)
	if bad > 0 {
		return failed("verification FAILED in %d of %d partition(s)", bad, len(results))
	}
	return nil
}

func verifyPartition(ctx context.Context, store *clickhouse.Store, origin string, p int32, verifiers note.Verifiers, ranged bool, from, to time.Time) (partitionResult, error) {
	start := time.Now()
	res := partitionResult{Origin: origin}
	cps, err := store.Checkpoints(ctx, p)
	if err != nil {
		return res, err
	}
	lo, hi := uint64(0), uint64(math.MaxUint64)
	var opts []chain.VerifyOption
	if ranged {
		first, last, ok, err := store.SeqRange(ctx, p, from, to)
		if err != nil {
			return res, err
		}
		if !ok {
			res.OK, res.Empty = true, true
			return res, nil
		}
		// Widen the range to signed checkpoints: start at the last one at or before
		// the first record (its compact range is checked against its signature) and
		// end at the first one covering the last record.
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
		cps = kept
	}
	for _, cp := range cps {
		if c, err := cp.Unverified(); err == nil {
			if res.FirstCP == 0 || c.Size < res.FirstCP {
				res.FirstCP = c.Size
			}
			res.LastCP = max(res.LastCP, c.Size)
		}
	}
	v, err := chain.NewVerifier(origin, p, verifiers, cps, opts...)
	if err != nil {
		var prob *chain.Problem
		if errors.As(err, &prob) {
			res.Problem = prob
			return res, nil
		}
		return res, fmt.Errorf("partition %d: %w", p, err)
	}
	err = store.RecordsBetween(ctx, p, lo, hi, v.Add)
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

func printResults(w io.Writer, results []partitionResult, output string) {
	if output == "json" {
		for _, r := range results {
			b, _ := json.Marshal(r)
			fmt.Fprintln(w, string(b))
		}
		return
	}
	var total uint64
	var secs float64
	for _, r := range results {
		switch {
		case r.Problem != nil:
			fmt.Fprintf(w, "FAILED  %s\n        %v\n", r.Origin, r.Problem)
		case r.Empty:
			fmt.Fprintf(w, "OK      %s  no records chained in the range\n", r.Origin)
		default:
			s := r.Summary
			fmt.Fprintf(w, "OK      %s  records %d (seq %d..%d)  checkpoints %d verified (sizes %d..%d)  %.2fs\n",
				r.Origin, s.Records, s.FirstSeq, int64(s.NextSeq)-1, s.Checkpoints, r.FirstCP, r.LastCP, r.DurationSec)
			if u := s.Unanchored(); u > 0 {
				fmt.Fprintf(w, "        WARNING %d record(s) after the last signed checkpoint are chained but not yet signed\n", u)
			}
			total += s.Records
		}
		secs += r.DurationSec
	}
	if secs > 0 {
		fmt.Fprintf(w, "%d partition(s), %d records verified in %.2fs (%.0f records/s)\n", len(results), total, secs, float64(total)/secs)
	}
}
