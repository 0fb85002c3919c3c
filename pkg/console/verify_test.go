package console_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailkeep/trailkeep/internal/browsertest"
	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/console"
	"github.com/trailkeep/trailkeep/pkg/proof"
)

// vector is one bundle for the in-browser verifier and the Go verifier's verdict.
type vector struct {
	Name   string `json:"name"`
	Bundle string `json:"bundle"` // base64 of the exact bytes
	Key    string `json:"key"`
	// OK is Go's verdict (proof.Parse + Bundle.Verify).
	OK bool `json:"ok"`
	// Exact: the browser must agree both ways; otherwise (random mutations, where
	// Go's encoding/json is laxer, e.g. case-insensitive member names) it must only
	// never accept what Go rejects.
	Exact bool `json:"exact"`
}

type verdict struct {
	OK   bool   `json:"ok"`
	Step string `json:"step"`
	Msg  string `json:"msg"`
}

// goVerdict is the reference: what trailctl prove --check says.
func goVerdict(b []byte, key string) bool {
	v, err := chain.NewVerifiers(key)
	if err != nil {
		return false
	}
	bun, err := proof.Parse(b)
	if err != nil {
		return false
	}
	_, err = bun.Verify("", v)
	return err == nil
}

// bundles builds a log over several partitions and tree sizes (perfect, odd, one
// leaf) and proves every record.
func bundles(t *testing.T) (*chaintest.Log, [][]byte) {
	log := chaintest.New(t, "vectors.example", 0)
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	leaves := map[int32]chain.MemoryLeaves{}
	var recs []chain.Record
	for p, size := range []int{1, 2, 3, 5, 8, 13, 17} {
		for i := range size {
			doc := chaintest.Doc("skill.updated", fmt.Sprintf("user%d@acme.example", i), "skill", "api-conventions")
			// Bytes a re-encoding would change: HTML, non-ASCII, a line separator.
			doc["metadata"] = map[string]any{"note": fmt.Sprintf("<b>rate & limit</b> é \u2028 #%d", i)}
			rec := log.Add(int32(p), "acme", at.Add(time.Duration(i)*time.Second), doc)
			leaves[int32(p)] = append(leaves[int32(p)], rec.LeafHash)
			recs = append(recs, rec)
		}
		log.Sign(int32(p))
	}
	var out [][]byte
	for _, rec := range recs {
		var cp chain.SignedCheckpoint
		for _, c := range log.Checkpoints {
			if c.Partition == rec.Partition {
				cp = c.SignedCheckpoint
			}
		}
		b, err := proof.Build(rec, cp, leaves[rec.Partition])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, marshal(t, b))
	}
	return log, out
}

// marshal encodes like the query API does: without HTML escaping, which would
// rewrite the event's bytes (and its leaf hash) inside the bundle.
func marshal(t *testing.T, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// tamper returns named variants of a valid bundle, each changing one thing and
// keeping every other byte (the event's included).
func tamper(t *testing.T, b []byte) map[string][]byte {
	type obj = map[string]json.RawMessage
	edit := func(f func(m, rec obj)) []byte {
		var m, rec obj
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(m["record"], &rec); err != nil {
			t.Fatal(err)
		}
		f(m, rec)
		m["record"] = marshal(t, rec)
		return marshal(t, m)
	}
	num := func(raw json.RawMessage, d int) json.RawMessage {
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			t.Fatal(err)
		}
		return json.RawMessage(fmt.Sprint(n + d))
	}
	str := func(s string) json.RawMessage { return marshal(t, s) }
	var cp string
	var path []string
	var m obj
	for _, err := range []error{json.Unmarshal(b, &m), json.Unmarshal(m["checkpoint"], &cp), json.Unmarshal(m["inclusion"], &path)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	out := map[string][]byte{
		"unchanged":     edit(func(m, rec obj) {}),
		"event byte":    []byte(strings.Replace(string(b), "user", "usex", 1)),
		"seq":           edit(func(m, rec obj) { rec["seq"] = num(rec["seq"], 1) }),
		"partition":     edit(func(m, rec obj) { rec["partition"] = num(rec["partition"], 1) }),
		"chained_at":    edit(func(m, rec obj) { rec["chained_at"] = str("2026-03-01T12:00:00.123456788Z") }),
		"prev_hash":     edit(func(m, rec obj) { rec["prev_hash"] = str(strings.Repeat("ab", 32)) }),
		"leaf_hash":     edit(func(m, rec obj) { rec["leaf_hash"] = str(strings.Repeat("cd", 32)) }),
		"tree_size":     edit(func(m, rec obj) { m["tree_size"] = num(m["tree_size"], 1) }),
		"origin":        edit(func(m, rec obj) { m["origin"] = str("other.example/audit.chained/0") }),
		"path extra":    edit(func(m, rec obj) { m["inclusion"] = marshal(t, append(slices.Clone(path), strings.Repeat("00", 32))) }),
		"version":       edit(func(m, rec obj) { m["version"] = json.RawMessage("2") }),
		"wrong key":     b,
		"signature":     edit(func(m, rec obj) { m["checkpoint"] = str(flipSignature(cp)) }),
		"checkpoint":    edit(func(m, rec obj) { m["checkpoint"] = str(strings.Replace(cp, "\n", "\n1", 1)) }),
		"no checkpoint": edit(func(m, rec obj) { delete(m, "checkpoint") }),
	}
	if len(path) > 0 {
		out["path hash"] = edit(func(m, rec obj) {
			p := slices.Clone(path)
			p[len(p)-1] = strings.Repeat("ee", 32)
			m["inclusion"] = marshal(t, p)
		})
		out["path short"] = edit(func(m, rec obj) { m["inclusion"] = marshal(t, path[1:]) })
	}
	return out
}

// crossPartition proves a record of partition 1 against a checkpoint whose origin
// names partition 0, signed with log's key.
func crossPartition(t *testing.T, log *chaintest.Log) []byte {
	c := chain.New(1)
	rec, err := c.Append(chaintest.Event(t, "acme", time.Now(), chaintest.Doc("skill.updated", "a@acme.example", "skill", "x")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := c.Sign(log.Origin(0), log.Signer)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := cp.Unverified()
	if err != nil {
		t.Fatal(err)
	}
	b := proof.Bundle{Version: proof.Version, Origin: parsed.Origin, Record: rec, TreeSize: parsed.Size, Inclusion: []chain.Hash{}, Checkpoint: string(cp.Note)}
	return marshal(t, b)
}

// flipSignature changes one base64 character of the note's signature.
func flipSignature(note string) string {
	i := strings.LastIndex(note, " ") + 10
	c := byte('A')
	if note[i] == 'A' {
		c = 'B'
	}
	return note[:i] + string(c) + note[i+1:]
}

func vectors(t *testing.T) []vector {
	log, bs := bundles(t)
	_, otherKey, err := chain.GenerateKey("vectors.example")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	add := func(name string, b []byte, key string, exact bool) {
		vs = append(vs, vector{Name: name, Bundle: base64.StdEncoding.EncodeToString(b), Key: key, OK: goVerdict(b, key), Exact: exact})
	}
	for i, b := range bs {
		add(fmt.Sprintf("bundle %d", i), b, log.VerifierKey, true)
		for name, tb := range tamper(t, b) {
			key := log.VerifierKey
			if name == "wrong key" {
				key = otherKey
			}
			add(fmt.Sprintf("bundle %d: %s", i, name), tb, key, true)
		}
	}
	// A valid proof of partition 1's record in a tree signed as partition 0's log:
	// only the origin check catches it.
	add("cross-partition", crossPartition(t, log), log.VerifierKey, true)
	// Random single-byte changes anywhere in the bytes: the browser must reject
	// every one Go rejects.
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 400 {
		b := append([]byte(nil), bs[rng.IntN(len(bs))]...)
		pos := rng.IntN(len(b))
		b[pos] ^= byte(1 + rng.IntN(255))
		add(fmt.Sprintf("mutation %d (byte %d)", i, pos), b, log.VerifierKey, false)
	}
	return vs
}

// fixed are vectors from outside this code base: RFC 6962's reference tree of eight
// leaves (as carried in transparency-dev/merkle's testonly package) and the signed
// note example of golang.org/x/mod/sumdb/note.
const fixedChecks = `(async () => {
  const m = await import('/ui/verify.js');
  const h = (s) => Uint8Array.from(s.match(/../g) || [], (x) => parseInt(x, 16));
  const out = {};
  out.emptyLeaf = m.hex(await m.sha256(Uint8Array.of(0)));
  const root8 = h('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
  const leaf = (hexIn) => m.sha256(Uint8Array.of(0, ...h(hexIn)));
  const check = async (name, fn) => { try { await fn(); out[name] = 'ok'; } catch (e) { out[name] = (e.step || '') + ': ' + e.message; } };
  await check('index0', async () => m.verifyInclusion(await leaf(''), 0n, 8n, [h('96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7'), h('5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e'), h('6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4')], root8));
  await check('index5', async () => m.verifyInclusion(await leaf('40414243'), 5n, 8n, [h('bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'), h('ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0'), h('d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7')], root8));
  await check('index5wrongIndex', async () => m.verifyInclusion(await leaf('40414243'), 4n, 8n, [h('bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'), h('ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0'), h('d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7')], root8));
  const vk = await m.parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
  const note = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
  await check('note', async () => { const body = await m.openNote(note, vk); if (!body.startsWith('If you think')) throw new Error('body ' + body); });
  await check('noteAltered', async () => m.openNote(note.replace('answer', 'Answer'), vk));
  await check('badKeyHash', async () => m.parseVerifierKey('PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'));
  out.time = String(m.parseTime('2026-03-01T12:00:00.123456789Z'));
  out.time1900 = String(m.parseTime('1900-01-01T00:00:00.000000001Z'));
  return out;
})()`

// TestBrowserVerifierAgreesWithGo runs the console's verifier in Chromium over
// bundles the Go code proves, each valid one altered in every part, and random
// byte changes: the two implementations are held to each other.
func TestBrowserVerifierAgreesWithGo(t *testing.T) {
	vs := vectors(t)
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, console.Handler())
	mux.HandleFunc("GET /test/vectors.json", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(vs) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := browsertest.New(t, 2*time.Minute)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/#/signin")); err != nil {
		t.Fatal(err)
	}
	fixed, err := browsertest.Eval[map[string]string](ctx, fixedChecks)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"emptyLeaf": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"index0":    "ok", "index5": "ok", "note": "ok",
		"time":     fmt.Sprint(time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC).UnixNano()),
		"time1900": fmt.Sprint(time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC).UnixNano()),
	}
	for k, v := range want {
		if fixed[k] != v {
			t.Errorf("fixed vector %s: browser says %q, want %q", k, fixed[k], v)
		}
	}
	for _, k := range []string{"index5wrongIndex", "noteAltered", "badKeyHash"} {
		if fixed[k] == "ok" || fixed[k] == "" {
			t.Errorf("fixed vector %s: browser accepted it (%q)", k, fixed[k])
		}
	}

	run := `(async () => {
	  const m = await import('/ui/verify.js');
	  const vs = await (await fetch('/test/vectors.json')).json();
	  const out = [];
	  for (const v of vs) {
	    const b = Uint8Array.from(atob(v.bundle), (c) => c.charCodeAt(0));
	    try { await m.verifyBundle(b, v.key); out.push({ ok: true, step: '', msg: '' }); }
	    catch (e) { out.push({ ok: false, step: e.step || 'exception', msg: String(e.message) }); }
	  }
	  return out;
	})()`
	got, err := browsertest.Eval[[]verdict](ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(vs) {
		t.Fatalf("browser returned %d verdicts for %d vectors", len(got), len(vs))
	}
	accepted, rejected := 0, 0
	for i, v := range vs {
		g := got[i]
		switch {
		case g.OK && !v.OK:
			t.Errorf("%s: the browser accepts a bundle Go rejects", v.Name)
		case v.Exact && !g.OK && v.OK:
			t.Errorf("%s: the browser rejects a bundle Go accepts: %s: %s", v.Name, g.Step, g.Msg)
		case !g.OK && g.Step == "exception":
			t.Errorf("%s: the browser failed with an unexpected exception, not a named step: %s", v.Name, g.Msg)
		}
		if g.OK {
			accepted++
		} else {
			rejected++
		}
	}
	// The vectors must exercise both outcomes, or the comparison proves nothing.
	if accepted < 98 || rejected < 400 {
		t.Errorf("browser accepted %d and rejected %d of %d vectors; want both outcomes well covered", accepted, rejected, len(vs))
	}
}
