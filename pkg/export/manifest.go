package export

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// Manifest describes one export: what was asked, what was written and which signed
// checkpoints cover it. It is signed as a note by the exporter's key, so a recipient
// can tell the file is complete and unaltered, and then prove any record against
// the listed checkpoints.
type Manifest struct {
	Version   int      `json:"version"`
	Query     string   `json:"query"`
	Tenants   []string `json:"tenants"` // empty: every tenant
	Format    string   `json:"format"`
	CreatedAt string   `json:"created_at"`
	CreatedBy string   `json:"created_by"`
	File      File     `json:"file"`
	Rows      uint64   `json:"rows"`
	// OccurredFrom and OccurredTo are the earliest and latest occurred_at exported.
	OccurredFrom string      `json:"occurred_from,omitempty"`
	OccurredTo   string      `json:"occurred_to,omitempty"`
	Partitions   []Partition `json:"partitions"`
}

// File identifies the exported file.
type File struct {
	Name   string `json:"name"`
	Bytes  uint64 `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Partition is the part of one chain partition in the export.
type Partition struct {
	Partition int32  `json:"partition"`
	Rows      uint64 `json:"rows"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	// Checkpoint is the first signed checkpoint covering LastSeq (and so every
	// exported record of the partition); empty when none is signed yet.
	Checkpoint string `json:"checkpoint,omitempty"`
	// CheckpointSize is that checkpoint's tree size.
	CheckpointSize uint64 `json:"checkpoint_size,omitempty"`
}

// Tracker accumulates a manifest while records are exported, and hashes the bytes
// written through Writer.
type Tracker struct {
	m     Manifest
	parts map[int32]*Partition
	from  time.Time
	to    time.Time
	h     hash.Hash
	n     uint64
}

// NewTracker starts a manifest for an export of query over tenants in format.
func NewTracker(query string, tenants []string, format, createdBy string, now time.Time) *Tracker {
	return &Tracker{m: Manifest{Version: 1, Query: query, Tenants: tenants, Format: format, CreatedAt: formatTime(now), CreatedBy: createdBy},
		parts: map[int32]*Partition{}, h: sha256.New()}
}

// Writer wraps w so the tracker hashes and counts what the encoder writes.
func (t *Tracker) Writer(w io.Writer) io.Writer { return io.MultiWriter(w, trackWriter{t}) }

type trackWriter struct{ t *Tracker }

func (w trackWriter) Write(b []byte) (int, error) {
	w.t.h.Write(b)
	w.t.n += uint64(len(b))
	return len(b), nil
}

// Observe records that rec (whose event is ev) was written.
func (t *Tracker) Observe(rec chain.Record, ev *event.Event) {
	t.m.Rows++
	p := t.parts[rec.Partition]
	if p == nil {
		p = &Partition{Partition: rec.Partition, FirstSeq: rec.Seq}
		t.parts[rec.Partition] = p
	}
	p.Rows++
	p.FirstSeq, p.LastSeq = min(p.FirstSeq, rec.Seq), max(p.LastSeq, rec.Seq)
	at := ev.OccurredAt.Time
	if t.from.IsZero() || at.Before(t.from) {
		t.from = at
	}
	if at.After(t.to) {
		t.to = at
	}
}

// Encode parses rec's canonical event, records rec in the manifest and writes it
// with enc: the one step every export does per record.
func (t *Tracker) Encode(enc Encoder, rec chain.Record) error {
	ev, err := event.Unmarshal(rec.Event)
	if err != nil {
		return fmt.Errorf("export: stored event %d/%d: %w", rec.Partition, rec.Seq, err)
	}
	t.Observe(rec, ev)
	return enc.Write(rec, ev)
}

// Rows is how many records were observed so far.
func (t *Tracker) Rows() uint64 { return t.m.Rows }

// PartitionRanges lists the observed partitions in order.
func (t *Tracker) PartitionRanges() []*Partition {
	var out []*Partition
	for _, p := range t.parts {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Partition) int { return int(a.Partition) - int(b.Partition) })
	return out
}

// Finish completes the manifest with the file name. Set each partition's
// checkpoint (through PartitionRanges) before calling it.
func (t *Tracker) Finish(fileName string) Manifest {
	m := t.m
	m.File = File{Name: fileName, Bytes: t.n, SHA256: hex.EncodeToString(t.h.Sum(nil))}
	m.OccurredFrom, m.OccurredTo = formatTime(t.from), formatTime(t.to)
	m.Partitions = []Partition{}
	for _, p := range t.PartitionRanges() {
		m.Partitions = append(m.Partitions, *p)
	}
	return m
}

// Sign returns the manifest as a signed note: indented JSON, then the signature.
func Sign(m Manifest, signer note.Signer) ([]byte, error) {
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	signed, err := note.Sign(&note.Note{Text: string(body) + "\n"}, signer)
	if err != nil {
		return nil, fmt.Errorf("export: sign manifest: %w", err)
	}
	return signed, nil
}

// ErrManifest wraps every reason a manifest or its file does not check out.
var ErrManifest = errors.New("export: manifest check failed")

// Open verifies a signed manifest with the exporter's public keys and parses it.
func Open(signed []byte, verifiers note.Verifiers) (Manifest, error) {
	var m Manifest
	n, err := note.Open(signed, verifiers)
	if err != nil {
		return m, fmt.Errorf("%w: signature: %v", ErrManifest, err)
	}
	if err := json.Unmarshal([]byte(n.Text), &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	return m, nil
}

// CheckFile compares the exported bytes in r with the manifest's size and hash.
func (m Manifest) CheckFile(r io.Reader) error {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return err
	}
	if uint64(n) != m.File.Bytes || hex.EncodeToString(h.Sum(nil)) != m.File.SHA256 {
		return fmt.Errorf("%w: the file has %d bytes with sha256 %x; the manifest lists %d bytes with sha256 %s",
			ErrManifest, n, h.Sum(nil), m.File.Bytes, m.File.SHA256)
	}
	return nil
}

// CheckCheckpoints verifies every listed checkpoint with the log's public keys and
// checks that it covers the partition's exported records.
func (m Manifest) CheckCheckpoints(verifiers note.Verifiers) (uncovered []int32, err error) {
	for _, p := range m.Partitions {
		if p.Checkpoint == "" {
			uncovered = append(uncovered, p.Partition)
			continue
		}
		cp, err := chain.SignedCheckpoint{Note: chain.NoteText(p.Checkpoint)}.Open("", verifiers)
		if err != nil {
			return nil, fmt.Errorf("%w: partition %d checkpoint: %v", ErrManifest, p.Partition, err)
		}
		if cp.Size != p.CheckpointSize || cp.Size <= p.LastSeq {
			return nil, fmt.Errorf("%w: partition %d checkpoint of size %d does not cover seq %d", ErrManifest, p.Partition, cp.Size, p.LastSeq)
		}
	}
	return uncovered, nil
}
