// Package sqlscope turns a power user's SQL into a statement that can read only
// the audit tables, and only the rows of the caller's tenants.
//
// It is the first of two locks; the second is the ClickHouse user the query API
// runs SQL as (see the README's query API section). The statement is parsed into a
// syntax tree of the subset below, every name in it is resolved, and the statement
// ClickHouse runs is printed from the tree, never copied from the input: every
// operation is parenthesised, every name back-quoted, every literal re-encoded and
// every audit table replaced by its tenant-scoped subquery. A table can therefore
// appear only where the printer writes one. Anything outside the subset is
// refused with the byte offset and the reason (*Error).
//
// # Accepted grammar
//
//	statement  = query [";"]
//	query      = select { ("UNION ALL" | "UNION DISTINCT") select }
//	select     = [WITH with {"," with}] SELECT [DISTINCT] item {"," item}
//	             [FROM table {join}] [WHERE expr] [GROUP BY expr {"," expr}]
//	             [HAVING expr] [ORDER BY order {"," order}]
//	             [LIMIT n [OFFSET n] | LIMIT n "," n]
//	with       = name AS "(" query ")"          -- a table CTE, inlined where read
//	           | expr AS name                   -- a named expression
//	item       = "*" | name ".*" | expr [[AS] name]
//	table      = ( audit_events | audit_checkpoints | db "." (audit_events | audit_checkpoints)
//	             | cte-name | "(" query ")" ) [[AS] name]
//	join       = "," table
//	           | [LEFT] ARRAY JOIN expr [[AS] name] {"," expr [[AS] name]}
//	           | [ANY|ALL|ASOF|SEMI|ANTI] [INNER|LEFT|RIGHT|FULL|CROSS] [OUTER] JOIN table
//	             [ON expr | USING ["("] name {"," name} [")"]]
//	order      = expr [ASC|DESC] [NULLS (FIRST|LAST)]
//	expr       = lambda | expr "?" expr ":" expr | expr OR expr | expr AND expr | NOT expr
//	           | expr ("="|"=="|"!="|"<>"|"<"|">"|"<="|">=") expr
//	           | expr [NOT] (LIKE|ILIKE) expr | expr [NOT] BETWEEN expr AND expr
//	           | expr IS [NOT] NULL | expr [NOT] IN in-list
//	           | expr "||" expr | expr ("+"|"-") expr | expr ("*"|"/"|"%") expr | "-" expr
//	           | expr "[" expr "]" | expr "." digits
//	           | literal | column | function | "(" query ")" | "(" expr ")"
//	           | "(" expr "," expr {"," expr} ")" | "[" [expr {"," expr}] "]"
//	           | CAST "(" expr AS type ")" | CASE [expr] WHEN expr THEN expr {...} [ELSE expr] END
//	           | INTERVAL expr (SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|QUARTER|YEAR)
//	in-list    = "(" query ")" | "(" expr {"," expr} ")" | "[" expr {"," expr} "]"
//	function   = allowed-name "(" [DISTINCT] [expr {"," expr}] ")"    -- or count(*)
//	           | aggregate "(" params ")" "(" args ")"                 -- quantile(0.9)(x)
//	lambda     = name "->" expr | "(" name {"," name} ")" "->" expr
//	column     = name | alias "." name
//	literal    = 'string' | number | NULL | TRUE | FALSE
//
// Names are plain (letters, digits, _; at most 64), bare or quoted with ` or ".
// Every column must be a column of a table the query reads (EventColumns,
// CheckpointColumns, or a subquery's named outputs), an alias the statement
// defines, or a lambda parameter. Every function must be on the allowlist
// (Functions): functions that compute on their arguments only; nothing that names
// a table, dictionary, file, URL, setting or the server. IN takes a list or a
// subquery, never a bare name or a single name in parentheses, which ClickHouse
// would read as a table. Refused on purpose: SETTINGS, FORMAT, INTO, FINAL,
// SAMPLE, PREWHERE, GLOBAL, window functions, WITH TOTALS/ROLLUP/CUBE, LIMIT BY,
// INTERSECT, EXCEPT, x::T, * EXCEPT/REPLACE, COLUMNS(...), table functions, query
// parameters and every statement but SELECT.
//
// # What a tenant sees
//
// audit_events is restricted to the caller's tenants. audit_checkpoints is
// restricted to the partitions that hold at least one of the caller's events:
// those checkpoints are what proves the caller's events, and their tree sizes are
// the partition's total count, which a tenant learns from any inclusion proof
// anyway. Checkpoints of partitions holding only other tenants' events are not
// visible, so a tenant learns nothing of partitions it has no events in.
package sqlscope
