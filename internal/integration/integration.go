// Package integration is the one gate in front of every real server a test needs:
// the Kafka broker, the ClickHouse server, the S3 gateway and the in-process
// ClickHouse engine. The shared test helpers (kafkatest, chtest, s3test, chdb,
// sinktest) call Require before they start anything, so:
//
//   - `go test ./...` (make test) starts what the tests need and fails a test whose
//     server cannot start, with the reason: never a silent skip;
//   - `go test -short ./...` (make test-unit) skips exactly the tests that need a
//     server, each saying which one, and starts nothing.
//
// A test needs no gate of its own: reaching a helper is what makes it an
// integration test.
package integration

import "testing"

// Require skips t under -short, naming the server it would have started.
func Require(t testing.TB, server string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test: needs %s (make test runs it; -short, as make test-unit, skips it)", server)
	}
}
