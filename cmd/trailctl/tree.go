package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// newTreeCmd checks and repairs the Merkle tree tables proofs read (audit_leaves,
// audit_subtrees): a cache of what audit_events and the signed checkpoints fix, so
// damage there slows proofs (they fall back to the events) but cannot change one.
func newTreeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tree",
		Short: "Check or rebuild the Merkle tree tables that proofs read",
	}
	cmd.AddCommand(newTreeCheckCmd(), newTreeRebuildCmd())
	return cmd
}

func newTreeCheckCmd() *cobra.Command {
	var sf storeFlags
	var partition int32
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Fold each partition's stored tree and compare it with its latest checkpoint's root",
		Long: `Folds each partition's tree at its latest stored checkpoint from audit_leaves and
audit_subtrees and compares the root with the checkpoint's. A mismatch (exit 1) means
damaged tree rows: proofs still verify, read from the events instead, and
'trailctl tree rebuild --partition N' repairs them. Signatures are
'trailctl verify --store's to check.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			store, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			parts := []int32{partition}
			if partition < 0 {
				if parts, err = store.Partitions(ctx, nil); err != nil {
					return err
				}
			}
			damaged := 0
			for _, p := range parts {
				c, ok, err := store.CheckTree(ctx, p)
				if err != nil {
					return err
				}
				if !ok {
					fmt.Fprintf(cmd.OutOrStdout(), "partition %d: no checkpoint yet\n", p)
					continue
				}
				if !c.Match {
					damaged++
				}
				fmt.Fprintln(cmd.OutOrStdout(), treeLine(c))
			}
			if damaged > 0 {
				return failed("%d partition(s) with damaged tree rows; repair each with trailctl tree rebuild --partition N", damaged)
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().Int32Var(&partition, "partition", -1, "check one partition (default all with checkpoints)")
	return cmd
}

func newTreeRebuildCmd() *cobra.Command {
	var sf storeFlags
	var partition int32
	cmd := &cobra.Command{
		Use:   "rebuild --partition N",
		Short: "Copy a partition's leaves again from its events and recompute its subtrees",
		Long: `Deletes the partition's rows from audit_leaves and audit_subtrees, copies its leaves
again from audit_events (server-side) and computes its subtrees, then checks the tree
against the latest checkpoint. Stop the partition's ClickHouse writer first: rows it
inserts meanwhile may be deleted with the old ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if partition < 0 {
				return usageError(fmt.Errorf("--partition is required"))
			}
			ctx := cmd.Context()
			store, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			n, err := store.RebuildTree(ctx, partition)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "partition %d: leaves copied, %d subtrees stored\n", partition, n)
			c, ok, err := store.CheckTree(ctx, partition)
			if err != nil || !ok {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), treeLine(c))
			if !c.Match {
				return failed("partition %d: the rebuilt tree still differs from the checkpoint: the events themselves do not add up; run trailctl verify --store", partition)
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().Int32Var(&partition, "partition", -1, "the partition to rebuild")
	return cmd
}

// treeLine is one partition's check result.
func treeLine(c clickhouse.TreeCheck) string {
	state := "matches its latest checkpoint"
	if !c.Match {
		state = "DIFFERS from its latest checkpoint (damaged tree rows)"
	}
	return fmt.Sprintf("partition %d: tree of %d leaves %s; %d subtrees missing", c.Partition, c.Size, state, c.Missing)
}
