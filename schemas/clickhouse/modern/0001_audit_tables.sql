-- trailkeep audit tables, version 1, for ClickHouse >= 23.8. Same columns as
-- ../legacy/0001_audit_tables.sql (the insert and query code is one path); this file
-- adds what modern servers offer:
--   * DateTime64 times, LowCardinality for low-cardinality strings, ZSTD codecs;
--   * ORDER BY (tenant, occurred_at, ...) for tenant + time scans, and a projection
--     ordered by actor for "everything sarah did";
--   * bloom-filter skip indexes for resource id, session id and event id, and a token
--     index over the canonical event text for free-text search;
--   * a TTL for the hot window (default 90 days; {ttl_days}) that drops whole day
--     partitions (ttl_only_drop_parts), so expiry never rewrites data.
CREATE TABLE IF NOT EXISTS {db}.audit_events (
    tenant            LowCardinality(String),
    chain_partition   UInt32,
    seq               UInt64 CODEC(Delta, ZSTD(1)),
    chained_at        DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    chained_at_ns     Int64 CODEC(Delta, ZSTD(1)),
    occurred_at       DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    received_at       DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    event_id          String CODEC(ZSTD(1)),
    idempotency_key   String CODEC(ZSTD(1)),
    action            LowCardinality(String),
    actor_type        LowCardinality(String),
    actor_id          String CODEC(ZSTD(1)),
    actor_email       String CODEC(ZSTD(1)),
    resource_type     LowCardinality(String),
    resource_id       String CODEC(ZSTD(1)),
    resource_name     String CODEC(ZSTD(1)),
    source_tool       LowCardinality(String),
    session_id        String CODEC(ZSTD(1)),
    tool_use_id       String CODEC(ZSTD(1)),
    result_status     LowCardinality(String),
    approved_digest   String CODEC(ZSTD(1)),
    executed_digest   String CODEC(ZSTD(1)),
    prev_hash         FixedString(64) CODEC(ZSTD(1)),
    leaf_hash         FixedString(64) CODEC(ZSTD(1)),
    event             String CODEC(ZSTD(3)),
    INDEX idx_resource_id resource_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_tool_use_id tool_use_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_event_text event TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 4,
    PROJECTION by_actor (SELECT * ORDER BY tenant, actor_id, occurred_at)
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(chained_at)
ORDER BY (tenant, occurred_at, chain_partition, seq)
TTL toDateTime(chained_at) + INTERVAL {ttl_days} DAY DELETE
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- Checkpoints are kept forever: no TTL.
CREATE TABLE IF NOT EXISTS {db}.audit_checkpoints (
    chain_partition   UInt32,
    tree_size         UInt64,
    origin            String,
    root_hash         String,
    signed_at         DateTime64(9, 'UTC'),
    note              String CODEC(ZSTD(1)),
    checkpoint        String CODEC(ZSTD(1))
) ENGINE = MergeTree()
ORDER BY (chain_partition, tree_size);
