-- What occurred_at spans each chain day holds, so a search bounded by after:/before:
-- reads only the day partitions that can hold a match (audit_events is partitioned by
-- chain day but sorted by tenant first: without a tenant, an occurred_at bound prunes
-- nothing). Derived from the data, not from a rule on how far occurred_at may stray
-- from the chain time, so it holds for every stored event, late or future-dated.
-- day is the UTC day number of chained_at (Unix seconds / 86400); times are Unix
-- seconds, the same on both server generations.
CREATE TABLE IF NOT EXISTS {db}.audit_days (
    day               UInt32,
    occurred_min      AggregateFunction(min, UInt32),
    occurred_max      AggregateFunction(max, UInt32)
) ENGINE = AggregatingMergeTree()
ORDER BY day;

-- Filled by every insert into audit_events, in the same statement.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.audit_days_mv TO {db}.audit_days AS
SELECT toUInt32(intDiv(toUnixTimestamp(chained_at), 86400)) AS day,
       minState(toUInt32(toUnixTimestamp(occurred_at))) AS occurred_min,
       maxState(toUInt32(toUnixTimestamp(occurred_at))) AS occurred_max
FROM {db}.audit_events GROUP BY day;

-- Events stored before this migration (an event inserted while it runs may be counted
-- twice, which changes no minimum or maximum).
INSERT INTO {db}.audit_days
SELECT toUInt32(intDiv(toUnixTimestamp(chained_at), 86400)) AS day,
       minState(toUInt32(toUnixTimestamp(occurred_at))),
       maxState(toUInt32(toUnixTimestamp(occurred_at)))
FROM {db}.audit_events GROUP BY day;
