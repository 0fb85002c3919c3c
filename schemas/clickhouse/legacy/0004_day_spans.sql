-- What occurred_at span each day partition of audit_events holds, so a search bounded
-- by after:/before: reads only the partitions that can hold a match (audit_events is
-- partitioned by chain day but sorted by tenant first: without a tenant, an occurred_at
-- bound prunes nothing). Derived from the data, not from a rule on how far occurred_at
-- may stray from the chain time, so it holds for every stored event, late or
-- future-dated. day is the partition id (the table's own toYYYYMMDD(chained_at));
-- rows is checked against the partition's row count before a day is skipped, so rows
-- that arrived without passing the view (ATTACH PARTITION from a backup, a dropped
-- view) make the day count as unknown, and it is read.
CREATE TABLE IF NOT EXISTS {db}.audit_days (
    day               UInt32,
    rows              AggregateFunction(count),
    occurred_min      AggregateFunction(min, UInt32),
    occurred_max      AggregateFunction(max, UInt32),
    chained_min_ns    AggregateFunction(min, Int64)
) ENGINE = AggregatingMergeTree()
ORDER BY day;

-- Filled by every insert into audit_events, in the same statement.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.audit_days_mv TO {db}.audit_days AS
SELECT toYYYYMMDD(chained_at) AS day, countState() AS rows,
       minState(toUInt32(toUnixTimestamp(occurred_at))) AS occurred_min,
       maxState(toUInt32(toUnixTimestamp(occurred_at))) AS occurred_max,
       minState(chained_at_ns) AS chained_min_ns
FROM {db}.audit_events GROUP BY day;

-- Events stored before this migration. An event inserted while it runs is counted
-- twice: its day's count then differs from the partition's and the day is read.
INSERT INTO {db}.audit_days
SELECT toYYYYMMDD(chained_at) AS day, countState(),
       minState(toUInt32(toUnixTimestamp(occurred_at))),
       maxState(toUInt32(toUnixTimestamp(occurred_at))),
       minState(chained_at_ns)
FROM {db}.audit_events GROUP BY day;
