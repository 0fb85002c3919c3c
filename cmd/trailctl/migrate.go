package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sethvargo/go-envconfig"
	"github.com/spf13/cobra"

	"github.com/trailkeep/trailkeep/internal/migrate"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

func newMigrateCmd() *cobra.Command {
	var (
		o       migrate.Options
		brokers string
		repl    int
	)
	cmd := &cobra.Command{
		Use:   "migrate --from DIR --brokers HOST:PORT[,...]",
		Short: "Move a stopped trailkeep dev's log into a Kafka cluster, chains and checkpoints unchanged",
		Long: `Copies the log of a trailkeep dev data directory (stop trailkeep dev first) into an
empty Kafka cluster: audit.chained, audit.checkpoints and audit.deadletter record for
record on the same partitions, and the events the dev chainer had not chained yet.
Then start the destination's chainer, ClickHouse writer and exporter with the
deployment name printed here and the dev signing key (DIR/secrets/checkpoints.key):
the writer and exporter store and archive the whole history, the chainer continues
every chain, and trailctl verify --store and --s3 pass on the copy.

TLS and SASL for the destination come from the TRAILKEEP_KAFKA_* environment, as
for every trailkeep binary.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if brokers == "" {
				return usageError(errors.New("--brokers is required (the destination cluster)"))
			}
			if repl < -1 || repl == 0 || repl > 32767 {
				return usageError(fmt.Errorf("--replication %d: want -1 (the broker default) or a positive factor", repl))
			}
			var sec kafka.Security
			if err := envconfig.Process(cmd.Context(), &sec); err != nil {
				return usageError(fmt.Errorf("destination security: %w", err))
			}
			opts, err := sec.Opts()
			if err != nil {
				return usageError(fmt.Errorf("destination security: %w", err))
			}
			o.Brokers, o.ClientOpts, o.Replication = strings.Split(brokers, ","), opts, int16(repl)
			o.Progress = cmd.ErrOrStderr()
			res, err := migrate.Run(cmd.Context(), o)
			var refused *migrate.RefusedError
			if errors.As(err, &refused) {
				return failed("%w", err)
			}
			if err != nil {
				return err
			}
			var records int64
			for _, p := range res.Partitions {
				records += p.Records
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "migrated %d records on %d partitions from %s to %s\n", records, len(res.Partitions), o.DataDir, brokers)
			deployment := res.Deployment
			if deployment == "" {
				deployment = "<the --deployment trailkeep dev ran with; default dev>"
				fmt.Fprintln(w, "no checkpoint was signed yet, so the log does not name its deployment")
			}
			fmt.Fprintf(w, "run the destination with TRAILKEEP_DEPLOYMENT=%s and TRAILKEEP_SIGNER_KEY_FILE=<a copy of %s/secrets/checkpoints.key>\n", deployment, o.DataDir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "from", "./trailkeep-data", "the trailkeep dev data directory (trailkeep dev stopped)")
	f.StringVar(&brokers, "brokers", "", "the destination Kafka brokers, comma-separated")
	f.IntVar(&repl, "replication", -1, "replication factor of the topics migrate creates (-1: the broker default)")
	f.StringVar(&o.ChainerGroup, "chainer-group", "trailkeep-chainer", "the dev chainer's consumer group (its offsets mark what is chained)")
	return cmd
}
