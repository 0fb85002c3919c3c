package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// dayPart is what the server's part list says of one day partition of audit_events.
type dayPart struct {
	rows uint64
	// mutated: a mutation (ALTER ... DELETE/UPDATE, a lightweight delete) rewrote a
	// part of the day. A summary kept by a view on inserts no longer describes it,
	// even where the row count happens to match again.
	mutated bool
}

// summarised reports whether a summary that counted n rows of the day, all through
// the view on inserts, describes exactly the rows the day holds now.
func (d dayPart) summarised(n uint64) bool { return !d.mutated && d.rows == n }

// dayParts returns each day partition of audit_events, from the server's part list
// (metadata, no data read). A part that no mutation touched has its first block
// number as its data version.
func (s *Store) dayParts(ctx context.Context) (map[uint32]dayPart, error) {
	rows, err := s.conn.Query(ctx, "SELECT partition, sum(rows), max(data_version != min_block_number) FROM system.parts WHERE database = ? AND table = 'audit_events' AND active GROUP BY partition", s.db)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint32]dayPart{}
	for rows.Next() {
		var id string
		var d dayPart
		var mutated uint8
		if err := rows.Scan(&id, &d.rows, &mutated); err != nil {
			return nil, err
		}
		day, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("partition %q of audit_events is not a day", id)
		}
		d.mutated = mutated != 0
		out[uint32(day)] = d
	}
	return out, rows.Err()
}

// seqDay is what audit_seq_days holds of one chain partition on one day partition.
type seqDay struct {
	day    uint32
	rows   uint64
	lo, hi uint64 // smallest and largest seq
}

// seqDays says where partition p's rows are. known holds, by day, the days on which
// p has rows and whose span is exact for the rows stored now; unknown the days
// whose summary is not exact, which a read must include whatever seqs it wants.
// all lists, ascending, the day partitions a set of days is cut from (every day of
// audit_events, or every day holding p's rows), so the set can be sent as ranges.
type seqDays struct {
	known   []seqDay
	unknown []uint32
	all     []uint32
}

// seqDayAttempts bounds how often Store.summary reads again when a day's counts
// differ: an insert that lands between the part list and the summary makes the
// newest day differ once, a backup attached without the view on every read.
const seqDayAttempts = 2

// partitionDay is one partition's row of audit_seq_days for one day, merged.
type partitionDay struct {
	p int32
	seqDay
}

// daySummary is audit_seq_days checked against the server's part list. known holds,
// by day, the summarised rows of the days whose summary is exact for the rows stored
// now: the day's rows, summed over partitions, equal the day partition's count and
// no mutation touched it, so every row passed the view exactly once. Any other day
// is unknown: its summary may lack rows (a dropped view, ATTACH PARTITION, a
// migration's copy racing an insert) or hold rows deleted since. Summarised days
// without a partition left the hot window and hold nothing. all is every day
// partition; all and unknown are ascending.
type daySummary struct {
	known        map[uint32][]partitionDay
	unknown, all []uint32
}

// summary reads the day summary: the part list (metadata) and audit_seq_days (one
// row per partition and day), again once when a day's counts differ.
func (s *Store) summary(ctx context.Context) (daySummary, error) {
	return s.scopedSummary(ctx, nil)
}

// scopedSummary is summary for the rows of tenants (none: every tenant's). With
// tenants, a day's known rows are the tenants' rows of audit_tenant_seq_days, merged
// over the tenants, and a day is known when that table's rows for all tenants match
// the day partition, as audit_seq_days' must without.
func (s *Store) scopedSummary(ctx context.Context, tenants []string) (daySummary, error) {
	var sum daySummary
	for range seqDayAttempts {
		parts, err := s.dayParts(ctx)
		if err != nil {
			return sum, fmt.Errorf("clickhouse: day partitions: %w", err)
		}
		q := allSeqDaysQuery(s.db)
		if len(tenants) > 0 {
			q = tenantSeqDaysQuery(s.db, tenants)
		}
		totals, scoped, err := s.seqDaysOfQuery(ctx, q)
		if err != nil {
			return sum, err
		}
		sum = newDaySummary(parts, totals)
		for day := range sum.known {
			sum.known[day] = scoped[day]
		}
		if len(sum.unknown) == 0 {
			break
		}
	}
	return sum, nil
}

// newDaySummary classifies each day partition (see daySummary).
func newDaySummary(parts map[uint32]dayPart, byDay map[uint32][]partitionDay) daySummary {
	sum := daySummary{known: map[uint32][]partitionDay{}}
	for day, part := range parts {
		sum.all = append(sum.all, day)
		var total uint64
		for _, d := range byDay[day] {
			total += d.rows
		}
		if part.summarised(total) {
			sum.known[day] = byDay[day]
		} else {
			sum.unknown = append(sum.unknown, day)
		}
	}
	slices.Sort(sum.all)
	slices.Sort(sum.unknown)
	return sum
}

// partition returns where partition p's rows are: its rows on the known days, the
// unknown days, and every day partition.
func (sum daySummary) partition(p int32) seqDays {
	sd := seqDays{unknown: sum.unknown, all: sum.all}
	for _, day := range sum.all {
		for _, d := range sum.known[day] {
			if d.p == p && d.rows > 0 {
				sd.known = append(sd.known, d.seqDay)
			}
		}
	}
	return sd
}

// seqDaysOf reads where partition p's rows are from the day summary.
func (s *Store) seqDaysOf(ctx context.Context, p int32) (seqDays, error) {
	sum, err := s.summary(ctx)
	return sum.partition(p), err
}

// scanSeqDays reads which days hold partition p's seqs in [from, to) from the rows
// themselves: one statement over the partition's chain_partition, seq and chained_at
// columns. Every day it returns is known.
func (s *Store) scanSeqDays(ctx context.Context, p int32, from, to uint64) (seqDays, error) {
	var sd seqDays
	q := seqDaysScanQuery(s.db, p, from, to)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return sd, fmt.Errorf("clickhouse: days of partition %d: %w", p, err)
	}
	defer rows.Close()
	for rows.Next() {
		var d seqDay
		if err := rows.Scan(&d.day, &d.rows, &d.lo, &d.hi); err != nil {
			return sd, fmt.Errorf("clickhouse: days of partition %d: %w", p, err)
		}
		sd.known = append(sd.known, d)
		sd.all = append(sd.all, d.day)
	}
	if err := rows.Err(); err != nil {
		return sd, fmt.Errorf("clickhouse: days of partition %d: %w", p, err)
	}
	return sd, nil
}

// maxSeq is the highest seq of the known days.
func (sd seqDays) maxSeq() uint64 {
	var m uint64
	for _, d := range sd.known {
		m = max(m, d.hi)
	}
	return m
}

// overlapping returns the known days (ascending) whose span meets lo <= seq < hi.
func (sd seqDays) overlapping(lo, hi uint64) []uint32 {
	var days []uint32
	for _, d := range sd.known {
		if d.lo < hi && d.hi >= lo {
			days = append(days, d.day)
		}
	}
	return days
}

// eachWindow calls fn for each seq window [lo, hi) of at most w seqs covering
// [from, to), with the known days that can hold it. A window no known day holds is
// skipped: it is a gap, which a reader sees as a jump in seq.
func (sd seqDays) eachWindow(from, to, w uint64, fn func(lo, hi uint64, days []uint32) error) error {
	for lo := from; lo < to; lo += min(w, to-lo) {
		hi := min(lo+w, to)
		if days := sd.overlapping(lo, hi); len(days) > 0 {
			if err := fn(lo, hi, days); err != nil {
				return err
			}
		}
	}
	return nil
}

// mayHold returns the days (ascending) that may hold seqs in [lo, hi): the known
// days whose span meets it, and every unknown day.
func (sd seqDays) mayHold(lo, hi uint64) []uint32 {
	days := append(sd.overlapping(lo, hi), sd.unknown...)
	slices.Sort(days)
	return days
}

// dayRanges turns days (ascending, a subset of all) into the fewest ranges
// [first, last] of day partition ids that hold no other existing day: a run of days
// adjacent in all is one range, whatever the calendar gap between them.
func dayRanges(days, all []uint32) [][2]uint32 {
	var out [][2]uint32
	j := 0
	for i, d := range days {
		for j < len(all) && all[j] < d {
			j++
		}
		if i > 0 && j > 0 && all[j-1] == days[i-1] {
			out[len(out)-1][1] = d
		} else {
			out = append(out, [2]uint32{d, d})
		}
	}
	return out
}

// dayFilter returns the condition restricting a read of audit_events to the given
// day partitions, written on the table's partition key so the server reads only
// those partitions.
func dayFilter(days, all []uint32) (string, []any) {
	var terms []string
	var args []any
	for _, r := range dayRanges(days, all) {
		terms = append(terms, "(toYYYYMMDD(chained_at) >= ? AND toYYYYMMDD(chained_at) <= ?)")
		args = append(args, r[0], r[1])
	}
	return "(" + strings.Join(terms, " OR ") + ")", args
}

// followDays returns the day partitions that can hold a record of tenants (none:
// any tenant's) stored after pos: the known days on which the tenants have a seq
// past pos's in a partition pos has seen, or rows in a partition pos lacks; and
// every unknown day. all is every day partition, ascending. A tenant's position
// names only the partitions where it has rows; scoped to its own rows, the days of
// the others are not read on every poll.
//
// The summary is exact for every row stored through an insert: its view is filled
// by the same statement. While one insert's row is visible and its summary not yet
// (or the other way round, whichever the server writes first), the day's counts
// differ and the day is read.
func (s *Store) followDays(ctx context.Context, pos Position, tenants []string) (days, all []uint32, err error) {
	sum, err := s.scopedSummary(ctx, tenants)
	if err != nil {
		return nil, nil, err
	}
	days = slices.Clone(sum.unknown)
	for day, ds := range sum.known {
		if slices.ContainsFunc(ds, func(d partitionDay) bool {
			seq, seen := pos[d.p]
			return d.rows > 0 && (!seen || d.hi > seq)
		}) {
			days = append(days, day)
		}
	}
	slices.Sort(days)
	return days, sum.all, nil
}

// maxSeqs returns every partition's highest stored seq of tenants' rows (none:
// every tenant's; a partition with no such row is absent): from the known days'
// summaries, and by reading the unknown days' partitions only. Reading those for one
// partition would cost the same, since audit_events' sort key does not start with
// the partition.
func (s *Store) maxSeqs(ctx context.Context, tenants []string) (Position, error) {
	sum, err := s.scopedSummary(ctx, tenants)
	if err != nil {
		return nil, err
	}
	pos := Position{}
	raise := func(p int32, seq uint64) {
		if cur, ok := pos[p]; !ok || seq > cur {
			pos[p] = seq
		}
	}
	for _, ds := range sum.known {
		for _, d := range ds {
			if d.rows > 0 {
				raise(d.p, d.hi)
			}
		}
	}
	if len(sum.unknown) == 0 {
		return pos, nil
	}
	q := headInDaysQuery(s.db, sum.unknown, sum.all, tenants)
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: highest seqs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p uint32
		var seq uint64
		if err := rows.Scan(&p, &seq); err != nil {
			return nil, fmt.Errorf("clickhouse: highest seqs: %w", err)
		}
		raise(int32(p), seq)
	}
	return pos, rows.Err()
}

// allSeqDaysQuery reads audit_seq_days: every row counts for all tenants and is
// the scope's own.
func allSeqDaysQuery(db string) Query {
	return Query{"all_seq_days", "SELECT chain_partition, day, countMerge(rows), minMerge(seq_min), maxMerge(seq_max), toUInt8(1), toUInt8(1) FROM " + db + ".audit_seq_days GROUP BY chain_partition, day ORDER BY chain_partition, day", nil}
}

func headInDaysQuery(db string, days, all []uint32, tenants []string) Query {
	cond, args := dayFilter(days, all)
	where := []string{cond}
	if len(tenants) > 0 {
		in, targs := tenantIn(tenants)
		where = append(where, in)
		args = append(args, targs...)
	}
	return Query{"head_days", "SELECT chain_partition, max(seq) FROM " + db + ".audit_events WHERE " + whereClause(where) + " GROUP BY chain_partition ORDER BY chain_partition", args}
}

// seqDaysOfQuery reads a summary of seqs by partition and day (allSeqDaysQuery or
// tenantSeqDaysQuery): by day, the rows for all tenants, which a day is checked
// with against its partition, and the rows of the scope asked for. The all-tenant
// summary's rows are both.
func (s *Store) seqDaysOfQuery(ctx context.Context, q Query) (totals, scoped map[uint32][]partitionDay, err error) {
	rows, err := s.conn.Query(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, nil, fmt.Errorf("clickhouse: read %s: %w", q.Name, err)
	}
	defer rows.Close()
	totals, scoped = map[uint32][]partitionDay{}, map[uint32][]partitionDay{}
	for rows.Next() {
		var total, own uint8
		var p uint32
		var d seqDay
		if err := rows.Scan(&p, &d.day, &d.rows, &d.lo, &d.hi, &total, &own); err != nil {
			return nil, nil, fmt.Errorf("clickhouse: read %s: %w", q.Name, err)
		}
		if total != 0 {
			totals[d.day] = append(totals[d.day], partitionDay{int32(p), d})
		}
		if own != 0 {
			scoped[d.day] = append(scoped[d.day], partitionDay{int32(p), d})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("clickhouse: read %s: %w", q.Name, err)
	}
	return totals, scoped, nil
}

// tenantSeqDaysQuery reads audit_tenant_seq_days for tenants: the all-tenant rows
// (the empty scope) and the tenants' rows merged into one per partition and day.
// Only rows > 0 and the highest seq of those are used, so the merged row loses
// nothing; the table keeps no lowest seq (0). An empty tenant name is not a
// tenant's scope: it would read the totals as its own.
func tenantSeqDaysQuery(db string, tenants []string) Query {
	args := []any{""}
	for _, t := range tenants {
		args = append(args, t)
	}
	return Query{"tenant_seq_days", "SELECT chain_partition, day, countMerge(rows), toUInt64(0), maxMerge(seq_max), toUInt8(scope = '') AS total, toUInt8(scope != '') AS own FROM " + db +
		".audit_tenant_seq_days WHERE scope IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + ") GROUP BY chain_partition, day, total, own ORDER BY chain_partition, day, total, own", args}
}

func seqDaysScanQuery(db string, p int32, from, to uint64) Query {
	return Query{"seq_days_scan", "SELECT toYYYYMMDD(chained_at) AS day, count(), min(seq), max(seq) FROM " + db + ".audit_events WHERE chain_partition = ? AND seq >= ? AND seq < ? GROUP BY day ORDER BY day",
		[]any{uint32(p), from, to}}
}
