// Package bearer issues bearer tokens and recognises them by the SHA-256 digest that
// is all a configuration stores. Ingest's write tokens and the query API's read
// tokens are both checked here, so both services treat secrets the same way.
//
// Tokens are 256-bit random values, so a fast hash is enough: no password-style
// stretching is needed, and a leaked configuration leaks no usable token.
package bearer

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Errors of Find; their texts are answered to callers as they are.
var (
	ErrMissing = errors.New("missing bearer token: send Authorization: Bearer <token>")
	ErrUnknown = errors.New("unknown or revoked token")
)

// New returns a fresh random bearer token ("tk_" + 43 base64url characters) and the
// lower-case hex SHA-256 to store in a token configuration.
func New() (secret, sha string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("bearer: random token: %w", err)
	}
	secret = "tk_" + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(secret))
	return secret, hex.EncodeToString(sum[:]), nil
}

// ParseDigest reads a configured digest: 64 hex digits.
func ParseDigest(s string) ([32]byte, error) {
	var d [32]byte
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != 32 {
		return d, errors.New("sha256 must be 64 hex digits (trailctl tokens create prints it)")
	}
	copy(d[:], raw)
	return d, nil
}

// Entry is a configured token: it knows its stored digest (hex SHA-256).
type Entry interface{ Digest() string }

// Find returns the entry of byDigest whose token r presents, and the digest of the
// presented secret. The lookup is by the SHA-256 of the secret, and the stored
// digest is then compared in constant time, so the time taken reveals nothing about
// any configured secret.
func Find[T Entry](r *http.Request, byDigest map[[32]byte]T) (T, [32]byte, error) {
	var zero T
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return zero, [32]byte{}, ErrMissing
	}
	sum := sha256.Sum256([]byte(secret))
	entry, found := byDigest[sum]
	if !found {
		return zero, sum, ErrUnknown
	}
	want, _ := hex.DecodeString(entry.Digest())
	if subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return zero, sum, ErrUnknown
	}
	return entry, sum, nil
}
