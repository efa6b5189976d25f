// The player: the asset's proxy with one custom seek bar (no native controls), a tick on the bar
// for each search hit in this asset, storyboard previews on hover, and the transcript following along.
import { api } from "./api.js";
import { $, bytes, clock, h, marked } from "./dom.js";
import { cueAt, outputs } from "./media.js";
import { featureLine, statusLine } from "./messages.js";
import { fail } from "./notify.js";
import { state } from "./state.js";

let view = { asset: null, out: null, lines: [], active: null };

const media = () => {
  const m = $("player");
  return m && (m.tagName === "VIDEO" || m.tagName === "AUDIO") ? m : null;
};
const duration = () => {
  const m = media();
  return m && Number.isFinite(m.duration) && m.duration > 0 ? m.duration : (view.asset && view.asset.duration_s) || 0;
};

export function seek(t, play = false) {
  const m = media();
  if (!m) return;
  const go = () => {
    m.currentTime = Math.max(0, Math.min(t, duration() || t));
    if (play) m.play().catch(() => {}); // autoplay may be refused; the play button still works
  };
  if (m.readyState >= 1) go();
  else m.addEventListener("loadedmetadata", go, { once: true });
}

let opening = 0; // the latest open() wins when clicks overtake each other

export async function open(id, startAt = null) {
  // Another moment of a ready file already playing: just go there.
  if (view.asset && view.asset.id === id && view.asset.status === "ready" && media()) {
    if (startAt !== null) seek(startAt, true);
    return;
  }
  const ticket = ++opening;
  const a = await api("GET", `/v1/assets/${id}`);
  const out = await outputs(a);
  if (ticket !== opening) return;
  state.assets.set(a.id, a);
  state.openId = a.id;
  view = { asset: a, out, lines: [], active: null };
  $("workspace").classList.add("with-viewer");
  $("viewer").hidden = false;
  $("viewer-title").textContent = a.name;
  renderStage(a, out);
  renderMarkers();
  renderMeta(a);
  await loadTranscript(a).catch((e) => fail(e, "Transcript"));
  if (startAt !== null) seek(startAt, true);
  const box = $("viewer").getBoundingClientRect();
  if (box.top < 0 || box.top > window.innerHeight * 0.5) $("viewer").scrollIntoView({ block: "start" });
  $("viewer-title").focus({ preventScroll: true });
}

export function close() {
  opening++; // an open() still loading must not reopen the player
  const m = media();
  if (m) m.pause();
  state.openId = null;
  view = { asset: null, out: null, lines: [], active: null };
  $("stage").replaceChildren();
  $("viewer").hidden = true;
  $("workspace").classList.remove("with-viewer");
}

export function renamed(a) {
  if (state.openId === a.id) $("viewer-title").textContent = a.name;
}

function renderStage(a, out) {
  const stage = $("stage");
  const controls = $("controls");
  controls.hidden = true;
  const proxy = out.proxy;
  const pf = a.features.proxy;
  $("viewer-state").textContent = a.status === "ready" ? "" : statusLine(a);
  if (!proxy) {
    const why = pf ? featureLine("proxy", pf) : null;
    const text = why && why.why ? `Playback ${why.word}: ${why.why}` : "Playback is being prepared. Try again in a moment.";
    return stage.replaceChildren(h("p", { class: "stage-empty" }, text));
  }
  if (a.media_type === "image") {
    return stage.replaceChildren(h("img", { id: "player", class: "still", src: proxy.url, alt: a.name, "data-testid": "player" }));
  }
  const isVideo = a.media_type !== "audio";
  const m = h(isVideo ? "video" : "audio", {
    id: "player", preload: "metadata", playsinline: true, src: proxy.url, "data-testid": "player",
    poster: isVideo && out.poster ? out.poster.url : null,
  });
  for (const ev of ["timeupdate", "durationchange", "play", "pause", "volumechange"]) m.addEventListener(ev, onTime);
  m.addEventListener("durationchange", renderMarkers);
  m.addEventListener("seeked", () => { m.dataset.seeked = String(m.currentTime); onTime(); });
  m.addEventListener("click", toggle);
  // Audio shows its waveform picture; the element itself has no controls to draw.
  const wave = !isVideo && out.poster ? h("img", { class: "wave", src: out.poster.url, alt: "" }) : null;
  stage.replaceChildren(...[wave, m].filter(Boolean));
  $("fullscreen").hidden = !isVideo;
  controls.hidden = false;
  onTime();
}

function toggle() {
  const m = media();
  if (!m) return;
  if (m.paused) m.play().catch((e) => fail(e, "Play"));
  else m.pause();
}

function onTime() {
  const m = media();
  if (!m) return;
  const d = duration();
  const tl = $("timeline");
  tl.setAttribute("aria-valuemax", d.toFixed(1));
  tl.setAttribute("aria-valuenow", m.currentTime.toFixed(1));
  tl.setAttribute("aria-valuetext", `${clock(m.currentTime)} of ${clock(d)}`);
  $("timeline-fill").style.width = d ? `${Math.min(100, (100 * m.currentTime) / d)}%` : "0";
  $("clock").textContent = `${clock(m.currentTime)} / ${clock(d)}`;
  const play = $("play");
  play.textContent = m.paused ? "▶" : "❚❚";
  play.setAttribute("aria-label", m.paused ? "Play" : "Pause");
  const mute = $("mute");
  mute.classList.toggle("muted-on", m.muted);
  mute.setAttribute("aria-pressed", String(m.muted));
  follow(m.currentTime);
}

// A new search: its ticks on the bar and its words marked in the transcript.
export function refresh() {
  renderMarkers();
  for (const l of view.lines) l.said.replaceChildren(...marked(l.text, state.words));
}

// One tick per search hit in this asset, at its start (a grouped hit contributes its segments).
function renderMarkers() {
  const box = $("markers");
  const d = duration();
  if (!view.asset || !d) return box.replaceChildren();
  const spans = state.hits.filter((x) => x.asset_id === view.asset.id)
    .flatMap((x) => (x.segments && x.segments.length ? x.segments : [x]));
  box.replaceChildren(...spans.map((s) => {
    const tick = h("button", { type: "button", class: "marker", "data-testid": "marker", "data-start": s.start,
      "aria-label": `Hit at ${clock(s.start)}`, title: `${clock(s.start)}${s.text ? ` ${s.text}` : ""}` });
    tick.style.left = `calc(${Math.min(100, (100 * s.start) / d)}% - 2px)`;
    tick.addEventListener("click", (e) => { e.stopPropagation(); seek(s.start, true); });
    return tick;
  }));
}

function timeAt(e) {
  const r = $("timeline").getBoundingClientRect();
  const frac = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  return { t: frac * duration(), px: frac * r.width };
}

function hover(e) {
  const pv = $("storyboard-preview");
  const { t, px } = timeAt(e);
  const cue = view.out ? cueAt(view.out.cues, t) : null;
  if (!cue) return void (pv.hidden = true);
  const w = cue.w;
  Object.assign(pv.style, {
    width: `${w}px`, height: `${cue.h}px`, backgroundImage: `url("${cue.url}")`,
    backgroundPosition: `-${cue.x}px -${cue.y}px`,
    left: `${Math.max(0, Math.min(px - w / 2, $("timeline").clientWidth - w))}px`,
  });
  pv.dataset.time = t.toFixed(2);
  pv.textContent = clock(t);
  pv.hidden = false;
}

async function loadTranscript(a) {
  const list = $("transcript");
  // Pictures have nothing to transcribe: no section rather than a note saying so.
  const still = a.media_type === "image";
  list.hidden = still;
  $("transcript-h").hidden = still;
  if (still) return list.replaceChildren();
  const f = (a.features || {}).transcription;
  if (!f || f.state !== "completed") {
    const l = f ? featureLine("transcription", f) : null;
    const text = !l ? "No transcript." : l.why ? `Transcript ${l.word}: ${l.why}` : `Transcript ${l.word}.`;
    return list.replaceChildren(h("li", { class: "muted" }, text));
  }
  const t = await api("GET", `/v1/assets/${a.id}/transcript?format=json`);
  const segs = t.segments || [];
  view.lines = [];
  list.replaceChildren(...segs.map((s) => {
    const said = h("span", {}, marked(s.text.trim(), state.words));
    const btn = h("button", { type: "button", class: "line", "data-start": s.start },
      h("span", { class: "ts" }, clock(s.start)), " ", said);
    const el = h("li", { "data-testid": "transcript-line" }, btn);
    view.lines.push({ start: s.start, end: s.end, el, said, text: s.text.trim() });
    return el;
  }));
  if (!segs.length) list.append(h("li", { class: "muted" }, "Nothing was said."));
}

function follow(t) {
  const line = view.lines.find((l) => t >= l.start && t < l.end) || null;
  if (line === view.active) return;
  if (view.active) { view.active.el.classList.remove("active"); view.active.el.removeAttribute("aria-current"); }
  if (line) {
    line.el.classList.add("active");
    line.el.setAttribute("aria-current", "true");
    const list = $("transcript");
    const top = line.el.offsetTop - list.offsetTop;
    if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - 30) list.scrollTop = top - 20;
  }
  view.active = line;
}

function renderMeta(a) {
  const rows = [
    ["Type", a.media_type], ["Format", a.content_type], ["Size", bytes(a.size_bytes)],
    ["Duration", a.duration_s ? clock(a.duration_s, true) : null],
    ["Dimensions", a.width ? `${a.width} × ${a.height}` : null], ["Added", a.created_at && new Date(a.created_at).toLocaleString()],
    ["Id", a.id],
  ];
  const feats = Object.entries(a.features || {}).map(([n, f]) => featureLine(n, f))
    .map((l) => `${l.label}: ${l.word}${l.why ? ` (${l.why})` : ""}`);
  $("asset-meta").replaceChildren(
    ...rows.filter(([, v]) => v).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]),
    h("dt", {}, "Processing"), h("dd", {}, feats.join("; ")));
}

export function wire() {
  const tl = $("timeline");
  tl.addEventListener("mousemove", hover);
  tl.addEventListener("mouseleave", () => { $("storyboard-preview").hidden = true; });
  window.addEventListener("resize", () => { $("storyboard-preview").hidden = true; });
  tl.addEventListener("click", (e) => seek(timeAt(e).t));
  tl.addEventListener("keydown", (e) => {
    const m = media();
    if (!m) return;
    const step = { ArrowLeft: -5, ArrowRight: 5, ArrowDown: -5, ArrowUp: 5 }[e.key];
    if (step) seek(Math.max(0, m.currentTime + step));
    else if (e.key === "Home") seek(0);
    else if (e.key === "End") seek(duration());
    else return;
    e.preventDefault();
  });
  $("play").addEventListener("click", toggle);
  $("mute").addEventListener("click", () => { const m = media(); if (m) m.muted = !m.muted; });
  $("fullscreen").addEventListener("click", () => { const m = media(); if (m && m.requestFullscreen) m.requestFullscreen().catch(() => {}); });
  $("viewer-close").addEventListener("click", close);
  $("viewer").addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
  $("transcript").addEventListener("click", (e) => {
    const el = e.target.closest("[data-start]");
    if (el) seek(Number(el.dataset.start), true);
  });
}
