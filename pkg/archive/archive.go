// Package archive defines the layout of trailkeep's WORM archive and verifies an archive
// offline, with nothing but read access to the objects and the checkpoint public key.
//
// Under the archive's prefix, for each partition P of audit.chained:
//
//	tenant=T/partition=P/date=D/<first>-<last>.ndjson.gz   chained records of tenant T
//	chain/partition=P/date=D/<first>-<last>.json           segment digest
//	checkpoints/partition=P/<size>.json                    signed checkpoint, as chained
//	manifest/partition=P/date=D.json                       the day's digests and objects
//
// Sequence numbers and sizes are zero-padded to 20 digits so that key order is seq
// order. D is the archive day: the UTC date of the records' chained_at, never going
// backwards within a partition.
//
// A segment is a run of consecutive seqs [first, last] of one partition and day. Its
// records are stored one object per tenant (gzip NDJSON, one chained record per line,
// byte for byte as the chainer wrote it), and its digest lists those objects with
// their SHA-256 and names the previous segment's digest by key and SHA-256, as
// CloudTrail digest files do: the digests form a hash chain from seq 0, so a deleted
// or altered object, digest or day is found and named. Every object is written
// create-only with a deterministic key and content, so a retried upload either
// creates the object or finds the identical one.
package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Version of the digest and manifest formats.
const Version = 1

// Pad formats a seq or size for a key.
func Pad(n uint64) string { return fmt.Sprintf("%020d", n) }

// Day is the archive day of t.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Layout joins keys under a prefix.
type Layout struct{ Prefix string }

func (l Layout) join(s string) string {
	p := strings.Trim(l.Prefix, "/")
	if p == "" {
		return s
	}
	return p + "/" + s
}

// Object is the key of a tenant's records of a segment.
func (l Layout) Object(tenant string, p int32, day string, first, last uint64) string {
	return l.join("tenant=" + tenant + "/partition=" + strconv.Itoa(int(p)) + "/date=" + day + "/" + Pad(first) + "-" + Pad(last) + ".ndjson.gz")
}

// DigestDir is the prefix of partition p's digests; DigestDay of one day's.
func (l Layout) DigestDir(p int32) string {
	return l.join("chain/partition=" + strconv.Itoa(int(p)) + "/")
}

// DigestDay is the prefix of partition p's digests of day.
func (l Layout) DigestDay(p int32, day string) string { return l.DigestDir(p) + "date=" + day + "/" }

// Digest is the key of a segment digest.
func (l Layout) Digest(p int32, day string, first, last uint64) string {
	return l.DigestDay(p, day) + Pad(first) + "-" + Pad(last) + ".json"
}

// CheckpointDir is the prefix of partition p's checkpoints.
func (l Layout) CheckpointDir(p int32) string {
	return l.join("checkpoints/partition=" + strconv.Itoa(int(p)) + "/")
}

// Checkpoint is the key of the checkpoint of partition p at size.
func (l Layout) Checkpoint(p int32, size uint64) string {
	return l.CheckpointDir(p) + Pad(size) + ".json"
}

// ManifestDir is the prefix of partition p's daily manifests.
func (l Layout) ManifestDir(p int32) string {
	return l.join("manifest/partition=" + strconv.Itoa(int(p)) + "/")
}

// Manifest is the key of partition p's manifest of day.
func (l Layout) Manifest(p int32, day string) string {
	return l.ManifestDir(p) + "date=" + day + ".json"
}

// ChainRoot is the prefix under which partitions' digest directories are listed.
func (l Layout) ChainRoot() string { return l.join("chain/") }

// Ref names another object by key and content hash.
type Ref struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
}

// ObjectRef is a data object listed by a digest.
type ObjectRef struct {
	Ref
	Tenant   string `json:"tenant"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Records  int    `json:"records"`
	Bytes    int    `json:"bytes"`
}

// Digest describes one segment.
type Digest struct {
	Version   int    `json:"version"`
	Partition int32  `json:"partition"`
	Date      string `json:"date"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	// FirstPrevHash is the prev_hash of record FirstSeq; LastLeafHash the leaf
	// hash of record LastSeq, the next segment's FirstPrevHash.
	FirstPrevHash string      `json:"first_prev_hash"`
	LastLeafHash  string      `json:"last_leaf_hash"`
	Objects       []ObjectRef `json:"objects"`
	// Previous is the previous segment's digest; nil only for the segment at seq 0.
	Previous *Ref `json:"previous"`
}

// Manifest lists one partition's digests and objects of one day.
type Manifest struct {
	Version   int    `json:"version"`
	Partition int32  `json:"partition"`
	Date      string `json:"date"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	Digests   []Ref  `json:"digests"`
	Objects   []Ref  `json:"objects"`
}

// Sum is the hex SHA-256 of b.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// EncodeObject returns a data object: the chained records' values, one per line,
// gzip-compressed. The output depends only on the values, so a retried upload has
// the same bytes and the same hash. The compressor is klauspost/compress's gzip,
// standard gzip that any reader reads, at about twice the standard library's speed
// at BestSpeed and a slightly better ratio (BenchmarkEncodeObject).
func EncodeObject(values [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	for _, v := range values {
		if _, err := zw.Write(v); err != nil {
			return nil, err
		}
		if _, err := zw.Write(newline); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// newline ends each record of an object; one shared slice, since a literal passed
// to the compressor's Write would be allocated for every record.
var newline = []byte{'\n'}
