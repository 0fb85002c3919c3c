-- Merkle tree reads for proofs; the same tables as ../legacy/0003_merkle_tree.sql
-- (see there for why), with the hot-window TTL on audit_leaves and codecs.
CREATE TABLE IF NOT EXISTS {db}.audit_leaves (
    chain_partition   UInt32,
    seq               UInt64 CODEC(Delta, ZSTD(1)),
    chained_at        DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    leaf_hash         FixedString(64) CODEC(ZSTD(1))
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(chained_at)
ORDER BY (chain_partition, seq)
TTL toDateTime(chained_at) + INTERVAL {ttl_days} DAY DELETE
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS {db}.audit_subtrees (
    chain_partition   UInt32,
    level             UInt8,
    idx               UInt64 CODEC(Delta, ZSTD(1)),
    hash              FixedString(64) CODEC(ZSTD(1))
) ENGINE = ReplacingMergeTree()
ORDER BY (chain_partition, level, idx);

-- Records stored before this migration get their leaves here, server-side; the
-- writer computes their subtrees from them when it next opens each partition (or
-- Store.FillTree does).
INSERT INTO {db}.audit_leaves (chain_partition, seq, chained_at, leaf_hash)
SELECT chain_partition, seq, chained_at, leaf_hash FROM {db}.audit_events;
