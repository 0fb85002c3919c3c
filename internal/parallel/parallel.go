// Package parallel spreads an index loop over the available cores. Ingest and the
// ClickHouse writer use it for per-item CPU work (validation, decoding) inside one
// request or batch, where a single goroutine would make the batch's latency the sum
// of its items.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// For calls fn(i) for every i in [0, n), on up to GOMAXPROCS goroutines, giving each
// at least minPerWorker items: below that, spreading costs more than it saves and the
// loop runs on the caller's goroutine. fn must be safe to call concurrently for
// different i. For returns when every call has returned.
func For(n, minPerWorker int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/max(1, minPerWorker))
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		}()
	}
	wg.Wait()
}
