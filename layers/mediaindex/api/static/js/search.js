// Search: what the server can search (GET /v1/capabilities), the form, and the hit list with a
// picture of each hit's moment and the query's words marked.
import { api } from "./api.js";
import { $, clock, h, listOf, marked, queryWords } from "./dom.js";
import { frameAt, outputs, picture } from "./media.js";
import { fail, hideNotice } from "./notify.js";
import { state } from "./state.js";

const MODALITIES = ["transcription", "visual"];
const LABELS = { transcription: "Speech", visual: "Visual" };
let hooks = { open: () => {}, changed: () => {} };

export function init(h0) {
  hooks = h0;
}

// An older server has no /v1/capabilities (404): then both modalities are offered, as before.
// Returns the capabilities (null without them), for the parts that offer models.
export async function loadCapabilities() {
  let caps = null;
  try {
    caps = await api("GET", "/v1/capabilities");
  } catch (e) {
    if (e.status !== 404) fail(e, "Checking what search can do");
  }
  const opts = (caps && caps.search_options) || {};
  const notes = [];
  for (const m of MODALITIES) {
    const box = $(`opt-${m}`);
    const o = opts[m];
    const off = Boolean(o) && o.available === false;
    box.disabled = off;
    if (off) box.checked = false;
    else if (box.dataset.off) box.checked = true; // it was off before: offer it again
    box.dataset.off = off ? "1" : "";
    box.closest("label").classList.toggle("off", off);
    if (off) notes.push(`${LABELS[m]} search is not available on this server${o.reason ? `: ${o.reason.replace(/[.\s]*$/, "")}.` : "."}`);
  }
  const note = $("capability-note");
  note.textContent = notes.join(" ");
  note.hidden = !notes.length;
  $("search-form").dataset.capabilities = caps ? "server" : "assumed";
  return caps;
}

export async function search(query) {
  if (!state.indexId) return fail({ code: "index_not_found" });
  const opts = MODALITIES.filter((m) => $(`opt-${m}`).checked);
  if (!opts.length) return showSummary("Pick Speech, Visual or both to search.");
  const body = { index_id: state.indexId, query_text: query, search_options: opts, limit: 20 };
  const mt = $("filter-media-type").value;
  if (mt) body.filter = { media_type: mt };
  if ($("group-by-asset").checked) body.group_by = "asset";
  $("search-button").disabled = true;
  try {
    const hits = listOf(await api("POST", "/v1/search", body));
    const unknown = [...new Set(hits.map((x) => x.asset_id))].filter((id) => !state.assets.has(id));
    if (unknown.length) {
      const got = await api("POST", "/v1/assets/batch-get", { ids: unknown.slice(0, 100) });
      for (const a of listOf(got)) state.assets.set(a.id, a);
    }
    hideNotice();
    show(hits, query);
  } finally {
    $("search-button").disabled = false;
  }
}

function showSummary(text) {
  $("results-wrap").hidden = false;
  $("results-h").textContent = text;
  $("results").replaceChildren();
}

export function clear() {
  state.hits = [];
  state.words = [];
  $("results-wrap").hidden = true;
  $("results").replaceChildren();
  hooks.changed();
}

function show(hits, query) {
  state.hits = hits;
  state.words = queryWords(query);
  const n = hits.length;
  // Suggest the other kind of search only where it is offered and was left out.
  const more = MODALITIES.filter((m) => !$(`opt-${m}`).checked && !$(`opt-${m}`).disabled).map((m) => LABELS[m]);
  const hint = more.length ? `Try other words, or search ${more.join(" and ")} too.` : "Try other words.";
  showSummary(n ? `${n} result${n === 1 ? "" : "s"} for “${query}”` : `Nothing matched “${query}”. ${hint}`);
  $("results").replaceChildren(...hits.map(hitRow));
  hooks.changed();
}

// Removes a deleted asset's hits.
export function dropAsset(id) {
  if (!state.hits.some((x) => x.asset_id === id)) return;
  state.hits = state.hits.filter((x) => x.asset_id !== id);
  for (const el of $("results").querySelectorAll(`[data-asset-id="${id}"]`)) el.closest("li").remove();
  $("results-h").textContent = `${state.hits.length} result${state.hits.length === 1 ? "" : "s"}`;
}

function hitRow(hit) {
  const a = state.assets.get(hit.asset_id);
  const name = a ? a.name : "(a file no longer listed)";
  const alt = `${name} at ${clock(hit.start)}`;
  const pic = h("span", { class: "hit-pic-box" }, picture(hit.thumbnail_url ? { url: hit.thumbnail_url } : null, alt, "hit-pic"));
  if (a) {
    outputs(a).then((out) => {
      const frame = frameAt(out, hit.start);
      if (frame) pic.replaceChildren(picture(frame, alt, "hit-pic"));
    }).catch(() => {}); // keep the server's thumbnail
  }
  const scores = Object.entries(hit.scores || {}).filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${LABELS[k] || k} ${Number(v).toFixed(2)}`).join(" · ");
  const inner = hit.segments || [];
  return h("li", { class: "hit-item" },
    h("button", { type: "button", class: "hit", "data-testid": "hit", "data-asset-id": hit.asset_id,
      "data-start": hit.start, "data-end": hit.end, onclick: () => hooks.open(hit.asset_id, hit.start) },
    pic,
    h("span", { class: "hit-body" },
      h("span", { class: "hit-head" },
        h("strong", { class: "hit-name" }, name),
        h("span", { class: "range", "data-testid": "hit-range" }, `${clock(hit.start, true)} – ${clock(hit.end, true)}`)),
      hit.text ? h("span", { class: "hit-text", "data-testid": "hit-text" }, marked(hit.text, state.words)) : null,
      h("span", { class: "score", "data-testid": "hit-score", title: "Agreement of the rankings, 0 to 1" },
        `score ${Number(hit.score).toFixed(2)}${scores ? ` (${scores})` : ""}`))),
    inner.length > 1 ? h("ol", { class: "inner" }, inner.map((s) =>
      h("li", {}, h("button", { type: "button", class: "link", onclick: () => hooks.open(hit.asset_id, s.start) },
        h("span", { class: "range" }, clock(s.start, true)), " ", s.text ? marked(s.text, state.words) : "")))) : null);
}

export function wire() {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("search-input").value.trim();
    if (q) search(q).catch((err) => fail(err, "Search"));
  });
  $("clear-search").addEventListener("click", () => {
    $("search-input").value = "";
    clear();
  });
}
