// Package s3 archives the chained audit log in an S3 bucket with Object Lock (WORM), in
// the layout package archive defines and verifies: per partition and day, one gzip
// NDJSON object per tenant for each segment of consecutive seqs, a digest per segment
// that lists the objects' SHA-256 and names the previous digest, the signed
// checkpoints beside them, and a manifest per closed day.
//
// Every object is written create-only (If-None-Match: *) under a deterministic key
// with deterministic content; a 412 counts as success once the stored object's
// SHA-256 matches, and any other content under that key stops the sink (an archive
// conflict is never papered over). Every upload carries a checksum (S3 refuses uploads
// with a retention period that have neither Content-MD5 nor an SDK checksum) and, when
// configured, Object Lock retention and a legal hold.
//
// On (re)assignment of a partition the sink reads the archive's last digest and skips
// records already archived, so a crash between upload and offset commit neither
// duplicates nor re-splits records in the archive, and it refuses to continue past a
// gap (a record Kafka no longer has) rather than archive a broken chain.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sync/errgroup"

	"github.com/trailkeep/trailkeep/pkg/archive"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/sink"
)

// Checksum modes for uploads.
const (
	// ChecksumSHA256 sends x-amz-checksum-sha256 (the hash the archive records
	// anyway). The default.
	ChecksumSHA256 = "sha256"
	// ChecksumCRC32 and ChecksumCRC32C let the SDK compute a CRC checksum.
	ChecksumCRC32  = "crc32"
	ChecksumCRC32C = "crc32c"
	// ChecksumMD5 sends Content-MD5 only, for S3-compatible servers that reject
	// the newer checksum headers.
	ChecksumMD5 = "md5"
)

// ClientConfig builds an S3 client.
type ClientConfig struct {
	// Endpoint is a custom endpoint (an S3-compatible server); empty for AWS.
	Endpoint string
	Region   string
	// AccessKey and SecretKey; empty uses the default AWS credential chain.
	AccessKey, SecretKey string
	// PathStyle addresses buckets as endpoint/bucket (most S3-compatible servers).
	PathStyle bool
	// Checksum is the upload checksum mode (see the Checksum constants); with
	// sha256 or md5 the SDK adds no checksum of its own.
	Checksum string
	// Retry leaves the SDK's retryer on (trailctl); the sink retries itself.
	Retry bool
}

// NewClient returns an S3 client for cc.
func NewClient(ctx context.Context, cc ClientConfig) (*s3.Client, error) {
	if cc.Region == "" {
		cc.Region = "us-east-1"
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cc.Region)}
	if cc.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cc.AccessKey, cc.SecretKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: aws configuration: %w", err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if cc.Endpoint != "" {
			o.BaseEndpoint = aws.String(cc.Endpoint)
		}
		o.UsePathStyle = cc.PathStyle
		switch cc.Checksum {
		case "", ChecksumSHA256, ChecksumMD5:
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if !cc.Retry {
			o.Retryer = aws.NopRetryer{}
		}
	}), nil
}

// Objects is a store of archive objects other than an S3 bucket: a local directory
// (pkg/archive/localdir, for trailkeep dev). PutNew writes a key only if it does not
// exist and reports whether it did.
type Objects interface {
	archive.Bucket
	PutNew(ctx context.Context, key string, body []byte) (existed bool, err error)
}

// Config configures the archive sink.
type Config struct {
	// Client and Bucket are the S3 bucket the archive is written to.
	Client *s3.Client
	Bucket string
	// Objects, instead of Client and Bucket, writes the same objects elsewhere. It
	// has no Object Lock, so Mode and LegalHold must be unset.
	Objects Objects
	// Prefix is the archive's root inside the bucket (may be empty).
	Prefix string
	// Mode is the Object Lock mode, types.ObjectLockModeCompliance or
	// types.ObjectLockModeGovernance; empty writes no retention (the bucket's
	// default retention, if any, still applies).
	Mode types.ObjectLockMode
	// Retention is how long each object is locked from its upload (HIPAA: 6
	// years). Required with Mode.
	Retention time.Duration
	// LegalHold puts a legal hold on every object.
	LegalHold bool
	// Checksum is the upload checksum mode; default sha256.
	Checksum string
	// Uploads bounds concurrent object uploads of one segment. Default 4.
	Uploads int
	Logger  *slog.Logger
	// Now is the clock for retain-until dates (tests).
	Now func() time.Time
}

// Sink is the archive sink. It implements sink.Sink, sink.CheckpointSink and
// sink.Opener.
type Sink struct {
	cfg    Config
	layout archive.Layout
	bucket archive.Bucket
	log    *slog.Logger
	mu     sync.Mutex
	heads  map[int32]*head
}

// head is the archive's last segment of a partition; d is nil for an empty partition.
type head struct {
	key, sum string
	d        *archive.Digest
}

// New returns the archive sink.
func New(cfg Config) (*Sink, error) {
	if cfg.Objects != nil {
		if cfg.Mode != "" || cfg.LegalHold {
			return nil, errors.New("s3: an archive directory cannot hold Object Lock retention or legal holds; use lock mode none")
		}
	} else if cfg.Client == nil || cfg.Bucket == "" {
		return nil, errors.New("s3: Client and Bucket (or Objects) are required")
	}
	switch cfg.Mode {
	case "":
	case types.ObjectLockModeCompliance, types.ObjectLockModeGovernance:
		if cfg.Retention <= 0 {
			return nil, fmt.Errorf("s3: Object Lock mode %s needs a retention period", cfg.Mode)
		}
	default:
		return nil, fmt.Errorf("s3: Object Lock mode %q: want COMPLIANCE or GOVERNANCE", cfg.Mode)
	}
	switch cfg.Checksum {
	case "":
		cfg.Checksum = ChecksumSHA256
	case ChecksumSHA256, ChecksumCRC32, ChecksumCRC32C, ChecksumMD5:
	default:
		return nil, fmt.Errorf("s3: checksum mode %q: want sha256, crc32, crc32c or md5", cfg.Checksum)
	}
	if cfg.Uploads <= 0 {
		cfg.Uploads = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var bucket archive.Bucket = cfg.Objects
	if cfg.Objects == nil {
		bucket = NewBucket(cfg.Client, cfg.Bucket)
	}
	return &Sink{cfg: cfg, layout: archive.Layout{Prefix: cfg.Prefix}, bucket: bucket,
		log: cfg.Logger.With("sink", "s3"), heads: map[int32]*head{}}, nil
}

// Name implements sink.Sink.
func (s *Sink) Name() string { return "s3" }

// OpenPartition implements sink.Opener: it finds the partition's last digest.
func (s *Sink) OpenPartition(ctx context.Context, p int32) error {
	h, err := s.findHead(ctx, p)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.heads[p] = h
	s.mu.Unlock()
	if h.d != nil {
		s.log.Info("archive head found", "partition", p, "digest", h.key, "last_seq", h.d.LastSeq)
	}
	return nil
}

// ClosePartition implements sink.Opener.
func (s *Sink) ClosePartition(p int32) {
	s.mu.Lock()
	delete(s.heads, p)
	s.mu.Unlock()
}

func (s *Sink) findHead(ctx context.Context, p int32) (*head, error) {
	days, err := s.bucket.Dirs(ctx, s.layout.DigestDir(p))
	if err != nil {
		return nil, classify(err)
	}
	for i := len(days) - 1; i >= 0; i-- {
		keys, err := s.bucket.List(ctx, days[i])
		if err != nil {
			return nil, classify(err)
		}
		if len(keys) == 0 {
			continue
		}
		key := keys[len(keys)-1]
		data, err := s.bucket.Get(ctx, key)
		if err != nil {
			return nil, classify(err)
		}
		var d archive.Digest
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, sink.Fatalf("s3: last digest %s of partition %d is unreadable (%v); run trailctl verify --s3", key, p, err)
		}
		return &head{key: key, sum: archive.Sum(data), d: &d}, nil
	}
	return &head{}, nil
}

// Deliver implements sink.Sink.
func (s *Sink) Deliver(ctx context.Context, b *sink.Batch) error {
	s.mu.Lock()
	h := s.heads[b.Partition]
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("s3: partition %d delivered before it was opened", b.Partition)
	}
	recs := b.Records
	next := uint64(0)
	if h.d != nil {
		next = h.d.LastSeq + 1
		// Already archived: a re-delivery after a crash between upload and commit.
		i := 0
		for i < len(recs) && recs[i].Chain.Seq < next {
			i++
		}
		recs = recs[i:]
	}
	if len(recs) == 0 {
		return nil
	}
	for i := range recs {
		if got := recs[i].Chain.Seq; got != next+uint64(i) {
			return sink.Fatalf("s3: partition %d: the archive continues at seq %d but the next record is seq %d; records %d..%d are not in Kafka any more (retention?) and the archive cannot continue without a gap. Recover them from ClickHouse or an export before restarting",
				b.Partition, next+uint64(i), got, next+uint64(i), got-1)
		}
	}
	if h.d != nil && recs[0].Chain.PrevHash.String() != h.d.LastLeafHash {
		return sink.Fatalf("s3: partition %d: record %d's prev_hash %s does not link to the archive's last leaf %s (digest %s); the chain in Kafka differs from the archive",
			b.Partition, recs[0].Chain.Seq, recs[0].Chain.PrevHash, h.d.LastLeafHash, h.key)
	}
	for len(recs) > 0 {
		day := archive.Day(recs[0].Chain.ChainedAt)
		if h.d != nil && day < h.d.Date {
			day = h.d.Date // the archive day never goes back (clock skew between ingest nodes)
		}
		n := 1
		for n < len(recs) && max(archive.Day(recs[n].Chain.ChainedAt), day) == day {
			n++
		}
		nh, err := s.writeSegment(ctx, b.Partition, day, h, recs[:n])
		if err != nil {
			return err
		}
		h = nh
		s.mu.Lock()
		s.heads[b.Partition] = h
		s.mu.Unlock()
		recs = recs[n:]
	}
	return nil
}

type object struct {
	ref    archive.ObjectRef
	body   []byte
	values [][]byte
}

func (s *Sink) writeSegment(ctx context.Context, p int32, day string, prev *head, recs []sink.Record) (*head, error) {
	if prev.d != nil && day > prev.d.Date {
		if err := s.writeManifest(ctx, p, prev.d.Date); err != nil {
			return nil, err
		}
	}
	var objs []*object
	byTenant := map[string]*object{}
	for i := range recs {
		r := &recs[i]
		o := byTenant[r.Tenant]
		if o == nil {
			o = &object{ref: archive.ObjectRef{Tenant: r.Tenant, FirstSeq: r.Chain.Seq}}
			byTenant[r.Tenant] = o
			objs = append(objs, o)
		}
		o.values = append(o.values, r.Value)
		o.ref.LastSeq = r.Chain.Seq
		o.ref.Records++
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Uploads)
	for _, o := range objs {
		g.Go(func() error {
			body, err := archive.EncodeObject(o.values)
			if err != nil {
				return err
			}
			o.body, o.values = body, nil
			o.ref.Key = s.layout.Object(o.ref.Tenant, p, day, o.ref.FirstSeq, o.ref.LastSeq)
			o.ref.SHA256, o.ref.Bytes = archive.Sum(body), len(body)
			return s.put(gctx, o.ref.Key, body, "application/gzip")
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	d := &archive.Digest{Version: archive.Version, Partition: p, Date: day, FirstSeq: recs[0].Chain.Seq, LastSeq: recs[len(recs)-1].Chain.Seq,
		FirstPrevHash: recs[0].Chain.PrevHash.String(), LastLeafHash: recs[len(recs)-1].Chain.LeafHash.String()}
	for _, o := range objs {
		d.Objects = append(d.Objects, o.ref)
	}
	if prev.d != nil {
		d.Previous = &archive.Ref{Key: prev.key, SHA256: prev.sum}
	}
	body, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	key := s.layout.Digest(p, day, d.FirstSeq, d.LastSeq)
	if err := s.put(ctx, key, body, "application/json"); err != nil {
		return nil, err
	}
	return &head{key: key, sum: archive.Sum(body), d: d}, nil
}

// writeManifest lists the day's digests (all of them, including those written before a
// restart) and archives the manifest.
func (s *Sink) writeManifest(ctx context.Context, p int32, day string) error {
	keys, err := s.bucket.List(ctx, s.layout.DigestDay(p, day))
	if err != nil {
		return classify(err)
	}
	m := archive.Manifest{Version: archive.Version, Partition: p, Date: day, Digests: []archive.Ref{}, Objects: []archive.Ref{}}
	for i, k := range keys {
		data, err := s.bucket.Get(ctx, k)
		if err != nil {
			return classify(err)
		}
		var d archive.Digest
		if err := json.Unmarshal(data, &d); err != nil {
			return sink.Fatalf("s3: digest %s is unreadable (%v); run trailctl verify --s3", k, err)
		}
		if i == 0 {
			m.FirstSeq = d.FirstSeq
		}
		m.LastSeq = d.LastSeq
		m.Digests = append(m.Digests, archive.Ref{Key: k, SHA256: archive.Sum(data)})
		for _, o := range d.Objects {
			m.Objects = append(m.Objects, o.Ref)
		}
	}
	slices.SortFunc(m.Objects, func(a, b archive.Ref) int { return strings.Compare(a.Key, b.Key) })
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return s.put(ctx, s.layout.Manifest(p, day), body, "application/json")
}

// DeliverCheckpoints implements sink.CheckpointSink: each checkpoint is archived as
// the chainer wrote it. The chainer re-publishes a quiet partition's checkpoint;
// the first copy archived stands, and a later one is accepted when it says the
// same (sameCheckpoint).
func (s *Sink) DeliverCheckpoints(ctx context.Context, p int32, cps []sink.Checkpoint) error {
	for _, cp := range cps {
		if err := s.putIf(ctx, s.layout.Checkpoint(p, cp.Size), cp.Value, "application/json", sameCheckpoint); err != nil {
			return err
		}
	}
	return nil
}

// sameCheckpoint reports whether two archived forms of a checkpoint state the
// same: the signed note, the compact range and the last leaf byte for byte. The
// last leaf's proof may be missing from one (written before the chainer added
// it), but two proofs must agree.
func sameCheckpoint(stored, body []byte) bool {
	var a, b chain.SignedCheckpoint
	if json.Unmarshal(stored, &a) != nil || json.Unmarshal(body, &b) != nil {
		return false
	}
	if !bytes.Equal(a.Note, b.Note) || !slices.Equal(a.Range, b.Range) || a.LastLeaf != b.LastLeaf {
		return false
	}
	return len(a.LastLeafProof) == 0 || len(b.LastLeafProof) == 0 || slices.Equal(a.LastLeafProof, b.LastLeafProof)
}

// put writes key create-only. An existing key is a retry of an upload that landed
// when its content is the same, and a conflict that stops the sink otherwise.
func (s *Sink) put(ctx context.Context, key string, body []byte, contentType string) error {
	return s.putIf(ctx, key, body, contentType, nil)
}

// putIf is put where same, when not nil, also accepts stored bytes that differ
// from body but mean the same.
func (s *Sink) putIf(ctx context.Context, key string, body []byte, contentType string, same func(stored, body []byte) bool) error {
	var existed bool
	var err error
	if s.cfg.Objects != nil {
		existed, err = s.cfg.Objects.PutNew(ctx, key, body)
		if err != nil {
			return sink.Retryable(fmt.Errorf("s3: put %s: %w", key, err), 0)
		}
	} else if existed, err = s.putS3(ctx, key, body, contentType); err != nil {
		return err
	}
	if !existed {
		return nil
	}
	stored, gerr := s.bucket.Get(ctx, key)
	if gerr != nil {
		return classify(fmt.Errorf("s3: %s exists; reading it back: %w", key, gerr))
	}
	if archive.Sum(stored) == archive.Sum(body) || (same != nil && same(stored, body)) {
		return nil
	}
	return sink.Fatalf("s3: archive conflict: %s exists with SHA-256 %s, but this upload is %s; another writer uses this prefix or the chain diverged. The stored object is locked and was not touched",
		key, archive.Sum(stored), archive.Sum(body))
}

// putS3 uploads key with If-None-Match, the configured checksum and retention;
// existed reports a 412 (the key is there).
func (s *Sink) putS3(ctx context.Context, key string, body []byte, contentType string) (existed bool, err error) {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType),
		IfNoneMatch:   aws.String("*"),
	}
	switch s.cfg.Checksum {
	case ChecksumSHA256:
		sum := sha256.Sum256(body)
		in.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
		in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	case ChecksumCRC32:
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
	case ChecksumCRC32C:
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
	case ChecksumMD5:
		sum := md5.Sum(body)
		in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}
	if s.cfg.Mode != "" {
		in.ObjectLockMode = s.cfg.Mode
		in.ObjectLockRetainUntilDate = aws.Time(s.cfg.Now().Add(s.cfg.Retention).UTC().Truncate(time.Second))
	}
	if s.cfg.LegalHold {
		in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn
	}
	if _, err = s.cfg.Client.PutObject(ctx, in); err == nil {
		return false, nil
	}
	if status(err) == http.StatusPreconditionFailed {
		return true, nil
	}
	return false, classify(fmt.Errorf("s3: put %s: %w", key, err))
}

func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// classify maps S3 failures: throttling, 5xx, conflicts and network errors retry;
// refused credentials, a missing bucket or a refused request (e.g. retention without
// Object Lock) stop the sink, since retrying cannot fix them and the archive must not
// skip records.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var se *sink.Error
	if errors.As(err, &se) {
		return err
	}
	code := status(err)
	var api smithy.APIError
	name := ""
	if errors.As(err, &api) {
		name = api.ErrorCode()
	}
	switch {
	case code == 0:
		return sink.Retryable(err, 0)
	case code >= 500, code == http.StatusTooManyRequests, code == http.StatusRequestTimeout, code == http.StatusConflict,
		name == "SlowDown", name == "RequestTimeout":
		return sink.Retryable(err, 0)
	default:
		return sink.Fatalf("%w (S3 refused the request: check the bucket, its Object Lock configuration, the credentials and the checksum mode)", err)
	}
}

// Bucket is read access to an archive bucket; it implements archive.Bucket.
type Bucket struct {
	cl   *s3.Client
	name string
}

// NewBucket returns read access to bucket name.
func NewBucket(cl *s3.Client, name string) *Bucket { return &Bucket{cl: cl, name: name} }

// List implements archive.Bucket.
func (b *Bucket) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(b.cl, &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list %s/%s: %w", b.name, prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, aws.ToString(o.Key))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Dirs implements archive.Bucket.
func (b *Bucket) Dirs(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(b.cl, &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list %s/%s: %w", b.name, prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, aws.ToString(cp.Prefix))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Get implements archive.Bucket.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := b.cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	if err != nil {
		var nk *types.NoSuchKey
		if errors.As(err, &nk) || status(err) == http.StatusNotFound {
			return nil, fmt.Errorf("s3: %s: %w", key, archive.ErrNotFound)
		}
		return nil, fmt.Errorf("s3: get %s: %w", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("s3: read %s: %w", key, err)
	}
	return data, nil
}
