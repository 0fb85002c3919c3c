// app.js is the console's views. Rules every view keeps:
//   - every value from the API is written with textContent (never innerHTML), so
//     event fields, which agents and senders write, stay text;
//   - links are built from fixed paths and encodeURIComponent, never from values;
//   - the token lives in sessionStorage (this tab), the pinned key in localStorage;
//   - each call names its view in the X-Trailkeep-Console header for the access log.
import { verifyBundle, openNote, parseCheckpoint, parseVerifierKey, rawValue, hex, VerifyError } from "./verify.js";

const TOKEN = "trailkeep.token";
const KEY = "trailkeep.verifierKey";
const $ = (id) => document.getElementById(id);
const dec = new TextDecoder();

// ---- API ------------------------------------------------------------------------

class APIError extends Error {
  constructor(status, body) {
    const msg = body && body.message ? body.message : `HTTP ${status}`;
    super(msg);
    this.status = status;
    this.body = body;
  }
}

// apiFetch calls the query API as the signed-in token, naming the view for the
// access log, and returns a 2xx response with its body unread; any other answer
// is an APIError (a 401 also signs out).
async function apiFetch(path, view, init = {}) {
  const token = sessionStorage.getItem(TOKEN);
  const resp = await fetch(path, {
    method: init.method || "GET",
    body: init.body,
    headers: { Authorization: `Bearer ${token}`, "X-Trailkeep-Console": view, ...(init.body ? { "Content-Type": "application/json" } : {}) },
    cache: "no-store",
    credentials: "omit",
    redirect: "error",
  });
  if (resp.ok) return resp;
  let body = null;
  try {
    body = JSON.parse(dec.decode(new Uint8Array(await resp.arrayBuffer())));
  } catch {
    /* not JSON: the status says enough */
  }
  if (resp.status === 401) {
    sessionStorage.removeItem(TOKEN);
    location.hash = "#/signin";
  }
  throw new APIError(resp.status, body);
}

// apiBytes returns an answer's bytes (raw: proofs and canonical events are hashed
// as sent).
async function apiBytes(path, view, init) {
  const resp = await apiFetch(path, view, init);
  return new Uint8Array(await resp.arrayBuffer());
}

async function api(path, view, init) {
  return JSON.parse(dec.decode(await apiBytes(path, view, init)) || "null");
}

function describe(err) {
  if (err instanceof APIError) {
    const fields = (err.body && err.body.errors) || [];
    const f = fields.map((x) => `${x.field} (${x.rule}${x.limit ? ": " + x.limit : ""})`).join(", ");
    return `${err.message}${f ? " — " + f : ""} [HTTP ${err.status}]`;
  }
  return String(err && err.message ? err.message : err);
}

// ---- DOM helpers ------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function show(view) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== `view-${view}`;
  $("nav").hidden = view === "signin";
  const h = document.querySelector(`#view-${view} h1`);
  if (h) document.title = `${h.textContent} · trailkeep console`;
}

function setText(id, text) {
  $(id).textContent = text || "";
}

// ---- sign-in and settings -----------------------------------------------------------

function signedIn() {
  return !!sessionStorage.getItem(TOKEN);
}

async function signIn(ev) {
  ev.preventDefault();
  const token = $("signin-token").value.trim();
  const key = $("signin-key").value.trim();
  setText("signin-error", "");
  if (key) {
    try {
      await parseVerifierKey(key);
    } catch (e) {
      setText("signin-error", `Key: ${e.message}`);
      return;
    }
    localStorage.setItem(KEY, key);
  }
  sessionStorage.setItem(TOKEN, token);
  try {
    await api("/v1/me", "signin");
  } catch (e) {
    sessionStorage.removeItem(TOKEN);
    setText("signin-error", `Sign-in failed: ${describe(e)}`);
    return;
  }
  $("signin-token").value = "";
  location.hash = "#/search";
}

async function pinKey(ev) {
  ev.preventDefault();
  const key = $("settings-key").value.trim();
  try {
    const vk = await parseVerifierKey(key);
    localStorage.setItem(KEY, key);
    setText("settings-status", `Pinned ${vk.name}+${hex(vk.id)}.`);
  } catch (e) {
    setText("settings-status", `Not pinned: ${e.message}`);
  }
}

// ---- search ------------------------------------------------------------------------------

let cursor = "";
let listedSaved = false; // the saved queries are listed once per page load

function searchQuery() {
  const terms = [$("q").value.trim()];
  // The time range becomes after:/before: terms of the filter language, so what
  // was searched is exactly the query text the access log records.
  for (const k of ["after", "before"]) {
    const v = $(k).value.trim();
    if (v) terms.push(`${k}:${/\s/.test(v) ? JSON.stringify(v) : v}`);
  }
  return terms.filter(Boolean).join(" ");
}

// histogram draws the volume of the search over its time range (default the last
// 7 days) as SVG bars, each with its count in a title for pointer and screen reader.
async function histogram() {
  const params = new URLSearchParams({ q: searchQuery(), from: $("after").value.trim() || "-7d", to: $("before").value.trim() || "now", buckets: "60" });
  let h;
  try {
    h = await api(`/v1/histogram?${params}`, "search-histogram");
  } catch {
    $("histogram").hidden = true; // the search itself reports what is wrong
    return;
  }
  const svg = $("histogram-svg");
  const NS = "http://www.w3.org/2000/svg";
  const peak = Math.max(1, ...h.buckets.map((b) => b.count));
  svg.setAttribute("viewBox", `0 0 ${h.buckets.length} 100`);
  svg.replaceChildren(...h.buckets.map((b, i) => {
    const r = document.createElementNS(NS, "rect");
    const height = b.count === 0 ? 0 : Math.max(2, (b.count / peak) * 100);
    for (const [k, v] of [["x", i + 0.1], ["width", 0.8], ["y", 100 - height], ["height", height]]) r.setAttribute(k, String(v));
    const title = document.createElementNS(NS, "title");
    title.textContent = `${b.from}: ${b.count}`;
    r.append(title);
    return r;
  }));
  const unit = h.step_seconds >= 86400 ? `${h.step_seconds / 86400} d` : h.step_seconds >= 3600 ? `${Math.round(h.step_seconds / 360) / 10} h` : `${Math.round(h.step_seconds / 6) / 10} min`;
  setText("histogram-caption", `${h.total} matching events from ${h.from} to ${h.to}, per ${unit}; peak ${peak}.`);
  setText("histogram-from", h.from);
  setText("histogram-to", h.to);
  $("histogram").hidden = false;
}

async function search(more) {
  setText("search-error", "");
  if (!more) histogram();
  const params = new URLSearchParams({ q: searchQuery(), limit: $("limit").value });
  if (more && cursor) params.set("cursor", cursor);
  setText("search-status", "Searching…");
  let page;
  try {
    page = await api(`/v1/events?${params}`, "search");
  } catch (e) {
    setText("search-status", "");
    setText("search-error", describe(e));
    return;
  }
  const body = $("results-body");
  if (!more) body.replaceChildren();
  for (const hit of page.events) body.append(resultRow(hit));
  cursor = page.next_cursor || "";
  $("more").hidden = !cursor;
  $("results").hidden = body.children.length === 0;
  setText("search-status", body.children.length === 0 ? "No events match." : `${body.children.length} events${cursor ? ", more on the next page" : ""}.`);
}

function actorText(a) {
  if (!a) return "";
  return `${a.type || ""}:${a.email || a.id || ""}`;
}

function resultRow(hit) {
  const e = hit.event || {};
  const link = el("a", { href: `#/event/${encodeURIComponent(e.id || "")}` }, e.id || "");
  const res = e.resource ? `${e.resource.type || ""}:${e.resource.name || e.resource.id || ""}` : "";
  return el("tr", {}, el("td", {}, e.occurred_at || ""), el("td", {}, e.tenant || ""), el("td", {}, actorText(e.actor)), el("td", {}, e.action || ""),
    el("td", {}, res), el("td", {}, (e.result && e.result.status) || ""), el("td", {}, link));
}

// ---- saved queries ---------------------------------------------------------------

async function listSaved() {
  let out;
  try {
    out = await api("/v1/queries", "saved-queries");
  } catch (e) {
    setText("saved-status", describe(e));
    return;
  }
  const body = $("saved-list-body");
  body.replaceChildren(...out.queries.map((q) => {
    const run = el("button", { type: "button", class: "secondary" }, "Run");
    run.setAttribute("aria-label", `Run ${q.name}`);
    run.addEventListener("click", () => {
      $("q").value = q.query;
      $("after").value = $("before").value = "";
      search(false);
    });
    const del = el("button", { type: "button", class: "secondary" }, "Delete");
    del.setAttribute("aria-label", `Delete ${q.name}`);
    del.addEventListener("click", () => deleteSaved(q));
    return el("tr", {}, el("td", {}, q.name), el("td", {}, q.tenant), el("td", { class: "mono" }, q.query), el("td", {}, q.description || ""), el("td", {}, q.saved_by), el("td", {}, run, del));
  }));
  $("saved-list").hidden = out.queries.length === 0;
  if (out.queries.length === 0) setText("saved-status", "No saved queries yet.");
}

async function saveQuery(ev) {
  ev.preventDefault();
  const name = $("save-name").value.trim();
  const tenant = $("save-tenant").value.trim();
  const path = `/v1/queries/${encodeURIComponent(name)}${tenant ? "?tenant=" + encodeURIComponent(tenant) : ""}`;
  try {
    await api(path, "saved-queries", { method: "PUT", body: JSON.stringify({ query: searchQuery(), description: $("save-description").value.trim() }) });
  } catch (e) {
    setText("saved-status", `Not saved: ${describe(e)}`);
    return;
  }
  await listSaved();
  setText("saved-status", `Saved ${name}.`);
}

async function deleteSaved(q) {
  try {
    await apiBytes(`/v1/queries/${encodeURIComponent(q.name)}?tenant=${encodeURIComponent(q.tenant)}`, "saved-queries", { method: "DELETE" });
  } catch (e) {
    setText("saved-status", `Not deleted: ${describe(e)}`);
    return;
  }
  await listSaved();
  setText("saved-status", `Deleted ${q.name}.`);
}

// ---- event detail and its proof badge -------------------------------------------------

async function showEvent(id) {
  setText("event-error", "");
  for (const x of ["event-position", "event-json", "event-redactions"]) $(x).replaceChildren();
  const badge = $("badge");
  badge.className = "badge";
  badge.textContent = "Checking the proof in your browser…";
  let bytes;
  try {
    bytes = await apiBytes(`/v1/events/${encodeURIComponent(id)}`, "event");
  } catch (e) {
    badge.textContent = "";
    setText("event-error", describe(e));
    return;
  }
  const rec = JSON.parse(dec.decode(bytes));
  const eventBytes = rawValue(bytes, ["event"]);
  $("event-json").textContent = dec.decode(eventBytes);
  const pos = $("event-position");
  for (const [k, v] of [["Partition", rec.partition], ["Seq", dec.decode(rawValue(bytes, ["seq"]))], ["Chained at", rec.chained_at], ["Leaf hash", rec.leaf_hash], ["Previous hash", rec.prev_hash]]) {
    pos.append(el("dt", {}, k), el("dd", {}, v));
  }
  const red = (rec.event && rec.event.redactions) || [];
  $("event-redactions").textContent = red.length ? red.map((r) => `${r.field} (rule ${r.rule})`).join("; ") : "None: ingest removed nothing from this event.";
  await proveEvent(id, bytes, eventBytes);
}

// proveEvent fetches the event's proof and checks it here; the bundle must prove
// the very record shown (same position, same bytes), not just any record.
async function proveEvent(id, recBytes, eventBytes) {
  const badge = $("badge");
  const key = localStorage.getItem(KEY);
  if (!key) {
    badge.className = "badge warn";
    badge.replaceChildren("Not verified: no public key is pinned. ", el("a", { href: "#/settings" }, "Pin the log's key"), " to check proofs in your browser.");
    return;
  }
  try {
    const bundle = await apiBytes(`/v1/events/${encodeURIComponent(id)}/proof`, "event-proof");
    const shown = JSON.parse(dec.decode(recBytes));
    const proven = JSON.parse(dec.decode(rawValue(bundle, ["record"])));
    const same = dec.decode(rawValue(bundle, ["record", "event"])) === dec.decode(eventBytes) &&
      dec.decode(rawValue(bundle, ["record", "seq"])) === dec.decode(rawValue(recBytes, ["seq"])) &&
      proven.partition === shown.partition && proven.leaf_hash === shown.leaf_hash && proven.chained_at === shown.chained_at && proven.prev_hash === shown.prev_hash;
    if (!same) throw new VerifyError("record", "the proof is about a different record than the one shown");
    const r = await verifyBundle(bundle, key);
    badge.className = "badge ok";
    badge.textContent = `Verified in your browser against key ${r.key.split("+").slice(0, 2).join("+")}: seq ${r.seq} of ${r.origin} is in its signed tree of ${r.treeSize} entries (root ${r.root.slice(0, 16)}…).`;
  } catch (e) {
    badge.className = "badge bad";
    if (e instanceof APIError && e.status === 409) {
      badge.className = "badge warn";
      badge.textContent = `Not verified yet: ${e.message}`;
      return;
    }
    badge.textContent = e instanceof VerifyError ? `Verification FAILED at step "${e.step}": ${e.message}` : `Verification FAILED: ${describe(e)}`;
  }
}

// ---- reports: timeline, approvals, drift ------------------------------------------------

// fillTable writes rows (arrays of cell values; a Node stays as it is) into a table
// body, and shows the table only when there are rows.
function fillTable(table, rows) {
  const body = $(`${table}-body`);
  body.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
  $(table).hidden = rows.length === 0;
}

function eventLink(id) {
  return el("a", { href: `#/event/${encodeURIComponent(id || "")}` }, id || "");
}

async function report(view, path, render) {
  setText(`${view}-error`, "");
  try {
    render(await api(path, view));
  } catch (e) {
    fillTable(view, []);
    setText(`${view}-error`, describe(e));
  }
}

async function showTimeline() {
  const resource = $("timeline-resource").value.trim();
  if (!resource) return;
  const params = new URLSearchParams({ resource });
  const at = $("timeline-at").value.trim();
  if (at) params.set("at", at);
  setText("timeline-inforce", "");
  await report("timeline", `/v1/timeline?${params}`, (out) => {
    const dash = (v) => v || "-";
    fillTable("timeline", out.changes.map((c) => [c.occurred_at, c.action, `${dash(c.from_version)} → ${dash(c.to_version)}`,
      c.actor + (c.actor_email ? ` (${c.actor_email})` : ""), c.decided_by ? `${c.decision || "approved"} by ${c.decided_by}` : "none recorded",
      dash(c.result), c.diff_summary || "", eventLink(c.event_id)]));
    if (out.changes.length === 0) setText("timeline-error", `No version changes recorded for ${resource} in the tenants this token may read.`);
    if (out.at) {
      const f = out.in_force;
      setText("timeline-inforce", f ? `In force at ${out.at}: version ${f.to_version}, since ${f.occurred_at} (${f.action} by ${f.actor}${f.decided_by ? ", " + (f.decision || "approved") + " by " + f.decided_by : ", no approval recorded"}).`
        : `No version of ${resource} had taken effect by ${out.at}.`);
    }
  });
}

async function showApprovals() {
  const params = new URLSearchParams({ q: $("approvals-q").value.trim(), limit: "1000" });
  await report("approvals", `/v1/approvals?${params}`, (out) => {
    fillTable("approvals", out.approvals.map((a) => [a.last_chained_at, a.tenant, a.tool, a.requested_by, a.decision, a.decided_by, a.executions, a.result, a.verdict]));
    setText("approvals-status", `${out.approvals.length} tool calls.`);
  });
}

async function showDrift() {
  const params = new URLSearchParams({ q: $("drift-q").value.trim(), limit: "1000" });
  if ($("drift-unapproved").checked) params.set("unapproved", "true");
  await report("drift", `/v1/drift?${params}`, (out) => {
    fillTable("drift", out.drift.map((d) => [d.LastChained, d.Tenant, d.Tool, d.Actor, (d.Approved || []).join(" "), (d.Executed || []).join(" "), d.ExecutedInput]));
    setText("drift-status", out.drift.length ? `${out.drift.length} tool calls ran with parameters nobody approved.` : "No drift: everything that ran was approved as it ran.");
  });
}

// ---- export with a signed manifest ----------------------------------------------------

// signerFromKeyFile reads a note signer key (PRIVATE+KEY+name+hash+base64 of 0x01
// and the Ed25519 seed, as trailctl keys generate writes it) into a WebCrypto key,
// checking its hash against the public key it implies.
async function signerFromKeyFile(text) {
  const m = /^PRIVATE\+KEY\+([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(text.trim());
  if (!m) throw new Error("the file is not a signing key (PRIVATE+KEY+name+hash+key, as trailctl keys generate writes it)");
  const [, name, hashHex, b64] = m;
  const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  if (raw.length !== 33 || raw[0] !== 1) throw new Error("the signing key is not an Ed25519 key");
  // PKCS #8 of an Ed25519 seed: a fixed 16-byte header, then the seed.
  const der = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...raw.subarray(1)]);
  const key = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const pub = Uint8Array.from(atob(jwk.x.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (jwk.x.length % 4)) % 4)), (c) => c.charCodeAt(0));
  const vkeyBytes = new Uint8Array([1, ...pub]);
  const id = (await crypto.subtle.digest("SHA-256", new Uint8Array([...new TextEncoder().encode(name + "\n"), ...vkeyBytes]))).slice(0, 4);
  if (hex(new Uint8Array(id)) !== hashHex) throw new Error("the signing key's hash does not match its key: the file is damaged");
  const vkey = `${name}+${hashHex}+${btoa(String.fromCharCode(...vkeyBytes))}`;
  return { name, id: new Uint8Array(id), key, vkey };
}

// signNote signs text (which ends in a newline) as a C2SP signed note.
async function signNote(text, signer) {
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, signer.key, new TextEncoder().encode(text)));
  return `${text}\n\u2014 ${signer.name} ${btoa(String.fromCharCode(...signer.id, ...sig))}\n`;
}

function download(name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}

// readExport reads an NDJSON export stream, noting each record's partition, seq
// and occurred_at as it arrives, and reports progress.
async function readExport(body) {
  const st = { chunks: [], parts: new Map(), bytes: 0, rows: 0, from: "", to: "" };
  const observe = (line) => {
    const p = Number(dec.decode(rawValue(line, ["partition"])));
    const seq = BigInt(dec.decode(rawValue(line, ["seq"])));
    const at = JSON.parse(dec.decode(rawValue(line, ["event", "occurred_at"])));
    const cur = st.parts.get(p) || { partition: p, rows: 0, first: seq, last: seq };
    cur.rows++;
    if (seq < cur.first) cur.first = seq;
    if (seq > cur.last) cur.last = seq;
    st.parts.set(p, cur);
    st.rows++;
    if (!st.from || at < st.from) st.from = at;
    if (at > st.to) st.to = at;
  };
  const reader = body.getReader();
  let rest = new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    st.chunks.push(value);
    st.bytes += value.length;
    const buf = new Uint8Array(rest.length + value.length);
    buf.set(rest);
    buf.set(value, rest.length);
    let start = 0;
    for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, start)) {
      observe(buf.subarray(start, i));
      start = i + 1;
    }
    rest = buf.slice(start);
    setText("export-status", `${st.rows} events, ${(st.bytes / 1048576).toFixed(1)} MiB received…`);
  }
  if (rest.length) throw new Error("the export ended in the middle of a record; it was cut off");
  return st;
}

// exportManifest is the manifest of an export (pkg/export.Manifest): per partition
// the latest checkpoint when it covers the last exported seq. seq values are
// uint64, so they are written as JSON numbers from their decimal text.
function exportManifest(st, q, tenants, name, sha, signer, me, latest) {
  const manifest = {
    version: 1, query: q, tenants, format: "ndjson",
    created_at: new Date().toISOString().replace(/\.(\d{3})Z$/, (_, ms) => `.${ms}000000Z`), created_by: `${signer.name} (console, token ${me.name})`,
    file: { name, bytes: st.bytes, sha256: sha }, rows: st.rows, occurred_from: st.from, occurred_to: st.to,
    partitions: [...st.parts.values()].sort((a, b) => a.partition - b.partition).map((p) => {
      const out = { partition: p.partition, rows: p.rows, first_seq: p.first, last_seq: p.last };
      const cp = latest.get(p.partition);
      if (cp && BigInt(cp.tree_size) > p.last) Object.assign(out, { checkpoint: cp.checkpoint, checkpoint_size: BigInt(cp.tree_size) });
      return out;
    }),
  };
  const text = JSON.stringify(manifest, (k, v) => (typeof v === "bigint" ? `@@${v}@@` : v), 2).replace(/"@@(\d+)@@"/g, "$1");
  return { manifest, text };
}

// exportRun streams GET /v1/export (NDJSON) with progress, hashes the file, builds
// the manifest and signs it with the exporter key from the chosen file.
async function exportRun(ev) {
  ev.preventDefault();
  setText("export-error", "");
  $("export-manifest").hidden = true;
  let signer;
  try {
    signer = await signerFromKeyFile(await $("export-key").files[0].text());
  } catch (e) {
    setText("export-error", `Key: ${e.message}`);
    return;
  }
  const q = $("export-q").value.trim();
  const tenant = $("export-tenant").value.trim();
  const params = new URLSearchParams({ q, format: "ndjson" });
  if (tenant) params.set("tenant", tenant);
  const progress = $("export-progress");
  progress.hidden = false;
  progress.removeAttribute("value");
  try {
    const me = await api("/v1/me", "export");
    const resp = await apiFetch(`/v1/export?${params}`, "export");
    const st = await readExport(resp.body);
    const file = new Blob(st.chunks, { type: "application/x-ndjson" });
    const sha = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", await file.arrayBuffer())));
    const latest = new Map((await api("/v1/checkpoints/latest", "export")).checkpoints.map((c) => [c.partition, c]));
    const name = `trailkeep-export-${new Date().toISOString().replace(/[:.]/g, "-")}.ndjson`;
    // The scope is the token's (GET /v1/me), or the tenant asked for: an empty list
    // would read as every tenant.
    const tenants = tenant ? [tenant] : me.tenants.includes("*") ? [] : me.tenants;
    const { manifest, text } = exportManifest(st, q, tenants, name, sha, signer, me, latest);
    const signed = await signNote(text + "\n", signer);
    download(name, file);
    download(`${name}.manifest`, new Blob([signed], { type: "text/plain" }));
    const uncovered = manifest.partitions.filter((p) => !p.checkpoint).map((p) => p.partition);
    setText("export-status", `Exported ${st.rows} events (${st.bytes} bytes, sha256 ${sha}) to ${name}, with ${name}.manifest signed by ${signer.vkey}.` +
      (uncovered.length ? ` Not covered by a signed checkpoint yet: partition ${uncovered.join(", ")}.` : ""));
    $("export-manifest").textContent = signed;
    $("export-manifest").hidden = false;
  } catch (e) {
    setText("export-error", `Export failed: ${describe(e)}`);
    setText("export-status", "");
  } finally {
    progress.hidden = true;
  }
}

// age says how long ago an RFC 3339 time was, by this browser's clock.
function age(at) {
  if (!at) return "unknown";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(at)) / 1000));
  const text = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
  return `${at} (${text} ago)`;
}

// ---- log health --------------------------------------------------------------------------

async function showHealth() {
  setText("health-error", "");
  const body = $("health-body");
  body.replaceChildren();
  let out;
  try {
    out = await api("/v1/checkpoints/latest", "health");
  } catch (e) {
    setText("health-error", describe(e));
    return;
  }
  const key = localStorage.getItem(KEY);
  const vk = key ? await parseVerifierKey(key).catch(() => null) : null;
  // The caller's head: per partition, the seq of the newest event of its tenants.
  const head = {};
  try {
    const f = await api("/v1/follow", "health");
    for (const part of (f.position || "").split(",").filter(Boolean)) {
      const [p, seq] = part.split(":");
      head[p] = BigInt(seq);
    }
  } catch {
    /* the table still shows the checkpoints; the column says unknown */
  }
  for (const c of out.checkpoints) {
    let sig = "no key pinned";
    if (vk) {
      try {
        const cp = parseCheckpoint(await openNote(c.checkpoint, vk));
        sig = cp.origin === c.origin && String(cp.size) === String(c.tree_size) ? "verified in your browser" : "FAILED: the listed values differ from the signed ones";
      } catch (e) {
        sig = `FAILED: ${e.message}`;
      }
    }
    const h = head[String(c.partition)];
    const size = BigInt(c.tree_size);
    const newest = h === undefined ? "unknown" : h < size ? `seq ${h}: anchored` : `seq ${h}: not anchored yet (${h + 1n - size} records of the partition after the checkpoint)`;
    body.append(el("tr", {}, el("td", {}, c.partition), el("td", {}, c.origin), el("td", {}, c.tree_size), el("td", { class: "mono" }, c.root_hash), el("td", {}, sig), el("td", {}, age(c.stored_at)), el("td", {}, newest)));
  }
  $("health").hidden = out.checkpoints.length === 0;
  if (out.checkpoints.length === 0) setText("health-error", "No signed checkpoints yet for the tenants this token may read.");
}

// ---- routing -----------------------------------------------------------------------------

async function route() {
  const h = location.hash || "#/search";
  if (!signedIn() && h !== "#/signin") {
    location.hash = "#/signin";
    return;
  }
  const [, view, arg] = /^#\/([a-z]+)(?:\/(.*))?$/.exec(h) || [];
  switch (view) {
    case "signin":
      show("signin");
      $("signin-key").value = localStorage.getItem(KEY) || "";
      $("signin-token").focus();
      return;
    case "event":
      show("event");
      await showEvent(decodeURIComponent(arg || ""));
      return;
    case "health":
      show("health");
      await showHealth();
      return;
    case "timeline": {
      show("timeline");
      const p = new URLSearchParams(arg || "");
      if (p.get("resource")) {
        $("timeline-resource").value = p.get("resource");
        $("timeline-at").value = p.get("at") || "";
        await showTimeline();
      }
      return;
    }
    case "export":
      show("export");
      return;
    case "approvals":
      show("approvals");
      await showApprovals();
      return;
    case "drift":
      show("drift");
      await showDrift();
      return;
    case "settings":
      show("settings");
      $("settings-key").value = localStorage.getItem(KEY) || "";
      return;
    default:
      show("search");
      if (!listedSaved) {
        listedSaved = true;
        listSaved();
      }
  }
}

function start() {
  $("signin-form").addEventListener("submit", signIn);
  $("settings-form").addEventListener("submit", pinKey);
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search(false);
  });
  $("more").addEventListener("click", () => search(true));
  $("save-form").addEventListener("submit", saveQuery);
  $("export-form").addEventListener("submit", exportRun);
  $("timeline-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    // The address names the question, so it can be shared and reloaded.
    const p = new URLSearchParams({ resource: $("timeline-resource").value.trim() });
    if ($("timeline-at").value.trim()) p.set("at", $("timeline-at").value.trim());
    const h = `#/timeline/${p}`;
    if (location.hash === h) showTimeline();
    else location.hash = h;
  });
  for (const [form, fn] of [["approvals-form", showApprovals], ["drift-form", showDrift]]) {
    $(form).addEventListener("submit", (ev) => {
      ev.preventDefault();
      fn();
    });
  }
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN);
    location.hash = "#/signin";
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
