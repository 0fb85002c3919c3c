// verify.js checks a trailkeep proof bundle in the browser, with nothing but the
// bundle's bytes and a public key the reader supplies: the same steps as the Go
// verifier (pkg/proof, Bundle.Verify), written again so that the reader does not
// have to trust the server that sent both the page and the proof.
//
//   1. the checkpoint is a signed note (C2SP signed-note) whose Ed25519 signature,
//      by the key the reader gave, covers its body: origin, tree size, root hash;
//   2. the bundle's tree_size and origin agree with the signed ones, and the origin
//      names the record's partition;
//   3. the record hashes (RFC 6962 leaf: SHA-256 of 0x00 and the leaf input) to its
//      leaf_hash, taking the event's bytes exactly as they appear in the bundle;
//   4. the RFC 6962 audit path folds from that leaf to the signed root.
//
// SHA-256 and Ed25519 come from WebCrypto. A failure throws VerifyError naming the
// step, so the page can say exactly what failed.

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

// VerifyError: the bundle does not verify. step is one of: format, key, signature,
// checkpoint, tree_size, origin, partition, leaf_hash, inclusion.
export class VerifyError extends Error {
  constructor(step, message) {
    super(message);
    this.name = "VerifyError";
    this.step = step;
  }
}

const fail = (step, msg) => {
  throw new VerifyError(step, msg);
};

// ---- bytes ------------------------------------------------------------------

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(s, what) {
  if (typeof s !== "string" || !/^[0-9a-f]{64}$/.test(s)) fail("format", `${what} is not 64 lower-case hex digits`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function fromBase64(s, what, step) {
  // Standard alphabet with padding, as Go's base64.StdEncoding writes it: reject
  // anything else rather than let atob's leniency accept a different text.
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) fail(step, `${what} is not base64`);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function concat(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// ---- RFC 6962 ---------------------------------------------------------------

export async function hashChildren(l, r) {
  return sha256(concat(Uint8Array.of(1), l, r));
}

// verifyInclusion folds path from leaf (index in a tree of size) to the root
// (RFC 9162 section 2.1.3.2) and compares it with root. index and size are BigInt.
export async function verifyInclusion(leaf, index, size, path, root) {
  if (index >= size) fail("inclusion", `index ${index} is not below the tree size ${size}`);
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) fail("inclusion", `the audit path has ${path.length} hashes, more than a tree of size ${size} needs`);
    if ((fn & 1n) === 1n || fn === sn) {
      r = await hashChildren(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await hashChildren(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail("inclusion", `the audit path has ${path.length} hashes, fewer than a tree of size ${size} needs`);
  if (!equal(r, root)) fail("inclusion", `the audit path leads to root ${hex(r)}, not the signed root ${hex(root)}`);
}

// ---- the leaf ----------------------------------------------------------------

// parseTime reads trailkeep's fixed time layout (2026-01-15T09:23:00.123000000Z)
// into Unix nanoseconds (BigInt).
export function parseTime(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{9})Z$/.exec(s);
  if (!m) fail("format", `chained_at ${JSON.stringify(s)} is not in the layout 2006-01-02T15:04:05.000000000Z`);
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number);
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d); // not Date.UTC: it maps years below 100 to 19xx
  t.setUTCHours(h, mi, sec, 0);
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d || t.getUTCHours() !== h || t.getUTCMinutes() !== mi || t.getUTCSeconds() !== sec) {
    fail("format", `chained_at ${s} is not a valid time`);
  }
  return BigInt(t.getTime()) * 1000000n + BigInt(m[7]);
}

function u32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function u64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, n));
  return b;
}

// leafHash is SHA-256(0x00 || leaf_input), leaf_input version 1: the version byte,
// partition (4 bytes), seq (8), chained_at in Unix nanoseconds (8), prev_hash (32),
// the event's length (4) and its bytes, all big-endian.
export async function leafHash(partition, seq, chainedAtNanos, prevHash, eventBytes) {
  return sha256(concat(Uint8Array.of(0, 1), u32(partition), u64(seq), u64(chainedAtNanos), prevHash, u32(eventBytes.length), eventBytes));
}

// ---- JSON with byte spans -----------------------------------------------------

// rawValue returns the bytes of the value at path (member names) in the JSON
// document doc (Uint8Array), exactly as they appear: the event's canonical bytes
// are hashed as sent, so they must not go through JSON.parse and back. The scanner
// checks the document's syntax as it goes.
export function rawValue(doc, path) {
  const s = new Scanner(doc);
  s.ws();
  const span = s.value(path, 0);
  s.ws();
  if (s.i !== doc.length) fail("format", `the bundle has data after its JSON value (byte ${s.i})`);
  if (!span) fail("format", `the bundle has no ${path.join(".")}`);
  return doc.subarray(span[0], span[1]);
}

class Scanner {
  constructor(b) {
    this.b = b;
    this.i = 0;
  }
  err(msg) {
    fail("format", `the bundle is not JSON: ${msg} at byte ${this.i}`);
  }
  ws() {
    while (this.i < this.b.length && (this.b[this.i] === 0x20 || this.b[this.i] === 0x0a || this.b[this.i] === 0x0d || this.b[this.i] === 0x09)) this.i++;
  }
  // value scans one value; when path[depth..] is not exhausted it returns the span
  // of the value found there (or null), else the span of this value.
  value(path, depth) {
    const start = this.i;
    const c = this.b[this.i];
    let found = null;
    if (c === 0x7b) found = this.object(path, depth);
    else if (c === 0x5b) this.array();
    else if (c === 0x22) this.string();
    else if (c === 0x74) this.literal("true");
    else if (c === 0x66) this.literal("false");
    else if (c === 0x6e) this.literal("null");
    else this.number();
    return depth === path.length ? [start, this.i] : found;
  }
  object(path, depth) {
    this.i++;
    this.ws();
    let found = null;
    const seen = new Set();
    if (this.b[this.i] === 0x7d) {
      this.i++;
      return null;
    }
    for (;;) {
      this.ws();
      if (this.b[this.i] !== 0x22) this.err("expected a member name");
      const ks = this.i;
      this.string();
      const key = JSON.parse(dec.decode(this.b.subarray(ks, this.i)));
      // A repeated member could show the reader one value and the hash another.
      if (seen.has(key)) this.err(`member ${JSON.stringify(key)} repeated`);
      seen.add(key);
      this.ws();
      if (this.b[this.i] !== 0x3a) this.err("expected ':'");
      this.i++;
      this.ws();
      const sub = this.value(path, depth < path.length && key === path[depth] ? depth + 1 : Infinity);
      if (depth < path.length && key === path[depth]) found = sub;
      this.ws();
      if (this.b[this.i] === 0x2c) {
        this.i++;
        continue;
      }
      if (this.b[this.i] === 0x7d) {
        this.i++;
        return found;
      }
      this.err("expected ',' or '}'");
    }
  }
  array() {
    this.i++;
    this.ws();
    if (this.b[this.i] === 0x5d) {
      this.i++;
      return;
    }
    for (;;) {
      this.ws();
      this.value([], Infinity);
      this.ws();
      if (this.b[this.i] === 0x2c) {
        this.i++;
        continue;
      }
      if (this.b[this.i] === 0x5d) {
        this.i++;
        return;
      }
      this.err("expected ',' or ']'");
    }
  }
  string() {
    const start = this.i++;
    while (this.i < this.b.length && this.b[this.i] !== 0x22) {
      if (this.b[this.i] < 0x20) this.err("control character in a string");
      this.i += this.b[this.i] === 0x5c ? 2 : 1;
    }
    if (this.i >= this.b.length) this.err("unterminated string");
    this.i++;
    try {
      JSON.parse(dec.decode(this.b.subarray(start, this.i)));
    } catch {
      this.err("invalid string");
    }
  }
  literal(w) {
    if (dec.decode(this.b.subarray(this.i, this.i + w.length)) !== w) this.err("invalid literal");
    this.i += w.length;
  }
  number() {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(dec.decode(this.b.subarray(this.i, this.i + 64)));
    if (!m) this.err("invalid value");
    this.i += m[0].length;
  }
}

// ---- signed notes and keys -----------------------------------------------------

// parseVerifierKey reads a note verifier key, name+hash+base64(0x01 || Ed25519
// public key), as `trailctl keys` prints it, and checks its key hash.
export async function parseVerifierKey(vkey) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec((vkey || "").trim());
  if (!m) fail("key", "the key is not a verifier key (name+hash+base64, as trailctl keys prints it)");
  const [, name, hashHex, b64] = m;
  const raw = fromBase64(b64, "the key", "key");
  if (raw.length !== 33 || raw[0] !== 1) fail("key", "the key is not an Ed25519 verifier key");
  const id = (await sha256(concat(enc.encode(name + "\n"), raw))).subarray(0, 4);
  if (hex(id) !== hashHex) fail("key", `the key's hash ${hashHex} does not match its name and key bytes`);
  const key = await crypto.subtle.importKey("raw", raw.subarray(1), { name: "Ed25519" }, false, ["verify"]);
  return { name, id, key, text: m[0] };
}

// openNote verifies a signed note against the key and returns its body text.
export async function openNote(text, vk) {
  const split = text.indexOf("\n\n");
  if (split < 0 || !text.endsWith("\n")) fail("signature", "the checkpoint is not a signed note (no blank line before the signatures)");
  const body = text.slice(0, split + 1);
  const sigs = text.slice(split + 2, -1).split("\n");
  let sawName = false;
  for (const line of sigs) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) fail("signature", `malformed signature line ${JSON.stringify(line)}`);
    if (m[1] !== vk.name) continue;
    sawName = true;
    const sig = fromBase64(m[2], "a signature", "signature");
    if (sig.length !== 68 || !equal(sig.subarray(0, 4), vk.id)) continue;
    if (await crypto.subtle.verify({ name: "Ed25519" }, vk.key, sig.subarray(4), enc.encode(body))) return body;
    fail("signature", `the checkpoint's signature by ${vk.name} does not verify: the checkpoint was altered or signed by another key`);
  }
  fail("signature", sawName ? `no signature by this key of ${vk.name} on the checkpoint` : `the checkpoint carries no signature by ${vk.name}`);
}

// parseCheckpoint reads a C2SP checkpoint body: origin, size, base64 root.
export function parseCheckpoint(body) {
  const lines = body.split("\n");
  if (lines.length < 4 || lines[0] === "") fail("checkpoint", "the checkpoint body needs origin, size and root hash lines");
  if (!/^(?:0|[1-9]\d*)$/.test(lines[1]) || BigInt(lines[1]) >= 1n << 64n) fail("checkpoint", `checkpoint size ${JSON.stringify(lines[1])} is not a decimal integer`);
  const root = fromBase64(lines[2], "the checkpoint root", "checkpoint");
  if (root.length !== 32) fail("checkpoint", "the checkpoint root is not a SHA-256 hash");
  return { origin: lines[0], size: BigInt(lines[1]), root };
}

// ---- the bundle ------------------------------------------------------------------

// verifyBundle checks a proof bundle (its bytes as received) against a verifier
// key (text). It returns what was proven, or throws VerifyError.
export async function verifyBundle(bytes, vkeyText) {
  const vk = await parseVerifierKey(vkeyText);
  let text;
  try {
    text = dec.decode(bytes);
  } catch {
    fail("format", "the bundle is not UTF-8");
  }
  const eventBytes = rawValue(bytes, ["record", "event"]);
  let b;
  try {
    b = JSON.parse(text);
  } catch (e) {
    fail("format", `the bundle is not JSON: ${e.message}`);
  }
  checkShape(b, eventBytes);
  const rec = b.record;
  const body = await openNote(b.checkpoint, vk);
  const cp = parseCheckpoint(body);
  if (b.origin !== "" && b.origin !== undefined && b.origin !== cp.origin) fail("origin", `origin ${JSON.stringify(b.origin)} differs from the signed origin ${JSON.stringify(cp.origin)}`);
  const treeSize = BigInt(rawNumber(bytes, ["tree_size"]));
  if (treeSize !== cp.size) fail("tree_size", `tree_size ${treeSize} differs from the signed size ${cp.size}`);
  if (!cp.origin.endsWith(`/${rec.partition}`)) fail("partition", `record of partition ${rec.partition} proven against the log ${cp.origin}`);
  const seq = BigInt(rawNumber(bytes, ["record", "seq"]));
  const leaf = await leafHash(rec.partition, seq, parseTime(rec.chained_at), fromHex(rec.prev_hash, "prev_hash"), eventBytes);
  if (hex(leaf) !== rec.leaf_hash) fail("leaf_hash", "the record does not hash to its leaf_hash: its content or position changed");
  await verifyInclusion(leaf, seq, cp.size, b.inclusion.map((h, i) => fromHex(h, `inclusion[${i}]`)), cp.root);
  return { origin: cp.origin, treeSize: cp.size, root: hex(cp.root), partition: rec.partition, seq, leafHash: hex(leaf), key: vk.text };
}

// rawNumber returns a number's text: seq is a uint64, beyond JSON.parse's
// precision.
function rawNumber(bytes, path) {
  const t = dec.decode(rawValue(bytes, path));
  if (!/^(?:0|[1-9]\d*)$/.test(t)) fail("format", `${path.join(".")} is not a whole number`);
  return t;
}

function checkShape(b, eventBytes) {
  const obj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!obj(b)) fail("format", "the bundle is not a JSON object");
  if (b.version !== undefined && b.version !== 1) fail("format", `bundle version ${b.version}; this verifier reads version 1`);
  const r = b.record;
  if (!obj(r)) fail("format", "the bundle has no record");
  if (!Number.isInteger(r.partition) || r.partition < 0 || r.partition > 2147483647) fail("format", "record.partition is not a partition number");
  for (const k of ["chained_at", "prev_hash", "leaf_hash"]) if (typeof r[k] !== "string") fail("format", `record.${k} is missing`);
  if (eventBytes[0] !== 0x7b) fail("format", "record.event is not a JSON object");
  if (typeof b.checkpoint !== "string") fail("format", "the bundle has no checkpoint");
  if (!Array.isArray(b.inclusion)) fail("format", "inclusion is not a list of hashes");
  if (b.origin !== undefined && typeof b.origin !== "string") fail("format", "origin is not text");
}
