package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/query"
	"github.com/trailkeep/trailkeep/pkg/verify"
)

// storeVerifyFlags select what `trailctl verify --store` walks.
type storeVerifyFlags struct {
	store             bool
	sf                storeFlags
	api               apiFlags
	deployment, topic string
	tenants           []string
	after, before     string
}

func (s *storeVerifyFlags) register(cmd *cobra.Command) {
	s.sf.register(cmd)
	s.api.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&s.store, "store", false, "verify the chains stored in ClickHouse instead of files")
	f.StringVar(&s.deployment, "deployment", "", "with --store or --s3: the deployment name in checkpoint origins (<deployment>/<topic>/<partition>)")
	f.StringVar(&s.topic, "topic", kafka.ChainedTopic, "with --store or --s3: the topic name in checkpoint origins")
	f.StringSliceVar(&s.tenants, "tenant", nil, "with --store: verify the partitions that hold these tenants' events")
	f.StringVar(&s.after, "after", "", "with --store: verify from the last checkpoint before records chained at this time (RFC 3339, date, -30d)")
	f.StringVar(&s.before, "before", "", "with --store: verify up to the first checkpoint covering records chained before this time")
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
	var rng *verify.Range
	if s.after != "" || s.before != "" {
		rng = &verify.Range{From: time.Unix(0, 0), To: time.Unix(0, math.MaxInt64)}
		if s.after != "" {
			if rng.From, err = query.ParseTime(s.after, now); err != nil {
				return usageError(fmt.Errorf("--after: %w", err))
			}
		}
		if s.before != "" {
			if rng.To, err = query.ParseTime(s.before, now); err != nil {
				return usageError(fmt.Errorf("--before: %w", err))
			}
		}
	}
	ctx := cmd.Context()
	src, closeSrc, err := s.chainSource(ctx)
	if err != nil {
		return err
	}
	defer closeSrc()
	parts := []int32{}
	if onePartition != nil {
		parts = append(parts, *onePartition)
	} else if parts, err = src.Partitions(ctx, s.tenants); err != nil {
		return apiFailure(err) // an API refusal gets its exit code; a store error stays as it is
	}
	if len(parts) == 0 {
		return failed("nothing to verify: the store has no checkpointed partition%s", map[bool]string{true: " holding these tenants", false: ""}[len(s.tenants) > 0])
	}
	var results []verify.Result
	bad := 0
	for _, p := range parts {
		r, err := verify.Partition(ctx, src, chain.Origin(s.deployment, s.topic, p), p, verifiers, rng)
		if err != nil {
			return apiFailure(err)
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

// storedChain is what verify --store walks: ClickHouse (*clickhouse.Store), or with
// --api the query API (*queryapi.ChainSource, an all-tenant admin token). Either way
// the verifier checks what it reads against the public keys: the API is a
// transport, not a trusted party.
type storedChain interface {
	verify.Source
	Partitions(ctx context.Context, tenants []string) ([]int32, error)
}

// chainSource opens the stored chain and returns it with its close function.
func (s *storeVerifyFlags) chainSource(ctx context.Context) (storedChain, func(), error) {
	if s.api.url != "" {
		cl, err := s.api.client()
		if err != nil {
			return nil, nil, err
		}
		return cl.Chain(), func() {}, nil
	}
	store, err := s.sf.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	return store, func() { store.Close() }, nil
}

func printResults(w io.Writer, results []verify.Result, output string) {
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
