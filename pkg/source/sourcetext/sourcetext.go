// Package sourcetext holds the text rules every source mapper (claudecode, otlp)
// applies to what it keeps of a sender's payload: digests in the form of approval
// digests, cuts on character boundaries, control characters removed from reasons, and
// the schema's metadata limits.
package sourcetext

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits of the v1 schema's metadata map.
const (
	MaxMetaKeys = 64   // keys per event
	MaxText     = 8192 // bytes per string value
)

// TruncMarker ends a value Truncate cut.
const TruncMarker = "…[truncated]"

// MetaKey is the schema's pattern for a metadata key.
var MetaKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// Digest is "sha256:" + hex SHA-256 of b, the form of approval digests.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Truncate cuts s to at most limit bytes on a rune boundary, with TruncMarker.
func Truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return Clip(s, limit-len(TruncMarker)) + TruncMarker
}

// Clip cuts s to at most n bytes on a rune boundary (identifiers: no marker).
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// StripControl drops the control characters the schema's text fields forbid (all
// but tab and line breaks), so an odd error message never costs the event.
func StripControl(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return r
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
