package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// MaxIdempotencyKey is the longest idempotency key stored as text; longer keys are
// stored as "sha256:" + the hex digest of their text (the schema's identifier limit).
const MaxIdempotencyKey = 256

// IdempotencyKey encodes the identifiers a sender gives one event — a source kind
// first, then e.g. session, hook event and tool_use_id — as a JSON array of strings:
// ["claude_code","s1","PreToolUse","t1"].
//
// The encoding is injective: JSON string escaping is deterministic and the array's
// quotes and commas cannot occur unescaped inside a part, so two different tuples
// never give the same key (joining with a separator did: "s:PreToolUse"+"t1" and
// "s"+"PreToolUse:t1" collided, which let a sender pre-register a key that
// suppressed a later, genuine event). A key longer than [MaxIdempotencyKey] is
// replaced by the SHA-256 of its text, never truncated, for the same reason.
func IdempotencyKey(parts ...string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// Encoding a []string cannot fail: invalid UTF-8 becomes U+FFFD, which is
	// still injective enough for keys the decoder has already checked for UTF-8.
	_ = enc.Encode(parts)
	key := bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
	if len(key) <= MaxIdempotencyKey {
		return string(key)
	}
	sum := sha256.Sum256(key)
	return "sha256:" + hex.EncodeToString(sum[:])
}
