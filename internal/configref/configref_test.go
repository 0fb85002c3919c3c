package configref

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailkeep/trailkeep/internal/repo"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

var update = flag.Bool("update", false, "rewrite CONFIGURATION.md")

// TestReferenceIsCurrent regenerates the reference from the sources and compares it
// with CONFIGURATION.md.
func TestReferenceIsCurrent(t *testing.T) {
	root, vars := collect(t)
	for _, want := range []struct{ bin, name string }{
		{"ingest", "TRAILKEEP_INGEST_MAX_INFLIGHT_BYTES"}, {"ingest", "TRAILKEEP_KAFKA_SASL_MECHANISM"},
		{"chainer", "TRAILKEEP_CLICKHOUSE_TLS_CA_FILE"}, {"query", "TRAILKEEP_KAFKA_TLS_CA_FILE"}, {"trailctl", "TRAILKEEP_CLICKHOUSE_PASSWORD_FILE"},
	} {
		found := false
		for _, v := range vars[want.bin] {
			found = found || v.Name == want.name
		}
		if !found {
			t.Errorf("%s: %s not collected", want.bin, want.name)
		}
	}
	for bin, vs := range vars {
		for _, v := range vs {
			// Datadog's own variable names are read as its tools read them.
			if !strings.HasPrefix(v.Name, "TRAILKEEP_") && !strings.HasPrefix(v.Name, "DD_") {
				t.Errorf("%s: %s does not start with TRAILKEEP_", bin, v.Name)
			}
			if v.Doc == "" {
				t.Errorf("%s: %s has no doc comment: say what it means above the field", bin, v.Name)
			}
		}
	}
	got := Markdown(vars)
	path := filepath.Join(root, "CONFIGURATION.md")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(path)
	if err != nil || string(old) != got {
		t.Fatalf("CONFIGURATION.md is stale (or missing: %v); run go test ./internal/configref -update", err)
	}
}

// TestTopicDefaults holds every binary's topic variables to pkg/kafka's names: a
// binary defaulting to another name would split the data flow.
func TestTopicDefaults(t *testing.T) {
	_, vars := collect(t)
	want := map[string]string{
		"TRAILKEEP_EVENTS_TOPIC": kafka.EventsTopic, "TRAILKEEP_CHAINED_TOPIC": kafka.ChainedTopic,
		"TRAILKEEP_CHECKPOINTS_TOPIC": kafka.CheckpointsTopic, "TRAILKEEP_DEADLETTER_TOPIC": kafka.DeadLetterTopic,
		"TRAILKEEP_WRITER_DEADLETTER_TOPIC": kafka.WriterDeadLetterTopic,
	}
	seen := 0
	for bin, vs := range vars {
		for _, v := range vs {
			if w, ok := want[v.Name]; ok {
				seen++
				if v.Default != w {
					t.Errorf("%s: %s defaults to %q, pkg/kafka names it %q", bin, v.Name, v.Default, w)
				}
			}
		}
	}
	if seen < 6 {
		t.Errorf("found %d topic variables; the binaries name their topics with them", seen)
	}
}

// collect returns the repository root and every binary's variables.
func collect(t *testing.T) (string, map[string][]Var) {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	vars, err := Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, vars
}
