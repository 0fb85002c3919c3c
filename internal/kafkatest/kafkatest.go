// Package kafkatest starts the real single-node Kafka broker (scripts/kafka.sh) for
// integration tests. A broker that cannot start fails the test with the script's
// output; it is never skipped.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailkeep/trailkeep/internal/repo"
)

// root is the repository root; a test that cannot find it fails.
func root(t testing.TB) string {
	t.Helper()
	r, err := repo.Root()
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	return r
}

// Broker is one local broker started by scripts/kafka.sh.
type Broker struct {
	Addr string
	env  []string
	root string
}

// Shared returns the default local broker (127.0.0.1:19092, .run/kafka), starting it
// if needed. It is left running for the next test binary; scripts/kafka.sh stop ends it.
func Shared(t testing.TB) *Broker {
	t.Helper()
	b := &Broker{Addr: "127.0.0.1:19092", root: root(t)}
	b.Start(t)
	return b
}

// Private starts a broker of its own on the given ports with its data under
// .run/<name>, for tests that stop and restart the broker. It is stopped when the
// test ends.
func Private(t testing.TB, name string, port int) *Broker {
	t.Helper()
	r := root(t)
	b := &Broker{
		Addr: "127.0.0.1:" + strconv.Itoa(port),
		root: r,
		env: []string{
			"TRAILKEEP_KAFKA_PORT=" + strconv.Itoa(port),
			"TRAILKEEP_KAFKA_CONTROLLER_PORT=" + strconv.Itoa(port+1),
			"TRAILKEEP_KAFKA_DIR=" + filepath.Join(r, ".run", name),
		},
	}
	t.Cleanup(func() { b.run(t, "stop") })
	b.Start(t)
	return b
}

// Start starts the broker (a no-op when it already runs) and waits until it serves
// metadata.
func (b *Broker) Start(t testing.TB) {
	t.Helper()
	b.run(t, "start")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatalf("kafkatest: client: %v", err)
	}
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cl.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: broker %s started but does not answer: %v (see .run/*/logs)", b.Addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the broker gracefully.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	b.run(t, "stop")
}

func (b *Broker) run(t testing.TB, verb string) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(b.root, "scripts", "kafka.sh"), verb)
	cmd.Env = append(os.Environ(), b.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kafkatest: scripts/kafka.sh %s: %v\n%s", verb, err, out)
	}
}

// Topic returns a fresh topic name so tests sharing a broker never see each other's
// records.
func Topic(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + "." + hex.EncodeToString(b[:])
}
