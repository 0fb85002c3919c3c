// Package bearer issues bearer tokens and recognises them by the SHA-256 digest that
// is all a configuration stores. Ingest's write tokens and the query API's read
// tokens are both checked here, so both services treat secrets the same way.
//
// Tokens are 256-bit random values, so a fast hash is enough: no password-style
// stretching is needed, and a leaked configuration leaks no usable token.
package bearer

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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

// ParseConfig reads a token configuration, {"tokens":[...]}, strictly (an unknown
// field is an error: a misspelt "tenant" must not widen a token), and indexes its
// entries by digest. check validates one entry (it is given the entry's position);
// what names the configuration in errors ("ingest", "queryapi") and shape is the
// expected form, shown when the JSON does not decode. Both services parse their
// token files here, so both refuse the same mistakes the same way: a bad digest, the
// same secret twice, an empty configuration.
func ParseConfig[T any, P interface {
	*T
	Entry
}](data []byte, what, shape string, check func(P) error) (map[[32]byte]P, error) {
	var doc struct {
		Tokens []T `json:"tokens"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: token configuration: %w (expected %s)", what, err, shape)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: token configuration: data after the JSON object", what)
	}
	byDigest := make(map[[32]byte]P, len(doc.Tokens))
	for i := range doc.Tokens {
		t := P(&doc.Tokens[i])
		where := fmt.Sprintf("%s: token %d", what, i)
		if n, ok := any(t).(interface{ TokenName() string }); ok {
			where += fmt.Sprintf(" (%q)", n.TokenName())
		}
		h, err := ParseDigest(t.Digest())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := check(t); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if _, dup := byDigest[h]; dup {
			return nil, fmt.Errorf("%s: the same token is configured twice", where)
		}
		byDigest[h] = t
	}
	if len(byDigest) == 0 {
		return nil, fmt.Errorf("%s: no tokens configured", what)
	}
	return byDigest, nil
}
