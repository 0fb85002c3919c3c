-- trailkeep audit tables, version 1, for ClickHouse servers older than 23.8 (the Debian
-- package on these machines is 18.16): no DateTime64, TTL, skip indexes, projections or
-- codecs. Column names and types accepted by the insert path are the same as in
-- ../modern/0001_audit_tables.sql; only storage details differ. Retention of the hot
-- window is a scheduled ALTER TABLE ... DROP PARTITION (one partition per day).
CREATE TABLE IF NOT EXISTS {db}.audit_events (
    tenant            String,
    chain_partition   UInt32,
    seq               UInt64,
    chained_at        DateTime,
    chained_at_ns     Int64,
    occurred_at       DateTime,
    received_at       DateTime,
    event_id          String,
    idempotency_key   String,
    action            String,
    actor_type        String,
    actor_id          String,
    actor_email       String,
    resource_type     String,
    resource_id       String,
    resource_name     String,
    source_tool       String,
    session_id        String,
    tool_use_id       String,
    result_status     String,
    approved_digest   String,
    executed_digest   String,
    prev_hash         FixedString(64),
    leaf_hash         FixedString(64),
    event             String
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(chained_at)
ORDER BY (tenant, occurred_at, chain_partition, seq)
SETTINGS index_granularity = 8192;

-- Checkpoints are kept forever: no TTL, no retention job.
CREATE TABLE IF NOT EXISTS {db}.audit_checkpoints (
    chain_partition   UInt32,
    tree_size         UInt64,
    origin            String,
    root_hash         String,
    signed_at         DateTime,
    note              String,
    checkpoint        String
) ENGINE = MergeTree()
ORDER BY (chain_partition, tree_size);
