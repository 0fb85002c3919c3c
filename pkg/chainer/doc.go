// Package chainer turns audit.events into the tamper-evident log: for each partition,
// exactly one live writer assigns seq, links prev_hash, appends the leaf to the
// partition's RFC 6962 tree (package chain) and produces the chained record to
// audit.chained — same partition number — in the Kafka transaction that also commits
// the input offsets. Every N records or T seconds a signed checkpoint goes to
// audit.checkpoints in the same transaction. A record that cannot be chained goes to
// audit.deadletter with the reason, in the same transaction, and the chain goes on.
//
// Exactly-once and no forks come from Kafka, not from local state:
//
//   - franz-go's GroupTransactSession gives read-committed consumption, a stable
//     transactional id per instance (zombie instances are fenced by epoch) and
//     offset commits tied to the consumer-group generation (KIP-447), so a chainer
//     that lost a partition cannot commit appends to it.
//   - Chain state is restored from the committed tail of audit.checkpoints and
//     audit.chained whenever a partition is (re)assigned or a transaction aborts —
//     never from memory or a file — and the restored tail is verified with the same
//     code auditors run (chain.Restore).
//   - The chain is fed the input record's timestamp, not the clock, so a replay after
//     an abort produces byte-identical records.
package chainer
