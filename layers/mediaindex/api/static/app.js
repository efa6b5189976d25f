// mediaindex playground: a client of the public HTTP API (/v1) and nothing else.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = "mediaindex.apiKey";
  const IDX = "mediaindex.indexId";
  const MODALITIES = ["transcription", "visual"];
  const state = {
    key: sessionStorage.getItem(KEY) || "",
    indexId: sessionStorage.getItem(IDX) || "",
    asset: null, // the asset open in the view
    names: new Map(), // asset id -> name, for hit cards
    watching: new Set(),
    cues: [], // storyboard cues
    lines: [], // transcript: [{start, end, el, words: [{start, end, el}]}]
    active: null,
  };

  // ---- small helpers ---------------------------------------------------------------------------
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined));
    return el;
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const fmt = (s) => {
    if (s === null || s === undefined || Number.isNaN(s)) return "–";
    const m = Math.floor(s / 60);
    return `${m}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
  };
  const bytes = (n) => {
    if (n === null || n === undefined) return "–";
    const u = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
  };
  const listOf = (r) => (Array.isArray(r) ? r : (r && r.data) || []);

  function say(msg, isError = false) {
    const el = $("status");
    el.textContent = msg;
    el.classList.toggle("error", isError);
  }
  const fail = (e) => say(e.code ? `${e.message} (${e.code})` : String(e.message || e), true);

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    if (!state.key) throw new ApiError(0, "api_key_missing", "Enter an API key first.");
    const init = { method, headers: { Authorization: `Bearer ${state.key}` } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(path, init);
      if (res.status === 429 && attempt < 4) {
        await sleep(1000 * (Number(res.headers.get("Retry-After")) || 1));
        continue;
      }
      if (res.status === 204) return null;
      const data = await res.json().catch(() => null);
      if (!res.ok) {
        const e = (data && data.error) || {};
        throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText);
      }
      return data;
    }
  }

  function chips(asset) {
    return Object.entries(asset.features || {}).map(([name, f]) =>
      h("span", {
        class: `chip state-${f.state}`, "data-testid": "feature-state", "data-feature": name,
        "data-state": f.state, title: f.reason || f.error || "",
      }, `${name}: ${f.state}`));
  }
  const statusChip = (asset) =>
    h("span", { class: `chip state-${asset.status}`, "data-testid": "asset-status", "data-status": asset.status },
      asset.status);

  // ---- key and indexes -------------------------------------------------------------------------
  async function loadIndexes() {
    const indexes = listOf(await api("GET", "/v1/indexes?limit=100"));
    const sel = $("index-select");
    sel.replaceChildren(h("option", { value: "" }, "(none)"),
      ...indexes.map((ix) => h("option", { value: ix.id }, `${ix.name} (${ix.asset_count ?? 0})`)));
    const keep = indexes.some((ix) => ix.id === state.indexId);
    sel.value = keep ? state.indexId : indexes.length ? indexes[0].id : "";
    await setIndex(sel.value);
  }

  async function setIndex(id) {
    state.indexId = id;
    sessionStorage.setItem(IDX, id);
    await loadAssets();
  }

  async function loadAssets() {
    const list = $("asset-list");
    if (!state.indexId) return list.replaceChildren();
    const assets = listOf(await api("GET", `/v1/assets?index_id=${encodeURIComponent(state.indexId)}&limit=100`));
    for (const a of assets) state.names.set(a.id, a.name);
    list.replaceChildren(...assets.map((a) =>
      h("li", { "data-testid": "asset-item", "data-asset-id": a.id },
        h("button", { type: "button", class: "link", onclick: () => openAsset(a.id).catch(fail) }, a.name),
        " ", statusChip(a), " ", h("span", { class: "muted" }, a.media_type || ""))));
    if (!assets.length) list.append(h("li", { class: "muted" }, "No assets yet."));
  }

  // ---- uploads ---------------------------------------------------------------------------------
  const FORBIDDEN = new Set(["content-length", "host", "connection"]);

  function xhrPut(method, url, headers, body, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      for (const [k, v] of Object.entries(headers || {})) if (!FORBIDDEN.has(k.toLowerCase())) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => onProgress(e.loaded);
      xhr.onload = () => (xhr.status >= 200 && xhr.status < 300
        ? resolve(xhr) : reject(new Error(`Upload answered HTTP ${xhr.status}`)));
      xhr.onerror = () => reject(new Error("Upload failed (network or CORS)"));
      xhr.send(body);
    });
  }

  // The first part URLs come with the asset; the rest are signed on demand, 100 a call, just
  // before their parts are sent (a large file's URLs would otherwise expire while it uploads).
  function partSigner(assetId, mp) {
    const urls = new Map(mp.parts.map((p) => [p.part_number, p.url]));
    let pending = null;
    return async (n) => {
      while (!urls.has(n)) {
        if (!pending) {
          const wanted = [];
          for (let i = n; i <= mp.part_count && wanted.length < 100; i++) if (!urls.has(i)) wanted.push(i);
          pending = api("POST", `/v1/assets/${assetId}/upload/parts`, { part_numbers: wanted })
            .then((signed) => { for (const p of signed.parts) urls.set(p.part_number, p.url); })
            .finally(() => { pending = null; });
        }
        await pending;
      }
      const url = urls.get(n);
      urls.delete(n);
      return url;
    };
  }

  async function putMultipart(assetId, file, mp, onProgress) {
    const loaded = new Map();
    const done = [];
    const queue = Array.from({ length: mp.part_count }, (_, i) => i + 1);
    const signedUrl = partSigner(assetId, mp);
    const report = () => onProgress([...loaded.values()].reduce((a, b) => a + b, 0));
    const worker = async () => {
      while (queue.length) {
        const n = queue.shift();
        const p = { part_number: n, url: await signedUrl(n) };
        const blob = file.slice((p.part_number - 1) * mp.part_size, p.part_number * mp.part_size);
        const xhr = await xhrPut("PUT", p.url, {}, blob, (b) => { loaded.set(p.part_number, b); report(); });
        const etag = xhr.getResponseHeader("ETag");
        if (!etag) throw new Error("Storage hid the ETag header of a part (CORS ExposeHeaders).");
        done.push({ part_number: p.part_number, etag });
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(4, queue.length) }, worker)); // 4 parts in flight
    } catch (e) {
      queue.length = 0;
      await api("DELETE", `/v1/assets/${assetId}/upload`).catch(() => {});
      throw e;
    }
    done.sort((a, b) => a.part_number - b.part_number);
    return api("POST", `/v1/assets/${assetId}/upload/complete`, { parts: done });
  }

  function uploadRow(file) {
    const bar = h("progress", { max: 1, value: 0, "aria-label": `Upload progress of ${file.name}` });
    const states = h("span", { class: "states" });
    const note = h("span", { class: "muted" }, "uploading");
    const li = h("li", { "data-testid": "upload-item", "data-name": file.name },
      h("strong", {}, file.name), " ", h("span", { class: "muted" }, bytes(file.size)), bar, note, states);
    $("uploads").prepend(li);
    return {
      li,
      progress: (f) => { bar.value = Math.min(1, f); },
      note: (t) => { note.textContent = t; },
      render: (asset) => {
        states.replaceChildren(statusChip(asset), ...chips(asset));
        if (asset.error) note.textContent = `${asset.error.code}: ${asset.error.message}`;
        li.dataset.status = asset.status;
      },
    };
  }

  async function upload(file) {
    if (!state.indexId) return say("Create or pick an index first.", true);
    const row = uploadRow(file);
    try {
      const body = { index_id: state.indexId, name: file.name };
      if (file.size) body.size_bytes = file.size;
      if (file.type) body.content_type = file.type;
      const { asset, upload: up } = await api("POST", "/v1/assets", body);
      row.li.dataset.assetId = asset.id;
      state.names.set(asset.id, asset.name);
      const onProgress = (n) => row.progress(file.size ? n / file.size : 1);
      if (up.multipart) await putMultipart(asset.id, file, up.multipart, onProgress);
      else await xhrPut(up.method || "PUT", up.url, up.headers, file, onProgress);
      row.progress(1);
      row.note("processing");
      say(`Uploaded ${file.name}; processing.`);
      watch(asset.id, row);
    } catch (e) {
      row.note(`failed: ${e.message}`);
      row.li.dataset.status = "upload_failed";
      fail(e);
    }
  }

  // Poll an asset until it settles; feature states update as they change.
  async function watch(id, row) {
    if (state.watching.has(id)) return;
    state.watching.add(id);
    try {
      for (;;) {
        const asset = await api("GET", `/v1/assets/${id}`);
        if (row) row.render(asset);
        const open = state.asset && state.asset.id === id;
        if (open) renderMeta(asset);
        if (asset.status === "ready" || asset.status === "failed") {
          const why = asset.error ? `: ${asset.error.message} (${asset.error.code})` : ".";
          if (row && !asset.error) row.note(asset.status);
          say(`${asset.name} ${asset.status === "failed" ? "failed" : "is ready"}${why}`, asset.status === "failed");
          if (open) await openAsset(id);
          await loadIndexes(); // asset counts changed
          return;
        }
        await sleep(1500);
      }
    } catch (e) {
      fail(e);
    } finally {
      state.watching.delete(id);
    }
  }

  // ---- asset view ------------------------------------------------------------------------------
  function renderMeta(a) {
    const rows = [
      ["id", a.id], ["media type", a.media_type], ["content type", a.content_type], ["size", bytes(a.size_bytes)],
      ["duration", a.duration_s != null ? `${a.duration_s.toFixed(2)} s` : null],
      ["dimensions", a.width ? `${a.width}×${a.height}` : null], ["sha256", a.sha256],
      ["error", a.error ? `${a.error.code}: ${a.error.message}` : null], ["created", a.created_at],
      ["metadata", a.user_metadata && Object.keys(a.user_metadata).length ? JSON.stringify(a.user_metadata) : null],
    ];
    $("asset-meta").replaceChildren(
      h("dt", {}, "status"), h("dd", {}, statusChip(a), " ", ...chips(a)),
      ...rows.filter(([, v]) => v).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
  }

  const player = () => {
    const m = $("player");
    return m && (m.tagName === "VIDEO" || m.tagName === "AUDIO") ? m : null;
  };

  function seek(t, play = false) {
    const m = player();
    if (!m) return;
    const go = () => {
      m.currentTime = t;
      if (play) m.play().catch(() => {}); // autoplay may be refused; the user can press play
    };
    if (m.readyState >= 1) go();
    else m.addEventListener("loadedmetadata", go, { once: true });
  }

  async function openAsset(id, startAt = null) {
    const a = await api("GET", `/v1/assets/${id}`);
    state.asset = a;
    state.names.set(a.id, a.name);
    $("asset-view").hidden = false;
    $("asset-title").textContent = a.name;
    renderMeta(a);
    const derivs = a.status === "awaiting_upload" ? [] : listOf(await api("GET", `/v1/assets/${id}/derivatives`));
    const of = (kind) => derivs.filter((d) => d.kind === kind);
    // One row per kind: several thumbnails share one.
    $("derivatives").replaceChildren(...[...new Set(derivs.map((d) => d.kind))].map((kind) => {
      const all = of(kind);
      const d = all[0];
      return h("li", { "data-kind": kind },
        all.map((x, i) => [i ? " " : "", h("a", { href: x.url, target: "_blank", rel: "noopener" }, i ? `${i + 1}` : kind)]),
        " ",
        h("span", { class: "muted" }, [all.length > 1 ? `×${all.length}` : "", d.content_type, bytes(d.size_bytes),
          d.width ? `${d.width}×${d.height}` : "", d.duration_s ? `${d.duration_s.toFixed(1)} s` : ""]
          .filter(Boolean).join(" · ")));
    }));
    renderPlayer(a, of("proxy")[0], of("poster")[0]);
    await Promise.all([
      loadStoryboard(of("storyboard"), of("storyboard_vtt")[0]).catch(fail),
      loadTranscript(a).catch(fail),
      loadSegments(a).catch(fail),
    ]);
    if (!["ready", "failed"].includes(a.status)) watch(a.id, null);
    if (startAt !== null) seek(startAt, true);
    $("asset-title").focus();
  }

  function renderPlayer(a, proxy, poster) {
    const wrap = $("player-wrap");
    state.active = null;
    if (!proxy) return wrap.replaceChildren(h("p", { class: "muted" }, "No proxy yet."));
    if (a.media_type === "image") {
      return wrap.replaceChildren(h("img", { id: "player", src: proxy.url, alt: a.name, "data-testid": "player" }));
    }
    const tag = a.media_type === "audio" ? "audio" : "video";
    const m = h(tag, {
      id: "player", controls: true, preload: "metadata", playsinline: true, src: proxy.url,
      poster: poster && tag === "video" ? poster.url : null, "data-testid": "player",
    });
    m.addEventListener("timeupdate", onTime);
    m.addEventListener("durationchange", onTime);
    m.addEventListener("seeked", () => { m.dataset.seeked = String(m.currentTime); onTime(); });
    wrap.replaceChildren(m);
  }

  // ---- timeline and storyboard -----------------------------------------------------------------
  const parseTime = (s) => s.split(":").reduce((acc, p) => acc * 60 + parseFloat(p), 0);

  function parseVtt(text, spriteUrls) {
    const cues = [];
    const files = [];
    for (const block of text.split(/\r?\n\r?\n/)) {
      const lines = block.split(/\r?\n/);
      const i = lines.findIndex((l) => l.includes("-->"));
      if (i < 0 || !lines[i + 1]) continue;
      const [start, end] = lines[i].split("-->").map((s) => parseTime(s.trim().split(/\s+/)[0]));
      const [file, frag] = lines[i + 1].trim().split("#xywh=");
      if (!frag) continue;
      if (!files.includes(file)) files.push(file);
      const [x, y, w, hh] = frag.split(",").map(Number);
      // Sprite names in the VTT are relative; the signed URLs come from /derivatives, in the same order.
      const url = /^https?:/.test(file) ? file : spriteUrls[files.indexOf(file)] || spriteUrls[0];
      cues.push({ start, end, url, x, y, w, h: hh });
    }
    return cues;
  }

  async function loadStoryboard(sprites, vtt) {
    state.cues = [];
    if (!vtt || !sprites.length) return;
    const res = await fetch(vtt.url);
    if (!res.ok) throw new Error(`storyboard VTT answered HTTP ${res.status}`);
    const urls = [...sprites].sort((a, b) => (a.index ?? 0) - (b.index ?? 0)).map((d) => d.url);
    state.cues = parseVtt(await res.text(), urls);
  }

  function onTime() {
    const m = player();
    if (!m) return;
    const d = Number.isFinite(m.duration) ? m.duration : 0;
    const tl = $("timeline");
    tl.setAttribute("aria-valuemax", d.toFixed(1));
    tl.setAttribute("aria-valuenow", m.currentTime.toFixed(1));
    tl.setAttribute("aria-valuetext", `${fmt(m.currentTime)} of ${fmt(d)}`);
    $("timeline-fill").style.width = d ? `${(100 * m.currentTime) / d}%` : "0";
    highlight(m.currentTime);
  }

  function timeAt(e) {
    const r = $("timeline").getBoundingClientRect();
    const m = player();
    const frac = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    return { t: m && Number.isFinite(m.duration) ? frac * m.duration : 0, px: frac * r.width };
  }

  function hover(e) {
    const pv = $("storyboard-preview");
    const { t, px } = timeAt(e);
    const cue = state.cues.find((c) => t >= c.start && t < c.end) || null;
    if (!cue) return void (pv.hidden = true);
    Object.assign(pv.style, {
      width: `${cue.w}px`, height: `${cue.h}px`, backgroundImage: `url("${cue.url}")`,
      backgroundPosition: `-${cue.x}px -${cue.y}px`,
      left: `${Math.max(0, Math.min(px - cue.w / 2, $("timeline").clientWidth - cue.w))}px`,
    });
    pv.dataset.time = t.toFixed(2);
    pv.textContent = fmt(t);
    pv.hidden = false;
  }

  // ---- transcript and segments -----------------------------------------------------------------
  async function loadTranscript(a) {
    const list = $("transcript");
    state.lines = [];
    const f = (a.features || {}).transcription;
    if (!f || f.state !== "completed") {
      return list.replaceChildren(h("li", { class: "muted" }, f ? `transcription: ${f.state}${f.reason ? ` (${f.reason})` : ""}` : "No transcript."));
    }
    const t = await api("GET", `/v1/assets/${a.id}/transcript?format=json`);
    const segs = t.segments || listOf(t);
    list.replaceChildren(...segs.map((s) => {
      const words = (s.words || []).map((w) => ({
        start: w.start, end: w.end,
        el: h("span", { class: "word", "data-start": w.start }, (w.word ?? w.text ?? "").trim(), " "),
      }));
      const btn = h("button", { type: "button", class: "line", "data-start": s.start, "data-end": s.end,
        "aria-label": `${fmt(s.start)} ${s.text}` },
        h("span", { class: "ts" }, fmt(s.start)), " ", words.length ? words.map((w) => w.el) : s.text);
      const el = h("li", { "data-testid": "transcript-line" }, btn);
      state.lines.push({ start: s.start, end: s.end, el, words });
      return el;
    }));
    if (!segs.length) list.append(h("li", { class: "muted" }, "Nothing was said."));
  }

  function highlight(t) {
    const line = state.lines.find((l) => t >= l.start && t < l.end) || null;
    if (line !== state.active) {
      if (state.active) { state.active.el.classList.remove("active"); state.active.el.removeAttribute("aria-current"); }
      if (line) {
        line.el.classList.add("active");
        line.el.setAttribute("aria-current", "true");
        const list = $("transcript");
        const top = line.el.offsetTop - list.offsetTop;
        if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - 30) list.scrollTop = top - 20;
      }
      state.active = line;
    }
    if (line) for (const w of line.words) w.el.classList.toggle("active", t >= w.start && t < w.end);
  }

  async function loadSegments(a) {
    const list = $("segments");
    if (a.status === "awaiting_upload") return list.replaceChildren();
    const segs = listOf(await api("GET", `/v1/assets/${a.id}/segments?limit=100`));
    list.replaceChildren(...segs.map((s) =>
      h("li", { "data-testid": "segment", "data-start": s.start },
        h("button", { type: "button", class: "link", "data-start": s.start },
          s.keyframe_url ? h("img", { src: s.keyframe_url, alt: "", class: "kf", loading: "lazy" }) : null,
          `${fmt(s.start)}–${fmt(s.end)} ${s.kind}`, s.text ? h("span", { class: "muted" }, ` ${s.text}`) : null))));
    if (!segs.length) list.append(h("li", { class: "muted" }, "No segments."));
  }

  // ---- search ----------------------------------------------------------------------------------
  function marked(text, query) {
    const terms = query.split(/\s+/).filter((w) => w.length > 1).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    if (!terms.length) return [text];
    return text.split(new RegExp(`(${terms.join("|")})`, "gi"))
      .map((part, i) => (i % 2 ? h("mark", {}, part) : part));
  }

  async function search(e) {
    e.preventDefault();
    if (!state.indexId) return say("Create or pick an index first.", true);
    const opts = MODALITIES.filter((m) => $(`opt-${m}`).checked);
    if (!opts.length) return say("Pick at least one of transcription or visual.", true);
    const query = $("search-input").value.trim();
    const body = { index_id: state.indexId, query_text: query, search_options: opts, limit: 20 };
    const mt = $("filter-media-type").value;
    if (mt) body.filter = { media_type: mt };
    if ($("group-by-asset").checked) body.group_by = "asset";
    say("Searching…");
    const hits = listOf(await api("POST", "/v1/search", body));
    const unknown = [...new Set(hits.map((x) => x.asset_id))].filter((id) => !state.names.has(id));
    if (unknown.length) {
      const got = await api("POST", "/v1/assets/batch-get", { ids: unknown }).catch(() => ({ data: [] }));
      for (const a of listOf(got)) state.names.set(a.id, a.name);
    }
    $("results").replaceChildren(...hits.map((hit) => hitCard(hit, query)));
    say(`${hits.length} result${hits.length === 1 ? "" : "s"} for “${query}”.`);
  }

  function hitCard(hit, query) {
    const name = state.names.get(hit.asset_id) || hit.asset_id;
    const scores = Object.entries(hit.scores || {}).filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k} ${Number(v).toFixed(3)}`).join(", ");
    const inner = hit.segments || hit.hits || [];
    return h("li", { class: "hit-card" },
      h("button", {
        type: "button", class: "hit", "data-testid": "hit", "data-asset-id": hit.asset_id,
        "data-start": hit.start, "data-end": hit.end, onclick: () => openAsset(hit.asset_id, hit.start).catch(fail),
      },
      hit.thumbnail_url ? h("img", { src: hit.thumbnail_url, alt: "", class: "thumb", loading: "lazy" })
        : h("span", { class: "thumb none", "aria-hidden": "true" }),
      h("span", { class: "hit-body" },
        h("strong", {}, name), " ",
        h("span", { class: "range", "data-testid": "hit-range" }, `${fmt(hit.start)}–${fmt(hit.end)}`),
        h("span", { class: "score", "data-testid": "hit-score" },
          `score ${Number(hit.score).toFixed(3)}${scores ? ` (${scores})` : ""}`),
        hit.text ? h("span", { class: "text" }, marked(hit.text, query)) : null)),
      inner.length ? h("ol", { class: "inner" }, inner.map((s) =>
        h("li", {}, h("button", { type: "button", class: "link", onclick: () => openAsset(hit.asset_id, s.start).catch(fail) },
          `${fmt(s.start)}–${fmt(s.end)}`, s.text ? ` ${s.text}` : "")))) : null);
  }

  // ---- wiring ----------------------------------------------------------------------------------
  function start() {
    $("api-key").value = state.key;
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.key = $("api-key").value.trim();
      sessionStorage.setItem(KEY, state.key);
      say("Key saved for this tab.");
      loadIndexes().catch(fail);
    });
    $("forget-key").addEventListener("click", () => {
      state.key = "";
      sessionStorage.removeItem(KEY);
      $("api-key").value = "";
      say("Key forgotten.");
    });
    $("index-select").addEventListener("change", (e) => setIndex(e.target.value).catch(fail));
    $("index-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const ix = await api("POST", "/v1/indexes", { name: $("new-index-name").value.trim() });
        state.indexId = ix.id;
        $("new-index-name").value = "";
        say(`Index ${ix.name} created.`);
        await loadIndexes();
      } catch (err) { fail(err); }
    });
    $("refresh-assets").addEventListener("click", () => loadAssets().catch(fail));
    $("file-input").addEventListener("change", (e) => {
      for (const f of e.target.files) upload(f);
      e.target.value = "";
    });
    const dz = $("dropzone");
    dz.addEventListener("dragover", (e) => { e.preventDefault(); dz.classList.add("over"); });
    dz.addEventListener("dragleave", () => dz.classList.remove("over"));
    dz.addEventListener("drop", (e) => {
      e.preventDefault();
      dz.classList.remove("over");
      for (const f of e.dataTransfer.files) upload(f);
    });
    // A drop that misses the zone must not navigate away from the page.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
    $("search-form").addEventListener("submit", (e) => search(e).catch(fail));
    const tl = $("timeline");
    tl.addEventListener("mousemove", hover);
    tl.addEventListener("mouseleave", () => { $("storyboard-preview").hidden = true; });
    // The tile belongs to a pointer position on the old layout: drop it when the layout changes.
    window.addEventListener("resize", () => { $("storyboard-preview").hidden = true; });
    tl.addEventListener("click", (e) => seek(timeAt(e).t));
    tl.addEventListener("keydown", (e) => {
      const m = player();
      if (!m) return;
      const step = { ArrowLeft: -5, ArrowRight: 5, ArrowDown: -5, ArrowUp: 5 }[e.key];
      if (step) seek(Math.max(0, m.currentTime + step));
      else if (e.key === "Home") seek(0);
      else if (e.key === "End" && Number.isFinite(m.duration)) seek(m.duration);
      else return;
      e.preventDefault();
    });
    for (const id of ["transcript", "segments"]) {
      $(id).addEventListener("click", (e) => {
        const el = e.target.closest("[data-start]");
        if (el) seek(Number(el.dataset.start), true);
      });
    }
    if (state.key) loadIndexes().catch(fail);
    else say("Enter an API key to begin.");
  }

  start();
})();
