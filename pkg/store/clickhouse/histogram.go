package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/trailkeep/trailkeep/pkg/query"
)

// MaxHistogramBuckets bounds one histogram.
const MaxHistogramBuckets = 500

// HistogramRequest counts the events Filter matches within Tenants (none: every
// tenant) per bucket of occurred_at over [From, To).
type HistogramRequest struct {
	Filter  query.Filter
	Tenants []string
	// From and To are whole seconds (a legacy server stores occurred_at in
	// seconds); Step is the bucket width, at least one second.
	From, To time.Time
	Step     time.Duration
}

// Bucket is the count of events with From ≤ occurred_at < From+Step.
type Bucket struct {
	From  time.Time `json:"from"`
	Count uint64    `json:"count"`
}

// HistogramQuery is the statement Histogram runs over every day partition
// (exported for the cross-engine tests).
func HistogramQuery(db string, req HistogramRequest) Query {
	return histogramQuery(db, req, "", nil)
}

// histogramQuery is HistogramQuery with a day condition (dayFilter; "" for none).
func histogramQuery(db string, req HistogramRequest, days string, dargs []any) Query {
	terms, args := matching(req.Filter, req.Tenants)
	if days != "" {
		terms = append(terms, days)
		args = append(args, dargs...)
	}
	from, to, step := req.From.Unix(), req.To.Unix(), int64(max(req.Step/time.Second, 1))
	// Whole seconds as integers on both sides, as the filter language compares
	// times (see query.Compile): the same on DateTime and DateTime64 columns.
	terms = append(terms, "toUnixTimestamp(occurred_at) >= ?", "toUnixTimestamp(occurred_at) < ?")
	sql := "SELECT intDiv(toInt64(toUnixTimestamp(occurred_at)) - ?, ?) AS bucket, count() FROM " + db + ".audit_events" +
		" WHERE " + whereClause(terms) + " GROUP BY bucket ORDER BY bucket"
	return Query{Name: "histogram", SQL: sql, Args: append(append([]any{from, step}, args...), from, to)}
}

// Histogram returns one bucket per Step from From up to To, empty ones included.
func (s *Store) Histogram(ctx context.Context, req HistogramRequest) ([]Bucket, error) {
	step := max(req.Step.Truncate(time.Second), time.Second)
	n := int((req.To.Sub(req.From) + step - 1) / step)
	if n <= 0 || n > MaxHistogramBuckets {
		return nil, fmt.Errorf("clickhouse: histogram of %d buckets; 1 to %d", n, MaxHistogramBuckets)
	}
	req.Step = step
	out := make([]Bucket, n)
	for i := range out {
		out[i].From = req.From.Add(time.Duration(i) * step).UTC()
	}
	// The console draws one with every search, over a week by default: only the
	// day partitions whose events can have occurred in [From, To) are read, not
	// the whole hot window (audit_events is sorted by tenant first).
	days, all, err := s.occurredDays(ctx, query.Span{HasFrom: true, From: req.From.Unix(), HasTo: true, To: req.To.Unix()}, nil)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: histogram: %w", err)
	}
	if len(days) == 0 {
		return out, nil
	}
	cond, dargs := dayFilter(days, all)
	q := histogramQuery(s.db, req, cond, dargs)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: histogram: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b int64
		var c uint64
		if err := rows.Scan(&b, &c); err != nil {
			return nil, fmt.Errorf("clickhouse: histogram: %w", err)
		}
		if b < 0 || b >= int64(n) {
			return nil, fmt.Errorf("clickhouse: histogram: bucket %d outside 0..%d", b, n-1)
		}
		out[b].Count = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: histogram: %w", err)
	}
	return out, nil
}
