-- Which seqs each chain partition stored on each day partition of audit_events, so the
-- writer's open (the partition's highest stored seq) and a verification's seq windows
-- read only the day partitions that hold them. audit_events is sorted by tenant
-- first: a chain_partition/seq bound alone makes the server read those columns for
-- every row the hot window holds, once per question. day is the partition id (the
-- table's own toYYYYMMDD(chained_at)). A day's rows, summed over chain partitions, is
-- checked against the day partition's row count before the summary is used, so rows
-- that arrived without passing the view (ATTACH PARTITION from a backup, a dropped
-- view, a mutation that deleted rows) make the day count as unknown, and it is read.
-- One row per chain partition and day; rows of days that left the hot window are
-- ignored (their day partition is gone) and cost a few bytes each.
CREATE TABLE IF NOT EXISTS {db}.audit_seq_days (
    chain_partition   UInt32,
    day               UInt32,
    rows              AggregateFunction(count),
    seq_min           AggregateFunction(min, UInt64),
    seq_max           AggregateFunction(max, UInt64)
) ENGINE = AggregatingMergeTree()
ORDER BY (chain_partition, day);

-- Filled by every insert into audit_events, in the same statement.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.audit_seq_days_mv TO {db}.audit_seq_days AS
SELECT chain_partition, toYYYYMMDD(chained_at) AS day, countState() AS rows,
       minState(seq) AS seq_min, maxState(seq) AS seq_max
FROM {db}.audit_events GROUP BY chain_partition, day;

-- Events stored before this migration. An event inserted while it runs is counted
-- twice: its day's count then differs from the partition's and the day is read.
INSERT INTO {db}.audit_seq_days
SELECT chain_partition, toYYYYMMDD(chained_at) AS day, countState(), minState(seq), maxState(seq)
FROM {db}.audit_events GROUP BY chain_partition, day;
