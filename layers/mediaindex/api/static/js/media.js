// Per-asset outputs: derivatives (signed URLs, kept a few minutes, well inside their lifetime), the
// storyboard's cues, and the picture nearest a given second.
import { api, ApiError } from "./api.js";
import { h, listOf } from "./dom.js";

const KEEP_MS = 5 * 60 * 1000;
const cache = new Map(); // asset id -> {at, promise}

export function forget(assetId) {
  if (assetId) cache.delete(assetId);
  else cache.clear();
}

// {proxy, poster, thumbnails: [...], cues: [{start, end, url, x, y, w, h, sheetW, sheetH}]}
export function outputs(asset) {
  // Outputs of an asset still processing are still arriving: never keep them.
  if (asset.status !== "ready" && asset.status !== "failed") return load(asset);
  const hit = cache.get(asset.id);
  if (hit && Date.now() - hit.at < KEEP_MS) return hit.promise;
  const promise = load(asset).catch((e) => {
    cache.delete(asset.id);
    throw e;
  });
  cache.set(asset.id, { at: Date.now(), promise });
  return promise;
}

// At most four assets' outputs load at once: a full library must not spend the key's rate limit
// (and the browser's connections) in one burst.
const SLOTS = 4;
let busy = 0;
const queue = [];

async function load(asset) {
  if (busy >= SLOTS) await new Promise((r) => queue.push(r));
  busy++;
  try {
    return await loadNow(asset);
  } finally {
    busy--;
    if (queue.length) queue.shift()();
  }
}

async function loadNow(asset) {
  const derivs = asset.status === "awaiting_upload" ? [] : listOf(await api("GET", `/v1/assets/${asset.id}/derivatives`));
  const of = (kind) => derivs.filter((d) => d.kind === kind);
  const sheets = of("storyboard");
  const vtt = of("storyboard_vtt")[0];
  let cues = [];
  if (vtt && sheets.length) {
    const res = await fetch(vtt.url);
    if (!res.ok) throw new ApiError(res.status, "storyboard_unavailable", `storyboard VTT answered HTTP ${res.status}`);
    cues = parseVtt(await res.text(), sheets);
  }
  return { proxy: of("proxy")[0] || null, poster: of("poster")[0] || null, thumbnails: of("thumbnail"), cues,
    duration: asset.duration_s };
}

const seconds = (s) => s.split(":").reduce((acc, p) => acc * 60 + parseFloat(p), 0);

// Cues name their sprite sheet relative to the VTT; the signed sheet URLs come from /derivatives,
// in the same order as the sheets first appear.
export function parseVtt(text, sheets) {
  const cues = [];
  const files = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.split(/\r?\n/);
    const i = lines.findIndex((l) => l.includes("-->"));
    if (i < 0 || !lines[i + 1]) continue;
    const [start, end] = lines[i].split("-->").map((s) => seconds(s.trim().split(/\s+/)[0]));
    const [file, frag] = lines[i + 1].trim().split("#xywh=");
    if (!frag) continue;
    if (!files.includes(file)) files.push(file);
    const sheet = sheets[files.indexOf(file)] || sheets[0];
    const [x, y, w, hh] = frag.split(",").map(Number);
    cues.push({ start, end, url: sheet.url, x, y, w, h: hh, sheetW: sheet.width, sheetH: sheet.height });
  }
  return cues;
}

export const cueAt = (cues, t) => cues.find((c) => t >= c.start && t < c.end) || null;

// A picture of the moment t: the storyboard tile covering t, else the evenly spaced thumbnail
// nearest t (the preview step takes thumbnail i from the middle of slot i), else the poster.
export function frameAt(out, t) {
  const cue = cueAt(out.cues, t) || (out.cues.length && t >= out.cues[out.cues.length - 1].end ? out.cues.at(-1) : null);
  if (cue) return { cue };
  const n = out.thumbnails.length;
  if (n && out.duration) {
    const i = Math.max(0, Math.min(n - 1, Math.floor((t / out.duration) * n)));
    return { url: out.thumbnails[i].url };
  }
  if (n) return { url: out.thumbnails[0].url };
  return out.poster ? { url: out.poster.url } : null;
}

// A storyboard tile (a crop of the sheet, scaled to whatever box CSS gives it), or an <img>.
export function picture(frame, alt, cls) {
  if (frame && frame.cue) {
    const c = frame.cue;
    const el = h("span", { class: `${cls} tile`, role: "img", "aria-label": alt, "data-time": c.start });
    const sw = c.sheetW || c.w;
    const sh = c.sheetH || c.h;
    // Percent offsets: x / (sheet - tile) places the tile's corner whatever the box's size.
    const pct = (off, sheet, tile) => (sheet > tile ? (100 * off) / (sheet - tile) : 0);
    Object.assign(el.style, {
      backgroundImage: `url("${c.url}")`,
      backgroundSize: `${(100 * sw) / c.w}% ${(100 * sh) / c.h}%`,
      backgroundPosition: `${pct(c.x, sw, c.w)}% ${pct(c.y, sh, c.h)}%`,
    });
    return el;
  }
  if (frame && frame.url) return h("img", { class: cls, src: frame.url, alt, loading: "lazy" });
  return h("span", { class: `${cls} none`, role: "img", "aria-label": alt });
}
