package clickhouse_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/internal/chdb"
	"github.com/trailkeep/trailkeep/internal/chtest"
	"github.com/trailkeep/trailkeep/internal/sqlcorpus"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/sqlscope"
	"github.com/trailkeep/trailkeep/pkg/store/clickhouse"
)

// The differential oracle of the SQL scope. Three tenants share partitions; for
// every statement of the corpus (pkg/sqlscope/testdata/corpus.txt) and of a
// mutator that rewrites it, either sqlscope refuses the statement, or the
// rewritten statement, run with scope {acme} on the database holding every
// tenant, returns exactly what the original statement returns on a database
// holding only acme's rows (and the checkpoints of the partitions acme's rows are
// in). It runs on the 18.16 server and on the 26.x engine in process.

const oracleTenant = "acme"

// oracleData builds the shared log: partition 0 holds acme and globex, partition 1
// acme and initech, partition 2 globex only.
func oracleData(t *testing.T) (all []chain.Record, cps []clickhouse.StoredCheckpoint, mine []chain.Record, mineCps []clickhouse.StoredCheckpoint) {
	log := chaintest.New(t, "oracle", 4)
	base := time.Now().UTC().Add(-6 * time.Hour).Truncate(time.Second)
	tenantOf := map[string]string{}
	add := func(p int32, tenant string, i int, action, actor, resource string) {
		doc := chaintest.Doc(action, actor, "skill", resource)
		doc["metadata"] = map[string]any{"note": tenant + "-canary-" + strconv.Itoa(i)}
		rec := log.Add(p, tenant, base.Add(time.Duration(len(log.Records))*time.Minute), doc)
		tenantOf[fmt.Sprint(rec.Partition, "/", rec.Seq)] = tenant
	}
	for i := 0; i < 8; i++ {
		add(0, "acme", i, []string{"skill.updated", "team.member_added"}[i%2], fmt.Sprintf("user%d@acme.example", i%3), "api-conventions")
		if i < 6 {
			add(0, "globex", i, "skill.deleted", "ops@globex.example", "globex-secret-resource")
		}
	}
	for i := 0; i < 6; i++ {
		add(1, "acme", i+8, "skill.updated", "user1@acme.example", "deploy-rules")
		add(1, "initech", i, "auth.sso_failed", "root@initech.example", "initech-vault")
	}
	for i := 0; i < 6; i++ {
		add(2, "globex", i+6, "skill.updated", "ops@globex.example", "globex-only-partition")
	}
	for p := int32(0); p < 3; p++ {
		log.Sign(p)
	}
	for _, r := range log.Records {
		if tenantOf[fmt.Sprint(r.Partition, "/", r.Seq)] == oracleTenant {
			mine = append(mine, r)
		}
	}
	for _, cp := range log.Checkpoints {
		if cp.Partition != 2 {
			mineCps = append(mineCps, cp)
		}
	}
	return log.Records, log.Checkpoints, mine, mineCps
}

// engineRunner runs a statement with a default database and returns its TSV rows.
type engineRunner func(db, sql string) ([]string, error)

func legacyRunner(t *testing.T) engineRunner {
	host, port, _ := strings.Cut(chtest.Addr, ":")
	n, _ := strconv.Atoi(port)
	base := "http://" + host + ":" + strconv.Itoa(n+1) + "/"
	client := &http.Client{Timeout: 30 * time.Second}
	return func(db, sql string) ([]string, error) {
		q := url.Values{"database": {db}, "readonly": {"1"}, "max_execution_time": {"20"}, "default_format": {"TSV"}}
		resp, err := client.Post(base+"?"+q.Encode(), "text/plain", strings.NewReader(sql))
		if err != nil {
			t.Fatalf("ClickHouse 18.16 over HTTP: %v", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s", strings.TrimSpace(string(b)))
		}
		return tsvRows(string(b)), nil
	}
}

func modernRunner(t *testing.T, engine *chdb.Engine) engineRunner {
	return func(db, sql string) ([]string, error) {
		if _, err := engine.Query("USE "+db, "TSV"); err != nil {
			t.Fatal(err)
		}
		defer engine.Query("USE default", "TSV")
		out, err := engine.Query(sql, "TSV")
		if err != nil {
			return nil, err
		}
		return tsvRows(out), nil
	}
}

func tsvRows(out string) []string {
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		rows = nil
	}
	slices.Sort(rows) // a multiset: statements without ORDER BY may return any order
	return rows
}

// oracle compares one statement; it returns whether the statement was run and a
// description of the difference, "" when there is none. legacy is the scope's
// Legacy, set for the 18.16 server.
//
// The reference is the original statement on the database holding only the
// tenant's rows. When the server cannot run it, the same tree printed for that
// database without a scope is; when neither runs, or the scoped statement fails
// where the original runs, the scoped tree on the tenant's database is: what the
// scope returns, or how it fails, must not depend on the other tenants' rows.
func oracle(run engineRunner, legacy bool, full, mine, sql string) (ran bool, diff string) {
	scoped := func(db string, tenants []string) (string, error) {
		return sqlscope.Scope{Database: db, Tenants: tenants, Legacy: legacy}.Rewrite(strings.ReplaceAll(sql, "{db}", db))
	}
	stmt, err := scoped(full, []string{oracleTenant})
	if err != nil {
		return false, ""
	}
	got, gerr := run("default", stmt)
	if gerr == nil {
		// Rows that change between two runs over the same data are not the data's:
		// 18.16's ALL joins returned uninitialised server memory this way.
		again, aerr := run("default", stmt)
		if aerr != nil || !slices.Equal(got, again) {
			return true, fmt.Sprintf("the scoped statement's result is not reproducible:\n%.400q\nthen %.400q (%v)\nrewritten: %s", got, again, aerr, stmt)
		}
	}
	want, werr := run(mine, strings.TrimSuffix(strings.TrimSpace(strings.ReplaceAll(sql, "{db}", mine)), ";"))
	if werr != nil && gerr == nil {
		// The server cannot run the original (18.16 has no table CTEs, IN [...] or
		// comma joins; the printed form has none of them).
		alone, err := scoped(mine, nil)
		if err != nil {
			return true, fmt.Sprintf("accepted for %s but not for %s: %v", full, mine, err)
		}
		want, werr = run("default", alone)
	}
	if werr != nil && gerr == nil || gerr != nil && werr == nil {
		same, err := scoped(mine, []string{oracleTenant})
		if err != nil {
			return true, fmt.Sprintf("accepted for %s but not for %s: %v", full, mine, err)
		}
		want, werr = run("default", same)
	}
	// Database names are the test's: a literal '{db}' prints them.
	got, want = renamed(got, full), renamed(want, mine)
	switch {
	case gerr != nil && werr != nil:
		return true, ""
	case gerr != nil || werr != nil:
		return true, fmt.Sprintf("scoped error: %v\noriginal-on-%s error: %v\nrewritten: %s", gerr, oracleTenant, werr, stmt)
	case !slices.Equal(got, want):
		return true, fmt.Sprintf("scoped (%d rows): %.400q\noriginal on %s's rows (%d rows): %.400q\nrewritten: %s", len(got), got, oracleTenant, len(want), want, stmt)
	}
	return true, ""
}

// renamed replaces a database's name in result rows with {db}, sorted again.
func renamed(rows []string, db string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.ReplaceAll(r, db, "{db}")
	}
	slices.Sort(out)
	return out
}

var wordRE = regexp.MustCompile("'(?:[^'\\\\]|\\\\.)*'|`[^`]*`|[A-Za-z_][A-Za-z0-9_.{}]*|[0-9.]+|\\S")

// mutate returns a random edit of sql: a token replaced, inserted, deleted or
// swapped, or a splice with another statement. The pools lean on what an attacker
// would try: other tables, the audit tables in odd positions, IN, UNION, tenants.
func mutate(r *rand.Rand, sql string, corpus []sqlcorpus.Entry) string {
	toks := wordRE.FindAllString(sql, -1)
	pool := []string{"system.one", "{db}.audit_events", "{db}.saved_queries", "audit_events", "audit_checkpoints", "tenant", "seq",
		"chain_partition", "'globex'", "'initech'", "IN", "NOT", "(", ")", ",", "SELECT", "FROM", "WHERE", "UNION ALL", "JOIN", "1", "0",
		"AS", "tree_size", "count()", "x", "OR 1=1", "--", "/*", "*/", ";", "'", "`", "IN (system.one)", "GLOBAL", "in(0, system.one)"}
	if len(toks) == 0 {
		return sql
	}
	i := r.IntN(len(toks))
	switch r.IntN(5) {
	case 0:
		toks[i] = pool[r.IntN(len(pool))]
	case 1:
		toks = slices.Insert(toks, i, pool[r.IntN(len(pool))])
	case 2:
		toks = slices.Delete(toks, i, i+1)
	case 3:
		if i+1 < len(toks) {
			toks[i], toks[i+1] = toks[i+1], toks[i]
		}
	case 4:
		other := wordRE.FindAllString(corpus[r.IntN(len(corpus))].SQL, -1)
		j := r.IntN(len(other))
		toks = append(toks[:i:i], other[j:]...)
	}
	return strings.Join(toks, " ")
}

func TestSQLScopeDifferentialOracle(t *testing.T) {
	all, cps, mine, mineCps := oracleData(t)
	full, only := chtest.Store(t), chtest.Store(t)
	ctx := t.Context()
	// One stored time for every store and engine: SELECT * reads it.
	signedAt := time.Now().UTC().Truncate(time.Second)
	for _, s := range []struct {
		st   *clickhouse.Store
		recs []chain.Record
		cps  []clickhouse.StoredCheckpoint
	}{{full, all, cps}, {only, mine, mineCps}} {
		if err := s.st.InsertRecords(ctx, s.recs); err != nil {
			t.Fatal(err)
		}
		if err := s.st.InsertCheckpointsAt(ctx, s.cps, signedAt); err != nil {
			t.Fatal(err)
		}
	}
	engine := modernEngine(t, full.Database())
	modernEngine(t, only.Database())
	for _, s := range []struct {
		db   string
		recs []chain.Record
		cps  []clickhouse.StoredCheckpoint
	}{{full.Database(), all, cps}, {only.Database(), mine, mineCps}} {
		engineInsertRecords(t, engine, s.db, s.recs)
		engineInsert(t, engine, s.db, "audit_checkpoints", clickhouse.CheckpointColumns, len(s.cps), func(i int) ([]any, error) {
			return clickhouse.CheckpointValues(s.cps[i], signedAt)
		})
	}
	corpus := sqlcorpus.Read(t)
	mutants := 1000
	if v, err := strconv.Atoi(os.Getenv("TRAILKEEP_ORACLE_MUTANTS")); err == nil {
		mutants = v
	}
	seed := uint64(20261202)
	if v, err := strconv.ParseUint(os.Getenv("TRAILKEEP_ORACLE_SEED"), 10, 64); err == nil {
		seed = v
	}
	for _, e := range []struct {
		name   string
		run    engineRunner
		legacy bool
	}{{"clickhouse-18.16", legacyRunner(t), true}, {"clickhouse-26-in-process", modernRunner(t, engine), false}} {
		t.Run(e.name, func(t *testing.T) {
			ran := 0
			for _, c := range corpus {
				r, diff := oracle(e.run, e.legacy, full.Database(), only.Database(), c.SQL)
				if r {
					ran++
				}
				if diff != "" {
					t.Errorf("corpus %q differs:\n%s", c.SQL, diff)
				}
			}
			rng := rand.New(rand.NewPCG(seed, 7))
			ranMutants := 0
			for n := 0; n < mutants; n++ {
				m := corpus[rng.IntN(len(corpus))].SQL
				for k := 1 + rng.IntN(3)/2; k > 0; k-- {
					m = mutate(rng, m, corpus)
				}
				r, diff := oracle(e.run, e.legacy, full.Database(), only.Database(), m)
				if r {
					ranMutants++
				}
				if diff != "" && !orderSensitive(m) {
					t.Errorf("mutant %q (seed %d) differs:\n%s", m, seed, diff)
				}
			}
			t.Logf("%s: %d corpus statements and %d of %d mutants accepted and compared", e.name, ran, ranMutants, mutants)
			if ran < 150 {
				t.Errorf("only %d corpus statements ran", ran)
			}
		})
	}
}

// orderSensitive reports whether a mutant's result may legitimately differ
// between two databases holding the same rows in different parts: a LIMIT
// without a total order, or an aggregate that keeps an arbitrary row.
func orderSensitive(sql string) bool {
	s := strings.ToLower(sql)
	for _, w := range []string{"limit", "any(", "anylast(", "grouparray(", "topk(", "argmax(", "argmin("} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
