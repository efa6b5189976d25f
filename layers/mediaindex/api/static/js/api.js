// The one way the page talks to the server: the public /v1 API with the key from this browser.
import { sleep } from "./dom.js";

const KEY = "mediaindex.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, requestId = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

// localStorage, so that every tab of this browser shares the key until Forget clears it.
export const keyStore = {
  get: () => localStorage.getItem(KEY) || "",
  set: (k) => localStorage.setItem(KEY, k),
  clear: () => localStorage.removeItem(KEY),
  // Another tab saved or forgot the key.
  onChange: (fn) => window.addEventListener("storage", (e) => { if (e.key === KEY) fn(e.newValue || ""); }),
};

export async function api(method, path, body) {
  const key = keyStore.get();
  if (!key) throw new ApiError(0, "api_key_missing", "No API key");
  const init = { method, headers: { Authorization: `Bearer ${key}` } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "network_error", String(e.message || e));
    }
    if (res.status === 429 && attempt < 3) {
      await sleep(1000 * Math.min(10, Number(res.headers.get("Retry-After")) || 1));
      continue;
    }
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const e = (data && data.error) || {};
      throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText, e.request_id);
    }
    return data;
  }
}
