package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

type verifyFlags struct {
	origin, records, checkpoints string
	partition                    int32
	keys                         []string
	output                       string
}

func (v *verifyFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&v.origin, "origin", "", "expected checkpoint origin, <deployment>/<topic>/<partition>")
	f.Int32Var(&v.partition, "partition", 0, "partition number")
	f.StringVar(&v.records, "records", "", "chained records (NDJSON), in storage order")
	f.StringVar(&v.checkpoints, "checkpoints", "", "signed checkpoints (NDJSON)")
	f.StringArrayVar(&v.keys, "verifier-key", nil, "file of trusted public keys, one per line (repeatable)")
}

// load checks the required flags and reads the trusted keys and the
// checkpoints, as verify and prove both need.
func (v *verifyFlags) load() (note.Verifiers, []chain.SignedCheckpoint, error) {
	if v.origin == "" || v.records == "" || v.checkpoints == "" {
		return nil, nil, &exitError{code: 2, err: fmt.Errorf("--origin, --records and --checkpoints are required")}
	}
	verifiers, err := loadVerifiers(v.keys)
	if err != nil {
		return nil, nil, err
	}
	cps, err := readCheckpoints(v.checkpoints)
	if err != nil {
		return nil, nil, err
	}
	return verifiers, cps, nil
}

func newVerifyCmd() *cobra.Command {
	var vf verifyFlags
	var sv storeVerifyFlags
	var s3f s3VerifyFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify a partition's records and checkpoints with only the public key",
		Long: `Walks the records in storage order and checks each record's leaf hash, the
prev_hash links, contiguous seq, every checkpoint's signature and that the
records hash to every signed root. Prints a summary, or the first problem with
its kind and location (partition, seq); exits 1 on a problem. Memory stays
flat: records are streamed.

From files:  trailctl verify --origin O --records R --checkpoints C --verifier-key K
From ClickHouse (every checkpointed partition, or --partition N, or the partitions
of --tenant T; optionally only the records chained --after/--before, widened to the
signed checkpoints around them):
  trailctl verify --store --deployment D --verifier-key K [--partition N] [--after -30d]
From the S3 WORM archive, offline (digest chain, object hashes, records, checkpoints,
daily manifests; every problem is named with its object):
  trailctl verify --s3 s3://bucket/prefix --deployment D --pubkey K [--s3-endpoint URL --s3-path-style]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if s3f.url != "" {
				var one *int32
				if cmd.Flags().Changed("partition") {
					one = &vf.partition
				}
				return verifyS3(cmd, &s3f, &sv, vf.keys, one, vf.output)
			}
			if sv.store {
				var one *int32
				if cmd.Flags().Changed("partition") {
					one = &vf.partition
				}
				return verifyStore(cmd, &sv, vf.keys, one, vf.output)
			}
			verifiers, cps, err := vf.load()
			if err != nil {
				return err
			}
			start := time.Now()
			v, err := chain.NewVerifier(vf.origin, vf.partition, verifiers, cps)
			if err != nil {
				return failed("%v", err)
			}
			var problem error
			for r, err := range readRecords(vf.records) {
				if err != nil {
					return err
				}
				if problem = v.Add(r); problem != nil {
					break
				}
			}
			sum, err := v.Finish()
			var p *chain.Problem
			if errors.As(err, &p) {
				if vf.output == "json" {
					b, _ := json.Marshal(map[string]any{"ok": false, "problem": p})
					fmt.Fprintln(cmd.OutOrStdout(), string(b))
				}
				return failed("verification FAILED: %v", p)
			} else if err != nil {
				return err
			}
			if vf.output == "json" {
				b, _ := json.Marshal(map[string]any{"ok": true, "summary": sum, "unanchored": sum.Unanchored()})
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return nil
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "OK  %s  partition %d\n", vf.origin, sum.Partition)
			fmt.Fprintf(w, "    records      %d (seq %d..%d)\n", sum.Records, sum.FirstSeq, int64(sum.NextSeq)-1)
			fmt.Fprintf(w, "    checkpoints  %d verified, last at size %d\n", sum.Checkpoints, sum.AnchoredSize)
			fmt.Fprintf(w, "    root         %s\n", sum.Root)
			if u := sum.Unanchored(); u > 0 {
				fmt.Fprintf(w, "    WARNING      %d record(s) after the last signed checkpoint are chained but not yet signed\n", u)
			}
			fmt.Fprintf(w, "    duration     %s\n", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	vf.register(cmd)
	sv.register(cmd)
	s3f.register(cmd)
	cmd.Flags().StringVarP(&vf.output, "output", "o", "text", "output format: text or json")
	return cmd
}
