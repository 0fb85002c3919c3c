package ingest

import (
	"sync"
	"time"
)

// dedupe remembers recently accepted idempotency keys, with a digest of what each
// event said, so a retried request is answered with the original event id instead of
// writing the event twice — and an event that reuses a key with different content is
// recognised as a conflict, stored and marked, never taken for a retry.
//
// It is deliberately small and local: it covers the common case (a client retrying
// within minutes against the same ingest replica). Retries that land on another
// replica or after the window are not caught here; they carry the same
// idempotency_key into the chain, where queries collapse them. Kafka-level retries
// are already deduplicated by the idempotent producer.
type dedupe struct {
	mu     sync.Mutex
	window time.Duration
	m      map[string]dedupeEntry
	ring   []string // insertion order, for eviction once full
	next   int
}

type dedupeEntry struct {
	id      string
	content [32]byte
	at      time.Time
}

func newDedupe(window time.Duration, capacity int) *dedupe {
	if window <= 0 || capacity <= 0 {
		return nil
	}
	return &dedupe{window: window, m: make(map[string]dedupeEntry, capacity), ring: make([]string, capacity)}
}

func (d *dedupe) lookup(key string, now time.Time) (dedupeEntry, bool) {
	if d == nil {
		return dedupeEntry{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[key]
	if !ok || now.Sub(e.at) > d.window {
		return dedupeEntry{}, false
	}
	return e, true
}

// add remembers the first event accepted under key; later ones (conflicts) do not
// replace it, so every conflict names the same original.
func (d *dedupe) add(key, id string, content [32]byte, now time.Time) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[key]; ok {
		return
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.m, old)
	}
	d.ring[d.next] = key
	d.next = (d.next + 1) % len(d.ring)
	d.m[key] = dedupeEntry{id: id, content: content, at: now}
}
