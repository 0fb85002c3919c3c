-- Merkle tree reads for proofs. audit_events is ordered for searches (tenant, time),
-- so reading a partition's leaves in tree order scans the table; these two tables
-- hold the tree in its own order, so an inclusion or consistency proof reads
-- O(log n) rows (see chain.TileHeight):
--   * audit_leaves: every record's leaf hash by (partition, seq), kept for the hot
--     window like audit_events (the same day partitions, dropped by the same job);
--   * audit_subtrees: the hash of every perfect subtree of 256^k leaves (k >= 1),
--     kept forever like checkpoints: a proof of a recent record needs the hashes of
--     the old, expired ranges to its left. About one row per 255 records.
-- Both are a cache of what audit_events and the signed checkpoints already fix: a
-- proof built from them is checked against the signed root before it is served,
-- and a range they lack is read from audit_events. Re-inserted rows (a retried
-- insert) are identical; readers take one of each.
CREATE TABLE IF NOT EXISTS {db}.audit_leaves (
    chain_partition   UInt32,
    seq               UInt64,
    chained_at        DateTime,
    leaf_hash         FixedString(64)
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(chained_at)
ORDER BY (chain_partition, seq);

CREATE TABLE IF NOT EXISTS {db}.audit_subtrees (
    chain_partition   UInt32,
    level             UInt8,
    idx               UInt64,
    hash              FixedString(64)
) ENGINE = ReplacingMergeTree()
ORDER BY (chain_partition, level, idx);

-- Records stored before this migration get their leaves here, server-side; the
-- writer computes their subtrees from them when it next opens each partition (or
-- Store.FillTree does).
INSERT INTO {db}.audit_leaves (chain_partition, seq, chained_at, leaf_hash)
SELECT chain_partition, seq, chained_at, leaf_hash FROM {db}.audit_events;
