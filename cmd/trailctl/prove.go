package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/proof"
	"github.com/trailkeep/trailkeep/pkg/queryapi"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

func newProveCmd() *cobra.Command {
	var vf verifyFlags
	var sf storeFlags
	var api apiFlags
	var seq uint64
	var latest bool
	cmd := &cobra.Command{
		Use:   "prove EVENT_ID | prove --records R --checkpoints C --origin O --seq N",
		Short: "Print a self-contained inclusion proof of one event (JSON), from ClickHouse or from files",
		Long: `Prints a proof bundle: the stored record, the RFC 6962 audit path and the
signed checkpoint it leads to. 'trailctl verify-proof' (or the algorithm in
pkg/proof's documentation) checks it offline with only the public key.

From the store:  trailctl prove 0190b8a2-... [--latest] [--verifier-key K]
  The proof is against the first signed checkpoint covering the event (the same
  bundle every time), or the partition's latest checkpoint with --latest.
From files:      trailctl prove --origin O --records R --checkpoints C --seq N --verifier-key K`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b proof.Bundle
			var err error
			if vf.records != "" {
				if len(args) > 0 {
					return usageError(errors.New("give an event id (store) or --records/--seq (files), not both"))
				}
				b, err = proveFromFiles(&vf, seq)
			} else {
				if len(args) != 1 {
					return usageError(errors.New("give the event id to prove (or --records/--checkpoints/--seq for files)"))
				}
				if api.url != "" {
					b, err = proveFromAPI(cmd, &api, args[0], latest)
				} else {
					b, err = proveFromStore(cmd, &sf, args[0], latest)
				}
				if err == nil && len(vf.keys) > 0 {
					verifiers, kerr := loadVerifiers(vf.keys)
					if kerr != nil {
						return kerr
					}
					if _, err := b.Verify("", verifiers); err != nil {
						return failed("the stored checkpoint does not verify with the given key: %v", err)
					}
				}
			}
			if err != nil {
				return err
			}
			// Compact on purpose: indenting would re-format the verbatim event
			// bytes inside the record and break its leaf hash.
			return json.NewEncoder(cmd.OutOrStdout()).Encode(b)
		},
	}
	vf.register(cmd)
	sf.register(cmd)
	api.register(cmd)
	cmd.Flags().Uint64Var(&seq, "seq", 0, "with --records: seq of the record to prove")
	cmd.Flags().BoolVar(&latest, "latest", false, "prove against the partition's latest checkpoint instead of the first covering one")

	check := newVerifyProofCmd()
	check.Use = "check PROOF_FILE"
	check.Deprecated = "use 'trailctl verify-proof'"
	cmd.AddCommand(check)
	return cmd
}

func proveFromStore(cmd *cobra.Command, sf *storeFlags, id string, latest bool) (proof.Bundle, error) {
	ctx := cmd.Context()
	store, err := sf.open(ctx)
	if err != nil {
		return proof.Bundle{}, err
	}
	defer store.Close()
	rec, err := store.RecordByID(ctx, id, nil)
	if errors.Is(err, clickhouse.ErrNotFound) {
		return proof.Bundle{}, failed("no stored event has id %s", id)
	}
	if err != nil {
		return proof.Bundle{}, err
	}
	b, err := proof.ForRecord(ctx, store, rec, latest)
	var nc *proof.NotCoveredError
	if errors.As(err, &nc) {
		return proof.Bundle{}, failed("event %s: %v", id, nc)
	}
	if err != nil {
		return proof.Bundle{}, failed("%v", err)
	}
	return b, nil
}

// proveFromAPI fetches the bundle through the query API; with --verifier-key it is
// then checked here like a stored one.
func proveFromAPI(cmd *cobra.Command, api *apiFlags, id string, latest bool) (proof.Bundle, error) {
	cl, err := api.client()
	if err != nil {
		return proof.Bundle{}, err
	}
	b, err := cl.Proof(cmd.Context(), id, latest)
	var ae *queryapi.APIError
	if errors.As(err, &ae) {
		return proof.Bundle{}, failed("%v", err)
	}
	return b, err
}

func proveFromFiles(vf *verifyFlags, seq uint64) (proof.Bundle, error) {
	verifiers, cps, err := vf.load()
	if err != nil {
		return proof.Bundle{}, err
	}
	var best *chain.SignedCheckpoint
	var bestSize uint64
	for _, s := range cps {
		cp, err := s.Open(vf.origin, verifiers)
		if err != nil {
			return proof.Bundle{}, failed("checkpoint: %v", err)
		}
		if cp.Size > seq && cp.Size > bestSize {
			s := s
			best, bestSize = &s, cp.Size
		}
	}
	if best == nil {
		return proof.Bundle{}, failed("no signed checkpoint covers seq %d yet", seq)
	}
	var leaves chain.MemoryLeaves
	var rec *chain.Record
	for r, err := range readRecords(vf.records) {
		if err != nil {
			return proof.Bundle{}, err
		}
		if r.Seq != uint64(len(leaves)) {
			return proof.Bundle{}, failed("records are not contiguous at seq %d; run 'trailctl verify'", r.Seq)
		}
		if r.Seq == seq {
			rc := r
			rec = &rc
		}
		leaves = append(leaves, r.LeafHash)
		if uint64(len(leaves)) == bestSize {
			break
		}
	}
	if rec == nil || uint64(len(leaves)) < bestSize {
		return proof.Bundle{}, failed("records end before the checkpoint at size %d", bestSize)
	}
	b, err := proof.Build(*rec, *best, leaves)
	if err != nil {
		return proof.Bundle{}, failed("%v", err)
	}
	return b, nil
}

func newVerifyProofCmd() *cobra.Command {
	var origin string
	var keyFiles []string
	cmd := &cobra.Command{
		Use:   "verify-proof PROOF_FILE",
		Short: "Check a proof bundle offline with only the public key ('-' reads stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keyFiles) == 0 {
				return usageError(errors.New("--verifier-key is required: a proof is only as good as the key it is checked with"))
			}
			var raw []byte
			var err error
			if args[0] == "-" {
				raw, err = io.ReadAll(cmd.InOrStdin())
			} else {
				raw, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			verifiers, err := loadVerifiers(keyFiles)
			if err != nil {
				return err
			}
			b, err := proof.Parse(raw)
			if err != nil {
				return failed("%v", err)
			}
			cp, err := b.Verify(origin, verifiers)
			if err != nil {
				return failed("%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK  record %d/%d is included in %s at size %d (root %s)\n",
				b.Record.Partition, b.Record.Seq, cp.Origin, cp.Size, cp.Root)
			return nil
		},
	}
	cmd.Flags().StringVar(&origin, "origin", "", "expected checkpoint origin (empty: accept any origin the key signed)")
	cmd.Flags().StringArrayVar(&keyFiles, "verifier-key", nil, "file of trusted public keys (repeatable)")
	return cmd
}
