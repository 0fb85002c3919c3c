// Command trailctl is the operator and auditor tool for trailkeep. Offline, on
// files, it canonicalises events, chains them, verifies a chain with nothing but
// the public key, and makes and checks inclusion proofs; against ClickHouse it
// searches the stored audit log with the filter language (pkg/query).
//
// Exit codes: 0 success, 1 verification failure or rejected input, 2 usage
// error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/internal/version"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// failed reports a verification failure or rejected data (exit 1).
func failed(format string, args ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, args...)}
}

// usageError marks err as a usage mistake (exit code 2).
func usageError(err error) error { return &exitError{code: 2, err: err} }

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "trailctl",
		Short:         "Canonicalise, chain, verify and prove trailkeep audit records",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get("trailctl").Version,
	}
	// --version prints the same line as the services' --version.
	root.SetVersionTemplate(version.Get("trailctl").String() + "\n")
	root.AddCommand(newKeysCmd(), newEventCmd(), newChainCmd(), newVerifyCmd(), newProveCmd(), newVerifyProofCmd(), newExportCmd(), newVerifyExportCmd(), newSQLCmd(), newTailCmd(), newQueryCmd(), newHooksCmd(), newTokensCmd(), newInitCmd(), newLoadCmd(), newSearchCmd(), newTimelineCmd(), newDriftCmd(), newApprovalsCmd(), newMigrateCmd(), newTreeCmd())
	return root
}

func main() { os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr)) }

// execute runs trailctl and returns its exit code.
func execute(args []string, stdout, stderr io.Writer) int {
	return executeContext(context.Background(), args, stdout, stderr)
}

// executeContext runs trailctl until it ends or ctx does (tail -f stops then).
func executeContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "trailctl:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2 // flag and argument errors from cobra, unreadable files
}
