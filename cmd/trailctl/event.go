package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/redact"
)

func newEventCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "event", Short: "Validate and canonicalise events"}
	var tenant, tool, ipKeyFile string
	canon := &cobra.Command{
		Use:   "canonicalize [FILE|-]",
		Short: "Read events (NDJSON), stamp them as ingest would and print their canonical bytes",
		Long: `Reads one event per line, applies the server-side stamp (id, tenant, source
tool, received_at, IP HMAC), redacts secrets, validates against schemas/event/v1.schema.json and
prints the RFC 8785 canonical bytes, one per line. Rejected lines are reported
on stderr with the field and rule; the exit code is 1 if any line was rejected.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tenant == "" {
				return &exitError{code: 2, err: fmt.Errorf("--tenant is required")}
			}
			var ipKey []byte
			if ipKeyFile != "" {
				b, err := os.ReadFile(ipKeyFile)
				if err != nil {
					return err
				}
				if ipKey, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil || len(ipKey) < 16 {
					return fmt.Errorf("%s: want at least 16 bytes of hex", ipKeyFile)
				}
			}
			in, err := openInput(argOr(args, "-"))
			if err != nil {
				return err
			}
			defer in.Close()
			red, err := redact.New()
			if err != nil {
				return err
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			rejected := 0
			for n, l := range lines(in, 16<<20) {
				if n < 0 {
					return fmt.Errorf("read: %s", l)
				}
				ev, err := stampAndCanonicalize(l, event.Stamp{Tenant: tenant, Tool: tool, ReceivedAt: time.Now(), IPKey: ipKey}, red)
				if err != nil {
					rejected++
					fmt.Fprintf(cmd.ErrOrStderr(), "line %d: %v\n", n, err)
					continue
				}
				out.Write(ev)
				out.WriteByte('\n')
			}
			if rejected > 0 {
				return failed("%d event(s) rejected", rejected)
			}
			return nil
		},
	}
	canon.Flags().StringVar(&tenant, "tenant", "", "tenant the events belong to (as bound to an ingest token)")
	canon.Flags().StringVar(&tool, "tool", "", "source tool the events come from (fills source.tool)")
	canon.Flags().StringVar(&ipKeyFile, "ip-key-file", "", "file with the tenant's hex HMAC key for client IP addresses")
	cmd.AddCommand(canon)
	return cmd
}

func stampAndCanonicalize(raw []byte, st event.Stamp, red *redact.Redactor) ([]byte, error) {
	doc, err := event.Decode(raw, event.DefaultLimits)
	if err != nil {
		return nil, err
	}
	if err := st.Apply(doc); err != nil {
		return nil, err
	}
	red.Document(doc) // as ingest does: no secret in what is printed either
	_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
	return canon, err
}

func argOr(args []string, def string) string {
	if len(args) > 0 {
		return args[0]
	}
	return def
}
