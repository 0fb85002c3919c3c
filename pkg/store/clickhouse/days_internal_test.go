package clickhouse

import (
	"slices"
	"testing"
)

func TestDayRanges(t *testing.T) {
	all := []uint32{20261128, 20261130, 20261201, 20261202, 20261205}
	for _, tc := range []struct {
		name string
		days []uint32
		want [][2]uint32
	}{
		{"none", nil, nil},
		{"one", []uint32{20261201}, [][2]uint32{{20261201, 20261201}}},
		{"adjacent across a month end", []uint32{20261130, 20261201, 20261202}, [][2]uint32{{20261130, 20261202}}},
		{"adjacent in the part list, days apart in the calendar", []uint32{20261202, 20261205}, [][2]uint32{{20261202, 20261205}}},
		{"an existing day between", []uint32{20261128, 20261201}, [][2]uint32{{20261128, 20261128}, {20261201, 20261201}}},
		{"every day", all, [][2]uint32{{20261128, 20261205}}},
		{"ends", []uint32{20261128, 20261205}, [][2]uint32{{20261128, 20261128}, {20261205, 20261205}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dayRanges(tc.days, all)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("dayRanges(%v) = %v, want %v", tc.days, got, tc.want)
			}
			// Each range holds exactly the chosen days of all.
			var covered []uint32
			for _, d := range all {
				for _, r := range got {
					if d >= r[0] && d <= r[1] {
						covered = append(covered, d)
					}
				}
			}
			if !slices.Equal(covered, tc.days) && len(tc.days) > 0 {
				t.Fatalf("ranges %v cover %v, want %v", got, covered, tc.days)
			}
		})
	}
}

func TestDaySummary(t *testing.T) {
	parts := map[uint32]dayPart{
		20261201: {rows: 10},               // summary matches
		20261202: {rows: 7},                // summary counted 6: a row past the view
		20261203: {rows: 5, mutated: true}, // counts match, a mutation ran
		20261204: {rows: 4},                // never summarised
		20261205: {rows: 3},                // summarised, no row of partition 0
	}
	day := func(p int32, day uint32, rows, lo, hi uint64) partitionDay {
		return partitionDay{p, seqDay{day: day, rows: rows, lo: lo, hi: hi}}
	}
	byDay := map[uint32][]partitionDay{
		20261130: {day(0, 20261130, 9, 0, 8)}, // its partition is gone
		20261201: {day(0, 20261201, 4, 9, 12), day(1, 20261201, 6, 0, 5)},
		20261202: {day(0, 20261202, 2, 13, 14), day(1, 20261202, 4, 6, 9)},
		20261203: {day(0, 20261203, 1, 15, 15), day(1, 20261203, 4, 10, 13)},
		20261205: {day(1, 20261205, 3, 14, 16)},
	}
	sum := newDaySummary(parts, byDay)
	if want := []uint32{20261202, 20261203, 20261204}; !slices.Equal(sum.unknown, want) {
		t.Errorf("unknown = %v, want %v", sum.unknown, want)
	}
	if want := []uint32{20261201, 20261202, 20261203, 20261204, 20261205}; !slices.Equal(sum.all, want) {
		t.Errorf("all = %v, want %v", sum.all, want)
	}
	sd := sum.partition(0)
	if want := []seqDay{{day: 20261201, rows: 4, lo: 9, hi: 12}}; !slices.Equal(sd.known, want) {
		t.Errorf("partition 0 known = %v, want %v", sd.known, want)
	}
	if want := []seqDay{{day: 20261201, rows: 6, lo: 0, hi: 5}, {day: 20261205, rows: 3, lo: 14, hi: 16}}; !slices.Equal(sum.partition(1).known, want) {
		t.Errorf("partition 1 known = %v, want %v", sum.partition(1).known, want)
	}
	if got := sd.overlapping(12, 13); !slices.Equal(got, []uint32{20261201}) {
		t.Errorf("overlapping(12, 13) = %v", got)
	}
	if got := sd.overlapping(13, 20); len(got) != 0 {
		t.Errorf("overlapping(13, 20) = %v, want none", got)
	}
}
