// The library: the index picker and a grid of cards, one per asset, with its picture, name,
// duration, status in user words, and rename / download / delete.
import { api } from "./api.js";
import { $, bytes, clock, h, listOf, sleep } from "./dom.js";
import { details, featureLine, statusLine } from "./messages.js";
import { confirmAction, fail, notify } from "./notify.js";
import { frameAt, forget, outputs, picture } from "./media.js";
import { setIndexId, state } from "./state.js";

const SETTLED = new Set(["ready", "failed"]);
const cards = new Map(); // asset id -> {stamp, el}
let hooks = { open: () => {}, removed: () => {}, renamed: () => {}, indexChanged: () => {} };
let polling = false;
const watched = new Set(); // uploads of this tab: announced when they settle

export function init(h0) {
  hooks = h0;
}

export async function loadIndexes() {
  const indexes = listOf(await api("GET", "/v1/indexes?limit=100"));
  const sel = $("index-select");
  sel.replaceChildren(...indexes.map((ix) => h("option", { value: ix.id }, ix.name)));
  sel.disabled = !indexes.length;
  const keep = indexes.some((ix) => ix.id === state.indexId);
  sel.value = keep ? state.indexId : indexes.length ? indexes[0].id : "";
  showIndexForm(!indexes.length);
  await setIndex(sel.value);
  $("library").dataset.loaded = "true";
}

export function showIndexForm(show) {
  $("index-form").hidden = !show;
  $("new-index-toggle").setAttribute("aria-expanded", String(show));
  if (show) $("new-index-name").focus();
}

export async function createIndex(name) {
  const ix = await api("POST", "/v1/indexes", { name });
  setIndexId(ix.id);
  notify(`Index “${ix.name}” created.`);
  await loadIndexes();
}

export async function setIndex(id) {
  setIndexId(id);
  hooks.indexChanged(id);
  state.assets.clear();
  cards.clear();
  $("grid").replaceChildren();
  await loadAssets();
}

// The newest 100 assets of the current index, or null when the index changed meanwhile.
async function fetchAssets() {
  const idx = state.indexId;
  const page = await api("GET", `/v1/assets?index_id=${encodeURIComponent(idx)}&limit=100`);
  if (idx !== state.indexId) return null;
  $("library-more").hidden = !page.next_cursor;
  return listOf(page);
}

export async function loadAssets() {
  if (!state.indexId) return renderGrid([]);
  const assets = await fetchAssets();
  if (!assets) return;
  renderGrid(assets);
  if (assets.some((a) => !SETTLED.has(a.status))) poll();
}

// While anything is processing, refresh the list every two seconds (one request for all cards).
async function poll() {
  if (polling) return;
  polling = true;
  try {
    for (;;) {
      await sleep(2000);
      if (!state.indexId) return;
      const assets = await fetchAssets();
      if (!assets) continue;
      renderGrid(assets);
      for (const a of assets) {
        if (!watched.has(a.id) || !SETTLED.has(a.status)) continue;
        watched.delete(a.id);
        if (a.status === "ready") notify(`“${a.name}” is ready.`);
        else notify(`“${a.name}” could not be processed: ${statusLine(a)}`, { error: true, raw: details(a.error) });
      }
      const busy = (a) => a.status === "processing" || (watched.has(a.id) && !SETTLED.has(a.status));
      if (!assets.some(busy)) return;
    }
  } catch (e) {
    fail(e, "Refreshing the library");
  } finally {
    polling = false;
  }
}

function renderGrid(assets) {
  const grid = $("grid");
  const seen = new Set();
  for (const a of assets) {
    seen.add(a.id);
    state.assets.set(a.id, a);
    const old = cards.get(a.id);
    if (old && old.stamp === a.updated_at) continue;
    const el = card(a);
    if (old) old.el.replaceWith(el);
    cards.set(a.id, { stamp: a.updated_at, el });
  }
  for (const [id, c] of cards) if (!seen.has(id)) { c.el.remove(); cards.delete(id); }
  // The listing is newest first; keep the grid in that order.
  grid.replaceChildren(...assets.map((a) => cards.get(a.id).el));
  const empty = $("library-empty");
  empty.hidden = assets.length > 0;
  empty.textContent = state.indexId
    ? "No media in this index yet. Drop files above to add some."
    : "Create an index to hold your media.";
}

// A card before its outputs exist (or while they load) shows a neutral box, then its picture.
function cardPicture(a, box) {
  if (a.status === "awaiting_upload" || (a.features.preview && a.features.preview.state !== "completed")) return;
  outputs(a).then((out) => {
    // The middle of the file says more than its first frame; images and audio have one picture.
    const frame = out.cues.length ? frameAt(out, (a.duration_s || 0) / 2) : out.thumbnails.length
      ? { url: out.thumbnails[Math.floor(out.thumbnails.length / 2)].url } : out.poster ? { url: out.poster.url } : null;
    if (frame) box.replaceChildren(picture(frame, "", "card-pic"));
  }).catch(() => {}); // no picture is not worth an error: the card still says what it is
}

function card(a) {
  const box = h("span", { class: "card-pic none", "aria-hidden": "true" }, a.media_type === "audio" ? "♪" : "");
  cardPicture(a, box);
  const dur = a.duration_s ? h("span", { class: "badge", "data-testid": "asset-duration" }, clock(a.duration_s)) : null;
  const media = h("button", { type: "button", class: "card-media", "aria-label": `Open ${a.name}`,
    disabled: a.status === "awaiting_upload" || a.status === "failed", onclick: () => hooks.open(a.id, null) },
  box, dur);
  const name = h("h3", { class: "card-name", title: a.name, "data-testid": "asset-name" }, a.name);
  const facts = [a.media_type, a.duration_s ? clock(a.duration_s) : null, bytes(a.size_bytes)].filter(Boolean).join(" · ");
  const el = h("li", { class: `card status-${a.status}`, "data-testid": "asset-card", "data-asset-id": a.id,
    "data-status": a.status },
  media,
  h("div", { class: "card-body" },
    name,
    h("p", { class: "muted small" }, facts),
    h("p", { class: `status-line s-${a.status}`, "data-testid": "asset-status", "data-status": a.status },
      a.status === "awaiting_upload" && watched.has(a.id) ? "Uploading…" : statusLine(a)),
    featureList(a),
    a.error ? h("details", { class: "raw" }, h("summary", {}, "Details"), h("pre", {}, details(a.error))) : null),
  h("div", { class: "card-actions" },
    h("button", { type: "button", class: "secondary small", "data-testid": "rename",
      onclick: () => rename(a, name) }, "Rename"),
    h("button", { type: "button", class: "secondary small", "data-testid": "download",
      disabled: !a.save_original || a.status === "awaiting_upload", onclick: () => download(a).catch((e) => fail(e, "Download")) },
    "Download"),
    h("button", { type: "button", class: "secondary small danger-text", "data-testid": "delete",
      onclick: () => remove(a) }, "Delete")));
  return el;
}

// While processing: a chip per feature. Once settled: only what did not complete, and why.
function featureList(a) {
  if (a.status === "failed" && a.error) return null; // the status line already says why
  const lines = Object.entries(a.features || {}).map(([n, f]) => featureLine(n, f));
  if (a.status === "processing" || a.status === "awaiting_upload") {
    return h("ul", { class: "chips" }, lines.map((l) =>
      h("li", { class: `chip f-${l.state}`, "data-testid": "feature-state", "data-state": l.state }, `${l.label}: ${l.word}`)));
  }
  const why = lines.filter((l) => l.state !== "completed");
  return why.length ? h("ul", { class: "why", "data-testid": "feature-why" }, why.map((l) =>
    h("li", { "data-testid": "feature-state", "data-state": l.state }, `${l.label} ${l.word}${l.why ? `: ${l.why}` : "."}`))) : null;
}

function rename(a, nameEl) {
  const input = h("input", { type: "text", value: a.name, maxlength: 255, "aria-label": "New name",
    "data-testid": "rename-input" });
  const form = h("form", { class: "rename" }, input,
    h("button", { type: "submit", class: "small" }, "Save"),
    h("button", { type: "button", class: "secondary small", onclick: () => form.replaceWith(nameEl) }, "Cancel"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (!name || name === a.name) return form.replaceWith(nameEl);
    try {
      const updated = await api("PATCH", `/v1/assets/${a.id}`, { name });
      notify(`Renamed to “${updated.name}”.`);
      await loadAssets();
      hooks.renamed(updated);
    } catch (err) {
      fail(err, "Rename");
      input.focus();
    }
  });
  input.addEventListener("keydown", (e) => { if (e.key === "Escape") form.replaceWith(nameEl); });
  nameEl.replaceWith(form);
  input.focus();
  input.select();
}

async function download(a) {
  const { url } = await api("GET", `/v1/assets/${a.id}/download`);
  h("a", { href: url, download: a.name, rel: "noopener" }).click();
}

async function remove(a) {
  if (!(await confirmAction(`Delete “${a.name}”? Its file, previews, transcript and search entries are removed for good.`))) return;
  try {
    await api("DELETE", `/v1/assets/${a.id}`);
  } catch (e) {
    if (e.code !== "asset_not_found") return fail(e, "Delete");
  }
  forget(a.id);
  state.assets.delete(a.id);
  notify(`“${a.name}” deleted.`);
  hooks.removed(a.id);
  await loadAssets();
}

// An upload began: show its card at once, and follow it until it settles.
export async function added(asset) {
  watched.add(asset.id);
  await loadAssets();
  poll();
}

// An upload that failed leaves nothing to wait for.
export function unwatch(id) {
  watched.delete(id);
  cards.delete(id); // it said "Uploading…": redraw it
  loadAssets().catch(fail);
}

// Storage has the bytes: show the card processing without waiting for the next poll.
export function uploaded(asset) {
  cards.delete(asset.id); // "Uploading…" came from this tab, not from the asset: redraw it
  loadAssets().then(() => poll()).catch(fail);
}
