// Package chain is trailkeep's tamper-evidence library: a per-partition hash
// chain, an RFC 6962 Merkle tree over the same leaves, signed checkpoints
// (C2SP signed notes, Ed25519), inclusion and consistency proofs, and a
// verifier that locates the first problem in a sequence of records.
//
// It is pure and deterministic: no I/O, no clocks, no randomness except in
// [GenerateKey]. The chainer, trailctl and outside auditors all use it, so an
// independent verifier only has to reproduce what is written here.
//
// # Leaf encoding, version 1
//
// Record seq n of a partition is leaf n of that partition's Merkle tree
// (seq starts at 0). Its leaf hash is the RFC 6962 leaf hash
//
//	leaf_hash = SHA-256(0x00 || leaf_input)
//
// over this byte string (integers big-endian):
//
//	leaf_input = 0x01                       encoding version, 1 byte
//	          || partition                  uint32, 4 bytes
//	          || seq                        uint64, 8 bytes
//	          || chained_at                 int64 Unix nanoseconds, 8 bytes
//	          || prev_hash                  32 bytes: leaf_hash of seq−1, zeros for seq 0
//	          || len(event)                 uint32, 4 bytes
//	          || event                      the RFC 8785 canonical event bytes, verbatim
//
// Binding partition, seq, time and prev_hash into the leaf means no record
// can be moved, renumbered, re-timed or relinked without changing its hash.
// Interior nodes are SHA-256(0x01 || left || right) (RFC 6962 §2.1).
//
// # Checkpoints
//
// A checkpoint is a C2SP tlog-checkpoint body signed as a C2SP signed note
// (golang.org/x/mod/sumdb/note, Ed25519):
//
//	<origin>\n                 e.g. trailkeep.example.com/audit.chained/0
//	<tree size, decimal>\n
//	<root hash, base64 std>\n
//	\n
//	— <key name> <base64(4-byte key hash || 64-byte signature)>\n
//
// Stored with it, unsigned, are the compact-range hashes of [0, size) and the
// last leaf hash. The range is authenticated by the signed root (it must fold
// to it) and lets a restarted chainer, or a verifier starting mid-chain,
// continue the same tree without reading every earlier record.
//
// Key rotation: a [note.Verifiers] list may hold any number of public keys;
// a checkpoint verifies if any known key signed it, so old keys stay in the
// list after a rotation.
package chain
