// DOM and formatting helpers. User text only ever enters the page as text nodes.

export const $ = (id) => document.getElementById(id);

// h("tag", {attrs, onevent}, ...children): children are nodes or strings (strings become text nodes).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// 75.4 -> "1:15"; with tenths for ranges inside short clips: "1:15.4".
export function clock(s, tenths = false) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  const m = Math.floor(s / 60);
  const sec = s - m * 60;
  const body = tenths ? sec.toFixed(1).padStart(4, "0") : String(Math.floor(sec)).padStart(2, "0");
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${body}` : `${m}:${body}`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export const listOf = (r) => (Array.isArray(r) ? r : (r && r.data) || []);

// The words of a query worth marking: letters and digits, two characters or more, no duplicates.
export function queryWords(query) {
  const words = (query.toLowerCase().match(/[\p{L}\p{N}']+/gu) || []).filter((w) => w.length > 1);
  return [...new Set(words)];
}

const escape = (w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// The pattern of one query word: short words whole; longer ones without a plain English ending,
// so that "jumps" also marks "jump" and "jumping".
function wordPattern(w) {
  if (w.length <= 3) return `${escape(w)}(?![\\p{L}\\p{N}])`;
  const stem = w.length > 4 ? w.replace(/(ing|ed|es|s)$/u, "") : w;
  return `${escape(stem)}[\\p{L}\\p{N}']*`;
}

// Text with each word the query names wrapped in <mark>, as DOM nodes (never as HTML).
export function marked(text, words) {
  if (!words.length) return [text];
  const sorted = [...words].sort((a, b) => b.length - a.length);
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${sorted.map(wordPattern).join("|")})`, "giu");
  const out = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (!m[0]) continue;
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h("mark", { "data-testid": "match" }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}
