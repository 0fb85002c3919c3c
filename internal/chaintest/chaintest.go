// Package chaintest builds real chained records and signed checkpoints for tests:
// canonical events through the same stamping and canonicalisation as ingest, chained
// and signed as the chainer does, so stored data verifies with the public key.
package chaintest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/kafka"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// Log is a set of partitions being chained.
type Log struct {
	t           testing.TB
	Deployment  string
	Topic       string
	Every       uint64 // sign a checkpoint every Every records (0: only on Sign)
	chains      map[int32]*chain.Chain
	sign        func(c *chain.Chain, origin string) chain.SignedCheckpoint
	VerifierKey string
	// Signer signs the log's checkpoints (for tests that sign something else).
	Signer      note.Signer
	Records     []chain.Record
	Checkpoints []clickhouse.StoredCheckpoint
}

// New returns a log signed by a fresh key, with origins deployment/audit.chained/P.
func New(t testing.TB, deployment string, every uint64) *Log {
	t.Helper()
	skey, vkey, err := chain.GenerateKey(deployment)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := chain.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &Log{t: t, Deployment: deployment, Topic: kafka.ChainedTopic, Every: every, chains: map[int32]*chain.Chain{}, VerifierKey: vkey, Signer: signer,
		sign: func(c *chain.Chain, origin string) chain.SignedCheckpoint {
			cp, err := c.Sign(origin, signer)
			if err != nil {
				t.Fatal(err)
			}
			return cp
		}}
}

// Origin is the checkpoint origin of partition p.
func (l *Log) Origin(p int32) string { return chain.Origin(l.Deployment, l.Topic, p) }

// Event stamps and canonicalises doc as ingest would for tenant at receivedAt.
func Event(t testing.TB, tenant string, receivedAt time.Time, doc map[string]any) []byte {
	t.Helper()
	if err := (event.Stamp{Tenant: tenant, Tool: "registry", ReceivedAt: receivedAt}).Apply(doc); err != nil {
		t.Fatal(err)
	}
	_, canon, err := event.Canonicalize(doc, event.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return canon
}

// Add chains doc (stamped for tenant, received and chained at at) on partition p,
// signing a checkpoint when Every records have accumulated.
func (l *Log) Add(p int32, tenant string, at time.Time, doc map[string]any) chain.Record {
	l.t.Helper()
	c := l.chains[p]
	if c == nil {
		c = chain.New(p)
		l.chains[p] = c
	}
	rec, err := c.Append(Event(l.t, tenant, at, doc), at)
	if err != nil {
		l.t.Fatal(err)
	}
	l.Records = append(l.Records, rec)
	if l.Every > 0 && c.Size()%l.Every == 0 {
		l.Sign(p)
	}
	return rec
}

// Sign signs a checkpoint of partition p at its current size.
func (l *Log) Sign(p int32) chain.SignedCheckpoint {
	cp := l.sign(l.chains[p], l.Origin(p))
	l.Checkpoints = append(l.Checkpoints, clickhouse.StoredCheckpoint{Partition: p, SignedCheckpoint: cp})
	return cp
}

// PublicKeyFile writes the verifier key to a file and returns its path.
func (l *Log) PublicKeyFile() string {
	path := filepath.Join(l.t.TempDir(), "log.pub")
	if err := os.WriteFile(path, []byte(l.VerifierKey+"\n"), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return path
}

// Doc is a minimal valid event body.
func Doc(action, actorID, resourceType, resourceID string) map[string]any {
	return map[string]any{"action": action, "actor": map[string]any{"type": "user", "id": actorID},
		"resource": map[string]any{"type": resourceType, "id": resourceID}, "result": map[string]any{"status": "success"}}
}
