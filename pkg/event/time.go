package event

import (
	"fmt"
	"time"
)

// TimeLayout is the one textual form of every timestamp in a canonical event:
// UTC, RFC 3339, exactly nine fractional digits. A fixed width keeps the
// canonical bytes independent of how a sender wrote the time and makes the
// strings sort in time order.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// The accepted range is that of a nanosecond DateTime64 in ClickHouse, so
// that every accepted event can be stored without clamping.
var (
	MinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC)
)

// Time is a timestamp that marshals in [TimeLayout].
type Time struct{ time.Time }

// MarshalText implements encoding.TextMarshaler.
func (t Time) MarshalText() ([]byte, error) {
	return t.UTC().AppendFormat(make([]byte, 0, len(TimeLayout)), TimeLayout), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts any RFC 3339
// time within [MinTime, MaxTime) and converts it to UTC.
func (t *Time) UnmarshalText(b []byte) error {
	v, err := ParseTime(string(b))
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// ParseTime parses an RFC 3339 timestamp, checks it lies in [MinTime,
// MaxTime) and returns it in UTC.
func ParseTime(s string) (time.Time, error) {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 date-time such as 2026-01-15T09:23:00.5Z")
	}
	if v.Before(MinTime) || !v.Before(MaxTime) {
		return time.Time{}, fmt.Errorf("must lie between %s and %s", MinTime.Format(time.DateOnly), MaxTime.Format(time.DateOnly))
	}
	return v.UTC(), nil
}

// FormatTime renders t in [TimeLayout].
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// MarshalJSON implements json.Marshaler. It must exist: the embedded
// time.Time's MarshalJSON would otherwise be promoted and win over
// MarshalText, writing a variable-width form.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler (see MarshalJSON for why).
func (t *Time) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("event: timestamp must be a JSON string")
	}
	return t.UnmarshalText(b[1 : len(b)-1])
}
