package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// chainOptions are the flags of trailctl chain append.
type chainOptions struct {
	origin, signerKey, recordsOut, checkpointsOut string
	partition                                     int32
	every                                         int
}

func newChainCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "chain", Short: "Chain canonical events offline"}
	var o chainOptions
	appendCmd := &cobra.Command{
		Use:   "append [FILE|-]",
		Short: "Chain canonical events (NDJSON) into records and signed checkpoints",
		Long: `Chains canonical events into a new partition log, exactly as the chainer does,
writing chained records and signed checkpoints as NDJSON. Each record's
chained_at is its event's received_at, so the output is a pure function of
the input: running it twice gives identical files. Every event must already
be canonical (see 'trailctl event canonicalize').`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd, argOr(args, "-")) },
	}
	f := appendCmd.Flags()
	f.StringVar(&o.origin, "origin", "", "checkpoint origin, <deployment>/<topic>/<partition>")
	f.Int32Var(&o.partition, "partition", 0, "partition number")
	f.StringVar(&o.signerKey, "signer-key", "", "file with the checkpoint signing key")
	f.StringVar(&o.recordsOut, "records", "", "output file for chained records (NDJSON)")
	f.StringVar(&o.checkpointsOut, "checkpoints", "", "output file for signed checkpoints (NDJSON)")
	f.IntVar(&o.every, "checkpoint-every", 1000, "sign a checkpoint every N records (and after the last)")
	cmd.AddCommand(appendCmd)
	return cmd
}

// run chains the events of input into the two output files; a write or close
// error of either file fails the command.
func (o *chainOptions) run(cmd *cobra.Command, input string) (err error) {
	if o.origin == "" || o.signerKey == "" || o.recordsOut == "" || o.checkpointsOut == "" {
		return usageError(fmt.Errorf("--origin, --signer-key, --records and --checkpoints are required"))
	}
	if o.every < 1 {
		return usageError(fmt.Errorf("--checkpoint-every must be at least 1"))
	}
	skey, err := readSigner(o.signerKey)
	if err != nil {
		return err
	}
	signer, err := chain.NewSigner(skey)
	if err != nil {
		return err
	}
	in, err := openInput(input)
	if err != nil {
		return err
	}
	defer in.Close()
	create := func(name string) (*os.File, *bufio.Writer, error) {
		f, err := os.Create(name)
		if err != nil {
			return nil, nil, err
		}
		return f, bufio.NewWriter(f), nil
	}
	rf, rw, err := create(o.recordsOut)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rw.Flush(), rf.Close()) }()
	cf, cw, err := create(o.checkpointsOut)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cw.Flush(), cf.Close()) }()
	c, err := o.chainLines(in, signer, rw, cw)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "chained %d records, root %s\n", c.Size(), c.Root())
	return nil
}

// chainLines appends each canonical event line to a new chain, writing records to
// rw and a checkpoint to cw every o.every records and after the last.
func (o *chainOptions) chainLines(in io.Reader, signer note.Signer, rw, cw io.Writer) (*chain.Chain, error) {
	c := chain.New(o.partition)
	writeJSON := func(w io.Writer, v any) error {
		b, err := json.Marshal(v)
		if err == nil {
			_, err = w.Write(append(b, '\n'))
		}
		return err
	}
	sign := func() error {
		cp, err := c.Sign(o.origin, signer)
		if err != nil {
			return err
		}
		return writeJSON(cw, cp)
	}
	for n, l := range lines(in, event.DefaultLimits.MaxEventBytes+1) {
		if n < 0 {
			return nil, fmt.Errorf("read: %s", l)
		}
		ev, err := event.CheckCanonical(l, event.DefaultLimits)
		if err != nil {
			return nil, failed("line %d: %v", n, err)
		}
		r, err := c.Append(append([]byte(nil), l...), ev.ReceivedAt.Time)
		if err != nil {
			return nil, err
		}
		if err := writeJSON(rw, r); err != nil {
			return nil, err
		}
		if c.Size()%uint64(o.every) == 0 {
			if err := sign(); err != nil {
				return nil, err
			}
		}
	}
	if c.Size()%uint64(o.every) != 0 {
		if err := sign(); err != nil {
			return nil, err
		}
	}
	return c, nil
}
