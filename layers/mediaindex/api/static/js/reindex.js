// Re-indexing the current index: its generation and Whisper model, a form to rebuild it with a
// model the server offers (GET /v1/capabilities), and the running re-index's progress, polled
// every two seconds from GET /v1/indexes/{id} until it ends.
import { api } from "./api.js";
import { $, sleep } from "./dom.js";
import { details, sentenceFor } from "./messages.js";
import { fail } from "./notify.js";

const POLL_MS = 2000;
let offered = []; // the Whisper models this server re-indexes onto; none: no Re-index button
let fallback = ""; // the server's default model, preselected when the index's own is not offered
let shown = null; // the index on screen
let seq = 0; // bumped on every index change: a poll of an index no longer shown stops

// From GET /v1/capabilities (null on an older server, which cannot re-index).
export function offer(caps) {
  offered = (caps && caps.transcription_models) || [];
  fallback = (caps && caps.default_transcription_model) || "";
  if (shown) render(shown);
}

// The index picker moved (or the list reloaded): show the new index, and follow its re-index.
export function show(id) {
  load(id).catch((e) => fail(e, "Reading the index"));
}

async function load(id) {
  const mine = ++seq;
  shown = null;
  showForm(false);
  $("index-info").hidden = true;
  $("reindex").hidden = true;
  if (!id) return;
  const ix = await api("GET", `/v1/indexes/${encodeURIComponent(id)}`);
  if (mine !== seq) return;
  render(ix);
  if (running(ix)) follow(mine);
}

const running = (ix) => Boolean(ix.reindex) && ix.reindex.state === "running";

function render(ix) {
  shown = ix;
  // An older server's index has neither: nothing to say, nothing to offer.
  const known = ix.generation !== undefined && Boolean(ix.models);
  $("index-info").hidden = !known;
  if (!known) return;
  $("index-generation").textContent = String(ix.generation);
  $("index-model").textContent = ix.models.transcription;
  const toggle = $("reindex-toggle");
  toggle.hidden = !offered.length;
  toggle.disabled = running(ix);
  if (running(ix)) showForm(false);
  renderRun(ix);
}

// The latest re-index: progress and Cancel while it runs, its outcome once it ended.
function renderRun(ix) {
  const r = ix.reindex;
  const box = $("reindex");
  box.hidden = !r;
  if (!r) return;
  box.dataset.state = r.state;
  const live = r.state === "running";
  const bar = $("reindex-progress");
  bar.hidden = !live;
  $("reindex-cancel").hidden = !live;
  $("reindex-cancel").disabled = live && r.swapped; // the swap is done: it can only finish now
  if (live) {
    // No count yet (an index still being walked): the bar moves without a value.
    if (r.assets_total > 0) {
      bar.max = r.assets_total;
      bar.value = r.assets_done;
    } else bar.removeAttribute("value");
  }
  $("reindex-text").textContent = runLine(ix, r);
  $("reindex-raw").textContent = r.error ? details(r.error) : "";
  $("reindex-details").hidden = !r.error;
}

function runLine(ix, r) {
  const model = r.models.transcription;
  if (r.state === "running") {
    const done = r.assets_total > 0 ? `${r.assets_done} of ${r.assets_total} files rebuilt` : "counting files";
    const failed = r.assets_failed ? `, ${r.assets_failed} failed` : "";
    const tail = r.swapped ? " Search already uses it; finishing." : "";
    return `Re-indexing to generation ${r.generation} with ${model}: ${done}${failed}.${tail}`;
  }
  if (r.state === "completed") return `Re-index completed: search uses generation ${r.generation} (${model}).`;
  const why = (r.error && sentenceFor(r.error.code)) || "";
  const verb = r.state === "cancelled" ? "cancelled" : "failed";
  return `Re-index ${verb}: search stays on generation ${ix.generation}.${why ? ` ${why}` : ""}`;
}

// Poll while the shown index's re-index runs; the panel's live region announces each change.
async function follow(mine) {
  try {
    for (;;) {
      await sleep(POLL_MS);
      if (mine !== seq) return;
      const ix = await api("GET", `/v1/indexes/${encodeURIComponent(shown.id)}`);
      if (mine !== seq) return;
      render(ix);
      if (!running(ix)) return;
    }
  } catch (e) {
    if (mine === seq) fail(e, "Following the re-index");
  }
}

export function showForm(show) {
  const form = $("reindex-form");
  form.hidden = !show;
  $("reindex-toggle").setAttribute("aria-expanded", String(show));
  if (!show || !shown) return;
  const sel = $("reindex-model");
  const current = shown.models.transcription;
  sel.replaceChildren(...offered.map((m) => new Option(m === current ? `${m} (current)` : m, m)));
  sel.value = offered.includes(current) ? current : fallback;
  sel.focus();
}

async function start() {
  if (!shown) return;
  const mine = seq;
  const button = $("reindex-start");
  button.disabled = true;
  try {
    const ix = await api("POST", `/v1/indexes/${encodeURIComponent(shown.id)}/reindex`,
      { models: { transcription: $("reindex-model").value } });
    if (mine !== seq) return;
    showForm(false);
    render(ix);
    if (running(ix)) follow(mine);
    $("reindex-text").focus(); // the form is gone: keep the keyboard where the progress is
  } catch (e) {
    fail(e, "Re-index");
    if (e.code === "reindex_running" && mine === seq) show(shown.id); // someone else's: follow theirs
  } finally {
    button.disabled = false;
  }
}

async function cancel() {
  if (!shown) return;
  const mine = seq;
  $("reindex-cancel").disabled = true;
  try {
    const ix = await api("POST", `/v1/indexes/${encodeURIComponent(shown.id)}/reindex/cancel`);
    if (mine === seq) render(ix); // the panel says so at once; the poll then stops
  } catch (e) {
    fail(e, "Cancelling the re-index");
    // It ended or swapped meanwhile: show where it stands rather than what this page last saw.
    if (mine === seq) show(shown.id);
  }
}

export function wire() {
  $("reindex-toggle").addEventListener("click", () => showForm($("reindex-form").hidden));
  $("reindex-close").addEventListener("click", () => { showForm(false); $("reindex-toggle").focus(); });
  $("reindex-form").addEventListener("submit", (e) => {
    e.preventDefault();
    start();
  });
  $("reindex-cancel").addEventListener("click", cancel);
}
