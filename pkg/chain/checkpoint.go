package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Origin returns the checkpoint origin of one partition's log:
// "<deployment>/<topic>/<partition>". The deployment should be a name the
// operator controls (e.g. a DNS name), so that logs of different
// deployments can never be confused.
func Origin(deployment, topic string, partition int32) string {
	return deployment + "/" + topic + "/" + strconv.Itoa(int(partition))
}

// Checkpoint is the signed statement about a log: its origin, size and root.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   Hash
}

// Body returns the C2SP tlog-checkpoint text that is signed.
func (c Checkpoint) Body() string {
	return c.Origin + "\n" + strconv.FormatUint(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// ParseCheckpoint parses a checkpoint body (the text of a note). Extension
// lines after the root hash are allowed by C2SP and ignored here.
func ParseCheckpoint(body string) (Checkpoint, error) {
	lines := strings.SplitN(body, "\n", 4)
	if len(lines) < 4 {
		return Checkpoint{}, errors.New("chain: checkpoint body needs origin, size and root hash lines")
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" {
		return Checkpoint{}, errors.New("chain: checkpoint origin is empty")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || (lines[1] != "0" && strings.HasPrefix(lines[1], "0")) {
		return Checkpoint{}, fmt.Errorf("chain: checkpoint size %q is not a decimal integer", lines[1])
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != HashSize {
		return Checkpoint{}, fmt.Errorf("chain: checkpoint root %q is not a base64 SHA-256 hash", lines[2])
	}
	copy(c.Root[:], root)
	return c, nil
}

// SignedCheckpoint is a checkpoint as the chainer stores it: the signed note
// plus the unsigned state needed to continue the tree from it.
type SignedCheckpoint struct {
	// Note is the complete signed note: body, blank line, signature lines.
	Note NoteText `json:"note"`
	// Range is the compact range of [0, size); it must fold to the signed
	// root, which authenticates it.
	Range []Hash `json:"range"`
	// LastLeaf is the leaf hash of record size−1, the prev_hash of record
	// size. It is not signed; verifiers check it against that record, and
	// LastLeafProof authenticates it without that record.
	LastLeaf Hash `json:"last_leaf_hash"`
	// LastLeafProof is LastLeaf's inclusion proof inside the last node of
	// Range (the perfect subtree that ends at record size−1): the left
	// siblings on its path, in Range's order, as many as size has trailing
	// zero bits. Folded with LastLeaf it must give Range's last node, which
	// the signed root covers. Checkpoints written before it existed lack it.
	LastLeafProof []Hash `json:"last_leaf_proof,omitempty"`
}

// NoteText is signed-note text; it is written to JSON as a readable string
// rather than base64, so auditors can read checkpoints in any export.
type NoteText []byte

// MarshalText implements encoding.TextMarshaler.
func (n NoteText) MarshalText() ([]byte, error) { return n, nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (n *NoteText) UnmarshalText(b []byte) error {
	*n = append((*n)[:0], b...)
	return nil
}

// Sign makes a signed checkpoint of the chain's current state.
func (c *Chain) Sign(origin string, signer note.Signer) (SignedCheckpoint, error) {
	cp := Checkpoint{Origin: origin, Size: c.Size(), Root: c.Root()}
	msg, err := note.Sign(&note.Note{Text: cp.Body()}, signer)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("chain: sign checkpoint: %w", err)
	}
	sc := SignedCheckpoint{Note: msg, Range: c.RangeHashes(), LastLeaf: c.prev}
	if c.known && len(c.sib) > 0 {
		sc.LastLeafProof = hashesOf(c.sib)
	}
	return sc, nil
}

// ErrOrigin is wrapped when a checkpoint belongs to another log.
var ErrOrigin = errors.New("chain: checkpoint origin does not match")

// Open verifies the note's signature with verifiers, parses the checkpoint
// and checks its origin (unless origin is empty). It does not check Range.
func (s SignedCheckpoint) Open(origin string, verifiers note.Verifiers) (Checkpoint, error) {
	n, err := note.Open(s.Note, verifiers)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("chain: checkpoint signature: %w", err)
	}
	// note decodes signatures leniently: a final base64 character whose unused bits
	// differ decodes to the same signature. Accept only the canonical encoding, so
	// that no byte of a signed checkpoint can change unnoticed.
	for _, sig := range n.Sigs {
		if _, err := base64.StdEncoding.Strict().DecodeString(sig.Base64); err != nil {
			return Checkpoint{}, fmt.Errorf("chain: checkpoint signature by %s is not canonical base64: %w", sig.Name, err)
		}
	}
	cp, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if origin != "" && cp.Origin != origin {
		return Checkpoint{}, fmt.Errorf("%w: got %q, want %q", ErrOrigin, cp.Origin, origin)
	}
	return cp, nil
}

// Unverified parses the checkpoint body without checking any signature. Use
// it only for display and ordering.
func (s SignedCheckpoint) Unverified() (Checkpoint, error) {
	body, _, ok := bytes.Cut(s.Note, []byte("\n\n"))
	if !ok {
		return Checkpoint{}, errors.New("chain: note has no signature block")
	}
	return ParseCheckpoint(string(body) + "\n")
}

// restoreRange checks that s.Range folds to cp's root and returns a chain
// positioned at cp.Size.
func (s SignedCheckpoint) restoreRange(partition int32, cp Checkpoint) (*Chain, error) {
	rng, err := rangeFactory.NewRange(0, cp.Size, slicesOf(s.Range))
	if err != nil {
		return nil, fmt.Errorf("chain: checkpoint at size %d: compact range: %w", cp.Size, err)
	}
	c := &Chain{partition: partition, rng: rng, prev: s.LastLeaf}
	if cp.Size == 0 {
		if s.LastLeaf != (Hash{}) {
			return nil, fmt.Errorf("chain: checkpoint at size 0 has a last leaf hash")
		}
	}
	if got := c.Root(); got != cp.Root {
		return nil, fmt.Errorf("chain: checkpoint at size %d: compact range folds to %s, signed root is %s", cp.Size, got, cp.Root)
	}
	switch err := s.lastLeafProven(cp.Size); {
	case err == nil:
		// Keep the proof, so that a checkpoint signed again at this size
		// (a re-publication) carries it too.
		c.sib, c.known = slicesOf(s.LastLeafProof), true
	case !errors.Is(err, ErrLastLeafUnproven):
		return nil, err
	}
	return c, nil
}

// ErrLastLeafUnproven is wrapped when a checkpoint's LastLeaf cannot be
// authenticated because it carries no LastLeafProof (it was written before
// the proof existed).
var ErrLastLeafUnproven = errors.New("chain: the checkpoint's last leaf hash has no inclusion proof")

// lastLeafProven checks LastLeaf against the last node of Range (whose fold to
// the signed root the caller has checked): ErrLastLeafUnproven when there is
// no proof to check, another error when the proof does not hold.
func (s SignedCheckpoint) lastLeafProven(size uint64) error {
	if size == 0 {
		return nil
	}
	k := bits.TrailingZeros64(size)
	switch {
	case len(s.Range) == 0:
		return fmt.Errorf("chain: checkpoint at size %d has no compact range", size)
	case len(s.LastLeafProof) == 0 && k > 0:
		return fmt.Errorf("%w (size %d needs %d sibling hashes)", ErrLastLeafUnproven, size, k)
	case len(s.LastLeafProof) != k:
		return fmt.Errorf("chain: checkpoint at size %d: last leaf proof has %d hashes, the subtree ending at record %d needs %d", size, len(s.LastLeafProof), size-1, k)
	}
	h := s.LastLeaf[:]
	for i := k - 1; i >= 0; i-- {
		h = rfc6962.DefaultHasher.HashChildren(s.LastLeafProof[i][:], h)
	}
	if Hash(h) != s.Range[len(s.Range)-1] {
		return fmt.Errorf("chain: checkpoint at size %d: last leaf hash %s is not record %d's leaf under the signed root (its proof does not fold to the range's last node)", size, s.LastLeaf, size-1)
	}
	return nil
}

// GenerateKey returns a new Ed25519 signer key and its verifier key in note
// format ("PRIVATE+KEY+<name>+<hash>+<key>" and "<name>+<hash>+<key>").
func GenerateKey(name string) (signerKey, verifierKey string, err error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("chain: generate key %q: %w", name, err)
	}
	return skey, vkey, nil
}

// NewSigner parses a signer key in note format.
func NewSigner(signerKey string) (note.Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(signerKey))
	if err != nil {
		return nil, fmt.Errorf("chain: signer key: %w (want the PRIVATE+KEY+... form from `trailctl keys generate`)", err)
	}
	return s, nil
}

// NewVerifiers builds the list of trusted public keys. Keep retired keys in
// the list after a rotation so that old checkpoints still verify.
func NewVerifiers(verifierKeys ...string) (note.Verifiers, error) {
	if len(verifierKeys) == 0 {
		return nil, errors.New("chain: no verifier keys given")
	}
	vs := make([]note.Verifier, 0, len(verifierKeys))
	for _, k := range verifierKeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("chain: verifier key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// VerifierKey derives the public verifier key (note format) from a signer
// key, so that operators only ever have to keep the private key file.
func VerifierKey(signerKey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>
	parts := strings.SplitN(strings.TrimSpace(signerKey), "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("chain: signer key must have the form PRIVATE+KEY+<name>+<hash>+<key>")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("chain: signer key is not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(parts[2], pub)
	if err != nil {
		return "", fmt.Errorf("chain: verifier key: %w", err)
	}
	if _, err := NewSigner(signerKey); err != nil { // checks the key hash too
		return "", err
	}
	return vkey, nil
}

// SignerKeyFromPEM converts an Ed25519 private key in PEM (PKCS #8, "PRIVATE KEY", as
// written by `openssl genpkey -algorithm ed25519` or a KMS export) into a note signer
// key named name, so operators can keep keys in the form their secret store uses.
func SignerKeyFromPEM(name string, pemBytes []byte) (string, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PRIVATE KEY" {
		return "", errors.New(`chain: PEM signer key: expected a "PRIVATE KEY" (PKCS #8) block`)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("chain: PEM signer key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return "", fmt.Errorf("chain: PEM signer key is %T; checkpoints are signed with Ed25519", k)
	}
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return "", fmt.Errorf("chain: PEM signer key: %w", err)
	}
	// vkey is <name>+<hash>+<key>; the signer key repeats name and hash.
	parts := strings.SplitN(vkey, "+", 3)
	return "PRIVATE+KEY+" + parts[0] + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...)), nil
}

// LastLeafSpan is how many leaves, ending at record size−1, ProveLastLeaf
// needs for a checkpoint at size: the leaves of the range's last subtree.
func LastLeafSpan(size uint64) uint64 {
	if size == 0 {
		return 0
	}
	return 1 << bits.TrailingZeros64(size)
}

// ProveLastLeaf fills in the LastLeafProof of a checkpoint written before
// checkpoints carried it, from the leaf hashes of its last LastLeafSpan(size)
// records in seq order. It checks them: they must fold to the range's last
// node (which the signed root covers, once the caller has opened the note)
// and end with LastLeaf.
func (s SignedCheckpoint) ProveLastLeaf(size uint64, leaves []Hash) (SignedCheckpoint, error) {
	span := LastLeafSpan(size)
	if uint64(len(leaves)) != span || span == 0 || len(s.Range) == 0 {
		return s, fmt.Errorf("chain: proving the last leaf at size %d needs the %d leaf hashes before it, have %d", size, span, len(leaves))
	}
	if leaves[len(leaves)-1] != s.LastLeaf {
		return s, fmt.Errorf("chain: checkpoint at size %d: last leaf hash %s is not record %d's leaf %s", size, s.LastLeaf, size-1, leaves[len(leaves)-1])
	}
	rng := rangeFactory.NewEmptyRange(size - span)
	for i := range leaves[:len(leaves)-1] {
		if err := rng.Append(leaves[i][:], nil); err != nil {
			return s, fmt.Errorf("chain: merkle append: %w", err)
		}
	}
	s.LastLeafProof = hashesOf(rng.Hashes())
	if err := s.lastLeafProven(size); err != nil {
		return s, err
	}
	return s, nil
}
