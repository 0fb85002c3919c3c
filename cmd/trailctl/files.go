package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

// openInput opens a file, or standard input for "" or "-".
func openInput(path string) (io.ReadCloser, error) {
	if path == "" || path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(path)
}

// lines yields the non-empty lines of r with their 1-based numbers. Lines
// may be as long as maxLine.
func lines(r io.Reader, maxLine int) iter.Seq2[int, []byte] {
	return func(yield func(int, []byte) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), maxLine)
		for n := 1; sc.Scan(); n++ {
			l := bytes.TrimSpace(sc.Bytes())
			if len(l) == 0 {
				continue
			}
			if !yield(n, l) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(-1, []byte(err.Error()))
		}
	}
}

// readRecords streams chained records from an NDJSON file.
func readRecords(path string) iter.Seq2[chain.Record, error] {
	return func(yield func(chain.Record, error) bool) {
		f, err := openInput(path)
		if err != nil {
			yield(chain.Record{}, err)
			return
		}
		defer f.Close()
		for n, l := range lines(f, 16<<20) {
			if n < 0 {
				yield(chain.Record{}, fmt.Errorf("%s: %s", path, l))
				return
			}
			var r chain.Record
			if err := json.Unmarshal(l, &r); err != nil {
				if !yield(chain.Record{}, failed("%s:%d: %v", path, n, err)) {
					return
				}
				continue
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

func readCheckpoints(path string) ([]chain.SignedCheckpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cps []chain.SignedCheckpoint
	for n, l := range lines(f, 1<<20) {
		if n < 0 {
			return nil, fmt.Errorf("%s: %s", path, l)
		}
		var cp chain.SignedCheckpoint
		if err := json.Unmarshal(l, &cp); err != nil {
			return nil, failed("%s:%d: %v", path, n, err)
		}
		cps = append(cps, cp)
	}
	return cps, nil
}
