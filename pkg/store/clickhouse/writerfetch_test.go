package clickhouse_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// TestWriterPassesFetch shows WriterConfig.Fetch reaching the writer's consumer (the
// Runner validates it; sink's TestRunnerFetch holds the Runner to it): a writer that
// dropped it would accept a wait the Runner refuses.
func TestWriterPassesFetch(t *testing.T) {
	_, err := clickhouse.NewWriter(nil, clickhouse.WriterConfig{Brokers: []string{"127.0.0.1:1"}, Fetch: kafka.Fetch{MaxWait: time.Minute}})
	if err == nil || !strings.Contains(err.Error(), "TRAILKEEP_KAFKA_FETCH_MAX_WAIT=1m0s") {
		t.Fatalf("error %v, want the fetch wait refused", err)
	}
}
