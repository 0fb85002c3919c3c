-- Which seqs each tenant stored in each chain partition on each day partition of
-- audit_events, so a tenant's follower (trailctl tail -f --tenant, the console's live
-- view, /v1/follow with a tenant token) and its head read only the days that can hold
-- the tenant's new rows. A tenant's position names only the partitions where it has
-- rows; every other partition may hold any seq of it, and audit_seq_days cannot say
-- on which days the tenant has none, so each poll read the tenant's whole history.
--
-- scope is a tenant, or '' for all tenants: the view writes each group twice, so the
-- '' rows of a day count every row of it, as audit_seq_days does, and are checked
-- against the day partition's row count before the day's tenant rows are used. A
-- tenant's rows and the '' rows of one insert are one block of this table, so they
-- are both there or neither. The '' rows are never answered to anyone.
CREATE TABLE IF NOT EXISTS {db}.audit_tenant_seq_days (
    scope             String,
    chain_partition   UInt32,
    day               UInt32,
    rows              AggregateFunction(count),
    seq_max           AggregateFunction(max, UInt64)
) ENGINE = AggregatingMergeTree()
ORDER BY (scope, chain_partition, day);

-- Filled by every insert into audit_events, in the same statement.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.audit_tenant_seq_days_mv TO {db}.audit_tenant_seq_days AS
SELECT arrayJoin([toString(tenant), '']) AS scope, chain_partition, toYYYYMMDD(chained_at) AS day,
       countState() AS rows, maxState(seq) AS seq_max
FROM {db}.audit_events GROUP BY scope, chain_partition, day;

-- Events stored before this migration: the tenants' rows first, then the totals, so
-- no day's totals are visible before its tenants' rows. An event inserted while this
-- runs is counted twice: its day's count then differs from the partition's and the
-- day is read.
INSERT INTO {db}.audit_tenant_seq_days
SELECT toString(tenant) AS scope, chain_partition, toYYYYMMDD(chained_at) AS day, countState(), maxState(seq)
FROM {db}.audit_events GROUP BY scope, chain_partition, day;

INSERT INTO {db}.audit_tenant_seq_days
SELECT '' AS scope, chain_partition, toYYYYMMDD(chained_at) AS day, countState(), maxState(seq)
FROM {db}.audit_events GROUP BY chain_partition, day;
