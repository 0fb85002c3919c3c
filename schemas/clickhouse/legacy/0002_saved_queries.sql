-- Saved searches: a named filter-language query per tenant (trailctl query save/list/run).
-- A save or delete is a new row with a higher version; readers take the row with the
-- highest version per (tenant, name), so no UPDATE is ever needed and the history of a
-- saved query stays readable until merges collapse it.
CREATE TABLE IF NOT EXISTS {db}.saved_queries (
    tenant       String,
    name         String,
    query        String,
    description  String,
    saved_by     String,
    saved_at     DateTime,
    version      UInt64,
    deleted      UInt8
) ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, name);
