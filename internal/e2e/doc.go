// Package e2e holds end-to-end tests of the running pipeline — ingest, Kafka, chainer,
// ClickHouse writer — on the real broker and server. It has no non-test code.
package e2e
