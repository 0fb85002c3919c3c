package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/kafka"
)

// ErrNotFound is wrapped by Bucket.Get for a key that does not exist.
var ErrNotFound = errors.New("archive: object not found")

// Bucket is read access to an archive: an S3 bucket (package sink/s3) or a copy of
// one on disk.
type Bucket interface {
	// List returns every key under prefix, in key order.
	List(ctx context.Context, prefix string) ([]string, error)
	// Dirs returns the "directories" directly under prefix (keys up to the next
	// "/", inclusive), in key order.
	Dirs(ctx context.Context, prefix string) ([]string, error)
	// Get returns an object's content; a missing key wraps ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
}

// VerifyOptions say what a valid archive is signed by.
type VerifyOptions struct {
	// Deployment and Topic (default audit.chained) form the checkpoint origins,
	// <deployment>/<topic>/<partition>.
	Deployment, Topic string
	Verifiers         note.Verifiers
	// Partitions limits the walk; nil verifies every partition found.
	Partitions []int32
}

// Problem is one thing wrong with the archive, naming the object concerned.
type Problem struct {
	Partition int32  `json:"partition"`
	Key       string `json:"key,omitempty"`
	Detail    string `json:"detail"`
}

func (p Problem) String() string {
	if p.Key == "" {
		return fmt.Sprintf("partition %d: %s", p.Partition, p.Detail)
	}
	return fmt.Sprintf("partition %d: %s: %s", p.Partition, p.Key, p.Detail)
}

// PartitionReport is what was verified of one partition.
type PartitionReport struct {
	Partition   int32  `json:"partition"`
	Records     uint64 `json:"records"`
	Segments    int    `json:"segments"`
	Objects     int    `json:"objects"`
	Checkpoints int    `json:"checkpoints"`
	Manifests   int    `json:"manifests"`
	// AnchoredSize is the largest checkpoint whose root the records reproduce;
	// Unanchored counts archived records after it (chained, not yet signed).
	AnchoredSize uint64 `json:"anchored_size"`
	Unanchored   uint64 `json:"unanchored"`
	Root         string `json:"root,omitempty"`
}

// Report is the outcome of Verify; the archive is intact when Problems is empty.
type Report struct {
	Partitions []PartitionReport `json:"partitions"`
	Problems   []Problem         `json:"problems"`
}

// Verify walks the archive: for each partition, the digest chain from seq 0, every
// object's hash, every record's chain link and leaf hash, every signed checkpoint's
// root (so every record before the last checkpoint is proven included), and the daily
// manifests. It reports every problem it can name rather than stopping at the first;
// the error is for failures to read the archive at all.
func Verify(ctx context.Context, b Bucket, l Layout, opts VerifyOptions) (Report, error) {
	if opts.Topic == "" {
		opts.Topic = kafka.ChainedTopic
	}
	parts := opts.Partitions
	if parts == nil {
		var err error
		if parts, err = partitions(ctx, b, l); err != nil {
			return Report{}, err
		}
	}
	var rep Report
	for _, p := range parts {
		pr, problems, err := verifyPartition(ctx, b, l, opts, p)
		if err != nil {
			return rep, err
		}
		rep.Partitions = append(rep.Partitions, pr)
		rep.Problems = append(rep.Problems, problems...)
	}
	if len(parts) == 0 {
		rep.Problems = append(rep.Problems, Problem{Partition: -1, Key: l.ChainRoot(), Detail: "no partition digests found: the prefix holds no archive"})
	}
	return rep, nil
}

func partitions(ctx context.Context, b Bucket, l Layout) ([]int32, error) {
	seen := map[int32]bool{}
	for _, root := range []string{l.ChainRoot(), l.join("checkpoints/")} {
		dirs, err := b.Dirs(ctx, root)
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			s := strings.TrimSuffix(strings.TrimPrefix(d, root+"partition="), "/")
			n, err := strconv.ParseInt(s, 10, 32)
			if err != nil {
				continue
			}
			seen[int32(n)] = true
		}
	}
	var out []int32
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

type partitionWalk struct {
	ctx      context.Context
	b        Bucket
	l        Layout
	p        int32
	rep      PartitionReport
	problems []Problem

	// The digest walk: v extends the chain segment by segment (nil once it
	// cannot: the rest is still checked object by object); listed is every
	// digest key; prev is the digest before the current one.
	v        *chain.Verifier
	listed   map[string]bool
	digests  map[string]string   // key -> sha256
	days     map[string][]string // day -> digest keys
	dayOrder []string
	prev     *Digest
	prevRef  *Ref
}

func (w *partitionWalk) problem(key, format string, args ...any) {
	w.problems = append(w.problems, Problem{Partition: w.p, Key: key, Detail: fmt.Sprintf(format, args...)})
}

func verifyPartition(ctx context.Context, b Bucket, l Layout, opts VerifyOptions, p int32) (PartitionReport, []Problem, error) {
	w := &partitionWalk{ctx: ctx, b: b, l: l, p: p, rep: PartitionReport{Partition: p},
		listed: map[string]bool{}, digests: map[string]string{}, days: map[string][]string{}}
	cps, err := w.checkpoints()
	if err != nil {
		return w.rep, nil, err
	}
	origin := chain.Origin(opts.Deployment, opts.Topic, p)
	if w.v, err = chain.NewVerifier(origin, p, opts.Verifiers, cps); err != nil {
		w.problem(l.CheckpointDir(p), "checkpoints: %v", err)
		w.v = nil
	}
	keys, err := b.List(ctx, l.DigestDir(p))
	if err != nil {
		return w.rep, nil, err
	}
	for _, k := range keys {
		w.listed[k] = true
	}
	for _, key := range keys {
		if err := w.digest(key); err != nil {
			return w.rep, nil, err
		}
	}
	if w.v != nil {
		sum, err := w.v.Finish()
		if err != nil {
			w.problem("", "chain: %v (if the exporter is behind the chainer, the checkpoint archive can lead the records briefly)", err)
		} else {
			w.rep.AnchoredSize, w.rep.Unanchored, w.rep.Root = sum.AnchoredSize, sum.Unanchored(), sum.Root.String()
		}
	}
	if err := w.manifests(w.digests, w.days, w.dayOrder); err != nil {
		return w.rep, nil, err
	}
	return w.rep, w.problems, nil
}

// digest checks one segment digest: its content against its key, its link to the
// digest before it, and its segment, whose records extend the chain.
func (w *partitionWalk) digest(key string) error {
	data, err := w.b.Get(w.ctx, key)
	if err != nil {
		return err
	}
	sum := Sum(data)
	w.digests[key] = sum
	var d Digest
	if err := jsonv2.Unmarshal(data, &d, jsonv2.RejectUnknownMembers(true)); err != nil {
		w.problem(key, "not a segment digest: %v", err)
		w.v = nil
		return nil
	}
	if want := w.l.Digest(w.p, d.Date, d.FirstSeq, d.LastSeq); want != key || d.Partition != w.p || d.LastSeq < d.FirstSeq {
		w.problem(key, "digest content (partition %d, %s, seqs %d..%d) does not match its key", d.Partition, d.Date, d.FirstSeq, d.LastSeq)
	}
	if _, ok := w.days[d.Date]; !ok {
		w.dayOrder = append(w.dayOrder, d.Date)
	}
	w.days[d.Date] = append(w.days[d.Date], key)
	w.rep.Segments++
	if !w.linked(key, &d) {
		w.v = nil
	}
	recs := w.segment(key, &d)
	if recs == nil {
		w.v = nil
	}
	if w.v != nil {
		for _, r := range recs {
			if err := w.v.Add(r); err != nil {
				w.problem(key, "chain: %v", err)
				w.v = nil
				break
			}
		}
	}
	w.prev, w.prevRef = &d, &Ref{Key: key, SHA256: sum}
	return nil
}

// linked checks that d follows the previous digest (or starts the archive at seq
// 0) and reports what breaks the link; false when records are missing or out of
// order, so the chain cannot be followed past d. An altered predecessor is
// reported but keeps the chain: its records are checked on their own.
func (w *partitionWalk) linked(key string, d *Digest) bool {
	prev, prevRef := w.prev, w.prevRef
	switch {
	case prev == nil && d.Previous != nil:
		if !w.listed[d.Previous.Key] {
			w.problem(d.Previous.Key, "missing: the first digest present, %s (seqs %d..%d), names it as its predecessor; records before seq %d are not in the archive", key, d.FirstSeq, d.LastSeq, d.FirstSeq)
		} else {
			w.problem(key, "names previous digest %s, which does not precede it", d.Previous.Key)
		}
		return false
	case prev == nil && d.FirstSeq != 0:
		w.problem(key, "the archive starts at seq %d, not 0", d.FirstSeq)
		return false
	case prev != nil && (d.Previous == nil || d.Previous.Key != prevRef.Key):
		named := "none"
		if d.Previous != nil {
			named = d.Previous.Key
		}
		if d.Previous != nil && !w.listed[d.Previous.Key] {
			w.problem(d.Previous.Key, "missing: named as predecessor by %s; records %d..%d are not in the archive", key, prev.LastSeq+1, d.FirstSeq-1)
		} else {
			w.problem(key, "names previous digest %s, but the preceding digest is %s", named, prevRef.Key)
		}
		return false
	case prev != nil && d.Previous.SHA256 != prevRef.SHA256:
		w.problem(prevRef.Key, "altered: its SHA-256 is %s but %s recorded %s", prevRef.SHA256, key, d.Previous.SHA256)
	case prev != nil && d.FirstSeq != prev.LastSeq+1:
		w.problem(key, "starts at seq %d but the previous segment ended at %d", d.FirstSeq, prev.LastSeq)
		return false
	}
	return true
}

func (w *partitionWalk) checkpoints() ([]chain.SignedCheckpoint, error) {
	keys, err := w.b.List(w.ctx, w.l.CheckpointDir(w.p))
	if err != nil {
		return nil, err
	}
	var out []chain.SignedCheckpoint
	for _, k := range keys {
		data, err := w.b.Get(w.ctx, k)
		if err != nil {
			return nil, err
		}
		var sc chain.SignedCheckpoint
		if err := json.Unmarshal(data, &sc); err != nil {
			w.problem(k, "not a signed checkpoint: %v", err)
			continue
		}
		if cp, err := sc.Unverified(); err != nil || w.l.Checkpoint(w.p, cp.Size) != k {
			w.problem(k, "checkpoint does not match its key (%v)", err)
			continue
		}
		out = append(out, sc)
	}
	w.rep.Checkpoints = len(out)
	return out, nil
}

// segment reads and checks a digest's objects and returns its records in seq order,
// or nil if any is missing or altered (the chain cannot be followed past it).
func (w *partitionWalk) segment(key string, d *Digest) []chain.Record {
	var recs []chain.Record
	ok := true
	for _, o := range d.Objects {
		w.rep.Objects++
		data, err := w.b.Get(w.ctx, o.Key)
		if errors.Is(err, ErrNotFound) {
			w.problem(o.Key, "missing: listed by %s with %d records of tenant %s (seqs %d..%d)", key, o.Records, o.Tenant, o.FirstSeq, o.LastSeq)
			ok = false
			continue
		}
		if err != nil {
			w.problem(o.Key, "unreadable: %v", err)
			ok = false
			continue
		}
		if s := Sum(data); s != o.SHA256 {
			w.problem(o.Key, "altered: its SHA-256 is %s but %s recorded %s", s, key, o.SHA256)
			ok = false
			continue
		}
		if want := w.l.Object(o.Tenant, w.p, d.Date, o.FirstSeq, o.LastSeq); want != o.Key {
			w.problem(o.Key, "listed under the wrong key (want %s)", want)
			ok = false
		}
		rs, err := ReadObject(data)
		if err != nil {
			w.problem(o.Key, "%v", err)
			ok = false
			continue
		}
		for _, r := range rs {
			if r.Partition != w.p || r.Seq < d.FirstSeq || r.Seq > d.LastSeq {
				w.problem(o.Key, "record %d/%d does not belong to this segment (partition %d, seqs %d..%d)", r.Partition, r.Seq, w.p, d.FirstSeq, d.LastSeq)
				ok = false
			}
			if t, err := tenantOf(r.Event); err != nil || t != o.Tenant {
				w.problem(o.Key, "record %d/%d is tenant %q, stored under tenant %q", r.Partition, r.Seq, t, o.Tenant)
				ok = false
			}
		}
		if len(rs) != o.Records {
			w.problem(o.Key, "holds %d records, digest says %d", len(rs), o.Records)
			ok = false
		}
		recs = append(recs, rs...)
	}
	if !ok {
		return nil
	}
	slices.SortFunc(recs, func(a, b chain.Record) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	for i, r := range recs {
		if r.Seq != d.FirstSeq+uint64(i) {
			w.problem(key, "segment should hold seqs %d..%d; seq %d is missing or repeated", d.FirstSeq, d.LastSeq, d.FirstSeq+uint64(i))
			return nil
		}
	}
	if uint64(len(recs)) != d.LastSeq-d.FirstSeq+1 {
		w.problem(key, "segment should hold %d records, its objects hold %d", d.LastSeq-d.FirstSeq+1, len(recs))
		return nil
	}
	w.rep.Records += uint64(len(recs))
	return recs
}

func (w *partitionWalk) manifests(digests map[string]string, days map[string][]string, dayOrder []string) error {
	keys, err := w.b.List(w.ctx, w.l.ManifestDir(w.p))
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, k := range keys {
		data, err := w.b.Get(w.ctx, k)
		if err != nil {
			return err
		}
		var m Manifest
		if err := jsonv2.Unmarshal(data, &m, jsonv2.RejectUnknownMembers(true)); err != nil || w.l.Manifest(w.p, m.Date) != k {
			w.problem(k, "not the manifest its key names (%v)", err)
			continue
		}
		w.rep.Manifests++
		have[m.Date] = true
		inManifest := map[string]bool{}
		for _, d := range m.Digests {
			inManifest[d.Key] = true
			sum, ok := digests[d.Key]
			switch {
			case !ok:
				w.problem(d.Key, "missing: listed by manifest %s", k)
			case sum != d.SHA256:
				w.problem(d.Key, "altered: SHA-256 %s, manifest %s recorded %s", sum, k, d.SHA256)
			}
		}
		for _, dk := range days[m.Date] {
			if !inManifest[dk] {
				w.problem(dk, "not listed by the manifest of its day, %s", k)
			}
		}
	}
	// The last day is still open: its manifest is written when the next day starts.
	for i, day := range dayOrder {
		if i < len(dayOrder)-1 && !have[day] {
			w.problem(w.l.Manifest(w.p, day), "missing: day %s is closed (later days exist) but has no manifest", day)
		}
	}
	return nil
}

// ReadObject decodes a data object: gzip NDJSON, one chained record per line.
func ReadObject(data []byte) ([]chain.Record, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	var out []chain.Record
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var r chain.Record
		if err := r.UnmarshalJSON(bytes.Clone(sc.Bytes())); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

func tenantOf(ev []byte) (string, error) {
	var h struct {
		Tenant string `json:"tenant"`
	}
	err := jsonv2.Unmarshal(ev, &h)
	return h.Tenant, err
}
