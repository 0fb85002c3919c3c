package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

func newChainCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "chain", Short: "Chain canonical events offline"}
	var (
		origin, signerKey, recordsOut, checkpointsOut string
		partition                                     int32
		every                                         int
	)
	appendCmd := &cobra.Command{
		Use:   "append [FILE|-]",
		Short: "Chain canonical events (NDJSON) into records and signed checkpoints",
		Long: `Chains canonical events into a new partition log, exactly as the chainer does,
writing chained records and signed checkpoints as NDJSON. Each record's
chained_at is its event's received_at, so the output is a pure function of
the input: running it twice gives identical files. Every event must already
be canonical (see 'trailctl event canonicalize').`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if origin == "" || signerKey == "" || recordsOut == "" || checkpointsOut == "" {
				return &exitError{code: 2, err: fmt.Errorf("--origin, --signer-key, --records and --checkpoints are required")}
			}
			if every < 1 {
				return &exitError{code: 2, err: fmt.Errorf("--checkpoint-every must be at least 1")}
			}
			skey, err := readSigner(signerKey)
			if err != nil {
				return err
			}
			signer, err := chain.NewSigner(skey)
			if err != nil {
				return err
			}
			in, err := openInput(argOr(args, "-"))
			if err != nil {
				return err
			}
			defer in.Close()
			rf, err := os.Create(recordsOut)
			if err != nil {
				return err
			}
			defer rf.Close()
			cf, err := os.Create(checkpointsOut)
			if err != nil {
				return err
			}
			defer cf.Close()
			rw, cw := bufio.NewWriter(rf), bufio.NewWriter(cf)
			c := chain.New(partition)
			sign := func() error {
				cp, err := c.Sign(origin, signer)
				if err != nil {
					return err
				}
				b, _ := json.Marshal(cp)
				cw.Write(append(b, '\n'))
				return nil
			}
			for n, l := range lines(in, event.DefaultLimits.MaxEventBytes+1) {
				if n < 0 {
					return fmt.Errorf("read: %s", l)
				}
				ev, err := event.CheckCanonical(l, event.DefaultLimits)
				if err != nil {
					return failed("line %d: %v", n, err)
				}
				r, err := c.Append(append([]byte(nil), l...), ev.ReceivedAt.Time)
				if err != nil {
					return err
				}
				b, err := json.Marshal(r)
				if err != nil {
					return err
				}
				rw.Write(append(b, '\n'))
				if c.Size()%uint64(every) == 0 {
					if err := sign(); err != nil {
						return err
					}
				}
			}
			if c.Size()%uint64(every) != 0 {
				if err := sign(); err != nil {
					return err
				}
			}
			if err := rw.Flush(); err != nil {
				return err
			}
			if err := cw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "chained %d records, root %s\n", c.Size(), c.Root())
			return nil
		},
	}
	f := appendCmd.Flags()
	f.StringVar(&origin, "origin", "", "checkpoint origin, <deployment>/<topic>/<partition>")
	f.Int32Var(&partition, "partition", 0, "partition number")
	f.StringVar(&signerKey, "signer-key", "", "file with the checkpoint signing key")
	f.StringVar(&recordsOut, "records", "", "output file for chained records (NDJSON)")
	f.StringVar(&checkpointsOut, "checkpoints", "", "output file for signed checkpoints (NDJSON)")
	f.IntVar(&every, "checkpoint-every", 1000, "sign a checkpoint every N records (and after the last)")
	cmd.AddCommand(appendCmd)
	return cmd
}
