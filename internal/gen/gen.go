// Package gen generates a realistic, deterministic audit log for benchmarks: many
// tenants with their own people, agents and skills, a taxonomy of actions with
// realistic weights (agent tool calls dominate, rule and team changes are rare),
// spread over a time window and chained per partition exactly as the chainer does,
// so the stored result also verifies.
//
// The same Options always give the same events (ids, times and hashes included), so
// a benchmark database can be reused across runs and compared between machines.
//
//	tenants    tenant-000 .. tenant-NNN, keyed to partitions as Kafka would (index mod P)
//	actors     user:u<k>@<tenant>.example (Zipf: a few people do most of the work),
//	           agent:claude-code-<k>, service:registry
//	actions    tool_call.executed 40%, tool_call.approved 20%, prompt.submitted 12%,
//	           session.started/ended 8%, skill.* 7%, mcp_server.* 4%, permission.denied 3%,
//	           rule.* 3%, team.* 2%, policy.updated 1%
//	resources  the skill, rule, team, tool or session the action is about
//	results    success 93%, failure 4%, denied 3%
package gen

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
)

// Options shape the generated log. Zero values take the defaults in brackets.
type Options struct {
	Events     int           // total events [10,000,000]
	Tenants    int           // [40]
	Actors     int           // people per tenant [200]
	Partitions int32         // chain partitions [4]
	Window     time.Duration // time span covered [90 days]
	End        time.Time     // end of the window [2026-11-01T00:00:00Z]
	Seed       uint64        // [1]
}

func (o Options) withDefaults() Options {
	if o.Events <= 0 {
		o.Events = 10_000_000
	}
	if o.Tenants <= 0 {
		o.Tenants = 40
	}
	if o.Actors <= 0 {
		o.Actors = 200
	}
	if o.Partitions <= 0 {
		o.Partitions = 4
	}
	if o.Window <= 0 {
		o.Window = 90 * 24 * time.Hour
	}
	if o.End.IsZero() {
		o.End = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// Tenant returns the name of tenant i.
func Tenant(i int) string { return fmt.Sprintf("tenant-%03d", i) }

// Actor returns the id of person k of tenant t.
func Actor(t string, k int) string { return fmt.Sprintf("u%d@%s.example", k, t) }

type weighted struct {
	action, resource string
	weight           int
}

var actions = []weighted{
	{"tool_call.executed", "tool", 40}, {"tool_call.approved", "tool", 20}, {"prompt.submitted", "session", 12},
	{"session.started", "session", 4}, {"session.ended", "session", 4},
	{"skill.updated", "skill", 4}, {"skill.created", "skill", 2}, {"skill.deleted", "skill", 1},
	{"mcp_server.connected", "mcp_server", 3}, {"mcp_server.added", "mcp_server", 1},
	{"permission.denied", "tool", 3}, {"rule.updated", "rule", 2}, {"rule.created", "rule", 1},
	{"team.member_added", "team", 1}, {"team.role_changed", "team", 1}, {"policy.updated", "policy", 1},
}

var tools = []string{"Bash", "Edit", "Write", "Read", "WebFetch", "mcp__github__create_pr", "mcp__jira__update_issue"}

// Generate produces the log partition by partition, in seq order, handing batches
// of at most batch records to emit. It returns the signed-checkpoint-free chains'
// final sizes per partition.
func Generate(o Options, batch int, emit func([]chain.Record) error) (map[int32]uint64, error) {
	o = o.withDefaults()
	total := 0
	for _, w := range actions {
		total += w.weight
	}
	sizes := map[int32]uint64{}
	start := o.End.Add(-o.Window)
	for p := int32(0); p < o.Partitions; p++ {
		var tenants []int
		for t := int(p); t < o.Tenants; t += int(o.Partitions) {
			tenants = append(tenants, t)
		}
		n := o.Events / int(o.Partitions)
		if int(p) < o.Events%int(o.Partitions) {
			n++
		}
		rng := rand.New(rand.NewPCG(o.Seed, uint64(p)))
		zipf := rand.NewZipf(rng, 1.2, 4, uint64(o.Actors-1))
		c := chain.New(p)
		step := o.Window / time.Duration(max(n, 1))
		out := make([]chain.Record, 0, batch)
		for i := 0; i < n; i++ {
			at := start.Add(time.Duration(i)*step + time.Duration(rng.Int64N(int64(max(step, 1)))))
			tenant := Tenant(tenants[rng.IntN(len(tenants))])
			r := rng.IntN(total)
			var w weighted
			for _, w = range actions {
				if r < w.weight {
					break
				}
				r -= w.weight
			}
			doc := document(rng, zipf, tenant, w, at)
			canon, err := event.AppendCanonical(nil, doc)
			if err != nil {
				return nil, err
			}
			rec, err := c.Append(canon, at.Add(time.Duration(50+rng.IntN(900))*time.Millisecond))
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
			if len(out) == batch {
				if err := emit(out); err != nil {
					return nil, err
				}
				out = make([]chain.Record, 0, batch)
			}
		}
		if len(out) > 0 {
			if err := emit(out); err != nil {
				return nil, err
			}
		}
		sizes[p] = c.Size()
	}
	return sizes, nil
}

func document(rng *rand.Rand, zipf *rand.Zipf, tenant string, w weighted, at time.Time) map[string]any {
	k := int(zipf.Uint64())
	actor := map[string]any{"type": "user", "id": Actor(tenant, k), "email": Actor(tenant, k)}
	if w.action == "tool_call.executed" || w.action == "prompt.submitted" {
		actor = map[string]any{"type": "agent", "id": fmt.Sprintf("claude-code-%d", k)}
	}
	session := fmt.Sprintf("sess-%s-%d-%d", tenant, k, at.Unix()/3600)
	var resID, resName string
	switch w.resource {
	case "tool":
		resName = tools[rng.IntN(len(tools))]
		resID = resName
	case "session":
		resID = session
	default:
		resID = fmt.Sprintf("%s-%d", w.resource, rng.IntN(60))
		resName = resID
	}
	status := "success"
	if x := rng.IntN(100); x < 4 {
		status = "failure"
	} else if x < 7 || w.action == "permission.denied" {
		status = "denied"
	}
	resource := map[string]any{"type": w.resource, "id": resID}
	if resName != "" {
		resource["name"] = resName
	}
	ts := event.FormatTime(at)
	doc := map[string]any{
		"id": uuidV7(rng, at), "schema_version": float64(event.SchemaVersion), "tenant": tenant,
		"occurred_at": ts, "received_at": ts,
		"source": map[string]any{"tool": "claude_code", "channel": "http_hook"},
		"actor":  actor, "action": w.action, "resource": resource,
		"result":  map[string]any{"status": status},
		"session": map[string]any{"id": session, "tool_use_id": fmt.Sprintf("toolu_%016x", rng.Uint64())},
	}
	if w.resource == "skill" || w.resource == "rule" || w.resource == "policy" {
		doc["change"] = map[string]any{"from_version": "1.4.0", "to_version": "1.5.0", "diff_summary": "Adjusted rate limiting instructions for payments endpoints"}
	}
	return doc
}

// uuidV7 makes a version 7 UUID for time at from rng, so ids are deterministic.
func uuidV7(rng *rand.Rand, at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], rng.Uint64())
	binary.BigEndian.PutUint64(b[0:], uint64(at.UnixMilli())<<16|uint64(rng.IntN(1<<12)))
	b[6] = 0x70 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
