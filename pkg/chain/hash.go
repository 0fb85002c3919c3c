package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// LeafVersion is the leaf encoding this package writes and verifies.
const LeafVersion = 1

// HashSize is the size of every hash in the chain (SHA-256).
const HashSize = sha256.Size

// Hash is a SHA-256 leaf, node or root hash. Its text form is lower-case hex.
type Hash [HashSize]byte

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler (lower-case hex).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*HashSize {
		return fmt.Errorf("chain: hash must be %d hex digits, got %d characters", 2*HashSize, len(b))
	}
	_, err := hex.Decode(h[:], b)
	if err != nil {
		return fmt.Errorf("chain: hash: %w", err)
	}
	return nil
}

func hashFromBytes(b []byte) (Hash, error) {
	var h Hash
	if len(b) != HashSize {
		return h, fmt.Errorf("chain: hash must be %d bytes, got %d", HashSize, len(b))
	}
	copy(h[:], b)
	return h, nil
}

// leafHeaderSize is the fixed part of leaf_input before the event bytes.
const leafHeaderSize = 1 + 4 + 8 + 8 + HashSize + 4

// LeafInput returns the version-1 leaf_input of a record (see the package
// documentation). Verifiers in other languages reproduce exactly these bytes.
func LeafInput(partition int32, seq uint64, chainedAt time.Time, prev Hash, event []byte) []byte {
	b := make([]byte, leafHeaderSize, leafHeaderSize+len(event))
	putLeafHeader(b, partition, seq, chainedAt, prev, len(event))
	return append(b, event...)
}

func putLeafHeader(b []byte, partition int32, seq uint64, chainedAt time.Time, prev Hash, n int) {
	b[0] = LeafVersion
	binary.BigEndian.PutUint32(b[1:], uint32(partition))
	binary.BigEndian.PutUint64(b[5:], seq)
	binary.BigEndian.PutUint64(b[13:], uint64(chainedAt.UnixNano()))
	copy(b[21:], prev[:])
	binary.BigEndian.PutUint32(b[21+HashSize:], uint32(n))
}

// LeafHash computes SHA-256(0x00 || leaf_input) without building leaf_input
// in memory: the hot path of both Append and verification.
func LeafHash(partition int32, seq uint64, chainedAt time.Time, prev Hash, event []byte) Hash {
	var hdr [1 + leafHeaderSize]byte // 0x00 RFC 6962 leaf prefix, then the header
	putLeafHeader(hdr[1:], partition, seq, chainedAt, prev, len(event))
	d := sha256.New()
	d.Write(hdr[:])
	d.Write(event)
	var h Hash
	d.Sum(h[:0])
	return h
}
