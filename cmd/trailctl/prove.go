package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

// proofBundle is everything an auditor needs to check that one record is
// in a signed log, with only the public key: the record itself (so the leaf
// hash is recomputed, not trusted), the audit path and the signed checkpoint.
type proofBundle struct {
	Record     chain.Record `json:"record"`
	TreeSize   uint64       `json:"tree_size"`
	Inclusion  []chain.Hash `json:"inclusion"`
	Checkpoint string       `json:"checkpoint"`
}

func newProveCmd() *cobra.Command {
	var vf verifyFlags
	var seq uint64
	cmd := &cobra.Command{
		Use:   "prove --seq N",
		Short: "Print an inclusion proof of one record in the latest signed checkpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			verifiers, cps, err := vf.load()
			if err != nil {
				return err
			}
			var best *chain.Checkpoint
			var bestNote []byte
			for _, s := range cps {
				cp, err := s.Open(vf.origin, verifiers)
				if err != nil {
					return failed("checkpoint: %v", err)
				}
				if cp.Size > seq && (best == nil || cp.Size > best.Size) {
					c := cp
					best, bestNote = &c, s.Note
				}
			}
			if best == nil {
				return failed("no signed checkpoint covers seq %d yet", seq)
			}
			var leaves chain.MemoryLeaves
			var rec *chain.Record
			for r, err := range readRecords(vf.records) {
				if err != nil {
					return err
				}
				if r.Seq != uint64(len(leaves)) {
					return failed("records are not contiguous at seq %d; run 'trailctl verify'", r.Seq)
				}
				if r.Seq == seq {
					rc := r
					rec = &rc
				}
				leaves = append(leaves, r.LeafHash)
				if uint64(len(leaves)) == best.Size {
					break
				}
			}
			if rec == nil || uint64(len(leaves)) < best.Size {
				return failed("records end before the checkpoint at size %d", best.Size)
			}
			path, err := chain.InclusionProof(leaves, seq, best.Size)
			if err != nil {
				return err
			}
			if err := chain.VerifyInclusion(rec.ComputeLeafHash(), seq, *best, path); err != nil {
				return failed("the stored records do not prove seq %d: %v", seq, err)
			}
			// Compact on purpose: indenting would re-format the verbatim
			// event bytes inside the record and break its leaf hash.
			return json.NewEncoder(cmd.OutOrStdout()).Encode(proofBundle{Record: *rec, TreeSize: best.Size, Inclusion: path, Checkpoint: string(bestNote)})
		},
	}
	vf.register(cmd)
	cmd.Flags().Uint64Var(&seq, "seq", 0, "seq of the record to prove")

	var origin string
	var keyFiles []string
	check := &cobra.Command{
		Use:   "check PROOF_FILE",
		Short: "Check a proof bundle with only the public key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var pb proofBundle
			if err := json.Unmarshal(b, &pb); err != nil {
				return failed("proof: %v", err)
			}
			verifiers, err := loadVerifiers(keyFiles)
			if err != nil {
				return err
			}
			cp, err := chain.SignedCheckpoint{Note: chain.NoteText(pb.Checkpoint)}.Open(origin, verifiers)
			if err != nil {
				return failed("proof: %v", err)
			}
			if cp.Size != pb.TreeSize {
				return failed("proof: tree_size %d does not match the signed checkpoint size %d", pb.TreeSize, cp.Size)
			}
			leaf := pb.Record.ComputeLeafHash()
			if leaf != pb.Record.LeafHash {
				return failed("proof: record content does not hash to its leaf hash")
			}
			if err := chain.VerifyInclusion(leaf, pb.Record.Seq, cp, pb.Inclusion); err != nil {
				return failed("proof: %v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK  record %d/%d is included in %s at size %d (root %s)\n",
				pb.Record.Partition, pb.Record.Seq, cp.Origin, cp.Size, cp.Root)
			return nil
		},
	}
	check.Flags().StringVar(&origin, "origin", "", "expected checkpoint origin (empty: accept any origin the key signed)")
	check.Flags().StringArrayVar(&keyFiles, "verifier-key", nil, "file of trusted public keys (repeatable)")
	cmd.AddCommand(check)
	return cmd
}
