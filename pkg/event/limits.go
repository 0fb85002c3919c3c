package event

// Limits bounds the structure of one event before any schema rule runs, so
// that a hostile body costs bounded memory and time. Field-level limits
// (string lengths, key counts) are in the JSON Schema.
type Limits struct {
	// MaxEventBytes bounds both the raw input and the canonical bytes of one
	// event. Default 64 KiB: well under Kafka's 1 MiB default message size,
	// with room for the chain envelope.
	MaxEventBytes int
	// MaxDepth bounds the nesting of objects and arrays (the top-level object
	// is depth 1). Default 16; a v1 event needs 4.
	MaxDepth int
}

// DefaultLimits are the limits ingest and the chainer apply unless configured
// otherwise.
var DefaultLimits = Limits{MaxEventBytes: 64 << 10, MaxDepth: 16}

func (l Limits) withDefaults() Limits {
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = DefaultLimits.MaxEventBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	return l
}
