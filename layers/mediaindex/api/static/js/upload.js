// Uploads straight to storage with the signed URLs the API hands out (single PUT or multipart).
import { api, ApiError } from "./api.js";
import { bytes, h, $ } from "./dom.js";
import { details, plain } from "./messages.js";

const FORBIDDEN = new Set(["content-length", "host", "connection"]);

function xhrPut(method, url, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers || {})) if (!FORBIDDEN.has(k.toLowerCase())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
      let code = "upload_refused";
      try { code = JSON.parse(xhr.responseText).error.code || code; } catch { /* storage answered XML or nothing */ }
      reject(new ApiError(xhr.status, code, `Storage answered HTTP ${xhr.status}`));
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "The upload connection failed (network or CORS)"));
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
      const url = await signedUrl(n);
      const blob = file.slice((n - 1) * mp.part_size, n * mp.part_size);
      const xhr = await xhrPut("PUT", url, {}, blob, (b) => { loaded.set(n, b); report(); });
      const etag = xhr.getResponseHeader("ETag");
      if (!etag) throw new ApiError(0, "upload_parts_invalid", "Storage hid the ETag header of a part (CORS ExposeHeaders)");
      done.push({ part_number: n, etag });
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

function row(file) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": `Upload progress of ${file.name}` });
  const note = h("span", { class: "muted" }, "Uploading…");
  const li = h("li", { class: "upload", "data-testid": "upload-item", "data-name": file.name },
    h("span", { class: "upload-name" }, file.name), h("span", { class: "muted" }, bytes(file.size)), bar, note);
  $("uploads").prepend(li);
  return { li, bar, note };
}

// Sends one file into the index; resolves with the asset once storage has it, or null on failure
// (the row then says why, with a button to dismiss it). on.created(asset) runs as soon as the asset
// exists, on.failed(assetId) when its upload did not finish.
export async function upload(file, indexId, on) {
  const r = row(file);
  let created = null;
  try {
    const body = { index_id: indexId, name: file.name };
    if (file.size) body.size_bytes = file.size;
    if (file.type) body.content_type = file.type;
    const { asset, upload: up } = await api("POST", "/v1/assets", body);
    r.li.dataset.assetId = asset.id;
    created = asset;
    on.created(asset);
    const onProgress = (n) => { r.bar.value = Math.min(1, file.size ? n / file.size : 1); };
    if (up.multipart) await putMultipart(asset.id, file, up.multipart, onProgress);
    else {
      await xhrPut(up.method || "PUT", up.url, up.headers, file, onProgress).catch(async (e) => {
        // Nothing landed: remove the empty asset rather than leave it waiting for ever.
        await api("DELETE", `/v1/assets/${asset.id}`).catch(() => {});
        throw e;
      });
    }
    r.bar.value = 1;
    r.li.dataset.status = "uploaded";
    r.li.remove(); // the library card takes over from here
    return asset;
  } catch (e) {
    if (created) on.failed(created.id);
    r.li.dataset.status = "upload_failed";
    r.li.classList.add("bad");
    r.note.replaceWith(h("span", { class: "bad-text", "data-testid": "upload-error" }, `Upload failed: ${plain(e)}`),
      h("details", { class: "raw" }, h("summary", {}, "Details"), h("pre", {}, details(e))));
    r.li.append(h("button", { type: "button", class: "secondary small", onclick: () => r.li.remove() }, "Dismiss"));
    return null;
  }
}
