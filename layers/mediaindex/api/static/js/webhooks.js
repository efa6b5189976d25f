// The tenant's webhooks (docs/webhooks.md): each one's address, events and state (disabled, with
// why), its last few deliveries with Redeliver on those not delivered, Delete, and a form that adds
// one and shows its signing secret this once. Collapsed at first so that search and the library
// come first; while open it is polled every four seconds, because deliveries follow events this
// page does not see (another client's upload, a task, a re-index).
import { api } from "./api.js";
import { $, h, listOf, sleep } from "./dom.js";
import { sentenceFor } from "./messages.js";
import { confirmAction, fail, notify } from "./notify.js";

const POLL_MS = 4000;
const RECENT = 5; // deliveries shown per webhook
const UNDELIVERED = new Set(["failed", "pending"]);
const items = new Map(); // webhook id -> {stamp, el}
let seq = 0; // bumped on every key change, opening and closing: an older view's poll stops

const path = (...ids) => `/v1/webhooks/${ids.map(encodeURIComponent).join("/deliveries/")}`;

// A new key (or none): nothing of the last tenant stays on screen, the secret least of all.
export function reset() {
  seq++;
  items.clear();
  $("webhooks").hidden = true;
  $("webhook-list").replaceChildren();
  hideSecret();
  open(false);
}

// The panel's head (how many, how many disabled) is read at once; the list when it is opened.
export async function load() {
  const mine = ++seq;
  try {
    const hooks = listOf(await api("GET", "/v1/webhooks"));
    if (mine !== seq) return;
    showAvailable(true);
    summarise(hooks);
  } catch (e) {
    if (mine !== seq) return;
    if (e.code === "webhooks_unavailable") return showAvailable(false);
    $("webhooks").hidden = true;
    fail(e, "Webhooks");
  }
}

// 503 webhooks_unavailable: a short note in place of the panel.
function showAvailable(yes) {
  $("webhooks").hidden = false;
  $("webhooks").dataset.available = String(yes);
  $("webhooks-toggle").hidden = !yes;
  $("webhooks-summary").hidden = !yes;
  $("webhooks-unavailable").hidden = yes;
  $("webhooks-unavailable").textContent = yes ? "" : sentenceFor("webhooks_unavailable");
  if (!yes) open(false);
}

function summarise(hooks) {
  const off = hooks.filter((w) => !w.enabled).length;
  const n = hooks.length;
  const count = `${n} webhook${n === 1 ? "" : "s"}${off ? `, ${off} disabled` : ""}`;
  $("webhooks-summary").textContent = n ? count : "None yet";
}

function open(show) {
  $("webhooks-body").hidden = !show;
  $("webhooks-toggle").setAttribute("aria-expanded", String(show));
  $("webhooks-toggle").textContent = show ? "Hide" : "Show";
  if (!show) showForm(false);
}

async function toggle() {
  const show = $("webhooks-body").hidden;
  open(show);
  const mine = ++seq; // closing stops the poll
  if (!show) return;
  try {
    const count = await refresh(mine);
    if (mine !== seq) return;
    if (count === 0) showForm(true); // nothing to list: offer the form at once
    follow(mine);
  } catch (e) {
    if (mine === seq) fail(e, "Webhooks");
  }
}

// The list and each webhook's newest deliveries; returns how many webhooks there are.
async function refresh(mine = seq) {
  const hooks = listOf(await api("GET", "/v1/webhooks"));
  const logs = await Promise.all(hooks.map((w) =>
    api("GET", `${path(w.id)}/deliveries?limit=${RECENT}`).then(listOf).catch((e) => {
      if (e.code === "webhook_not_found") return null; // deleted meanwhile: dropped below
      throw e;
    })));
  if (mine !== seq) return hooks.length;
  summarise(hooks);
  render(hooks.map((w, i) => [w, logs[i]]).filter(([, log]) => log !== null));
  return hooks.length;
}

// One poll per opening: each ends once seq moves on (closed, reopened, another key).
async function follow(mine) {
  try {
    while (mine === seq) {
      await sleep(POLL_MS);
      if (mine === seq && document.visibilityState === "visible") await refresh(mine);
    }
  } catch (e) {
    if (mine === seq) fail(e, "Refreshing the webhooks");
  }
}

// Redraws only the webhooks that changed, so that a poll does not take the keyboard focus away.
function render(pairs) {
  const seen = new Set();
  for (const [w, log] of pairs) {
    seen.add(w.id);
    const stamp = JSON.stringify([w.updated_at, w.enabled, log.map((d) => [d.id, d.updated_at])]);
    const old = items.get(w.id);
    if (old && old.stamp === stamp) continue;
    const el = item(w, log);
    if (old) swap(old.el, el);
    items.set(w.id, { stamp, el });
  }
  for (const [id, it] of items) if (!seen.has(id)) { it.el.remove(); items.delete(id); }
  $("webhook-list").replaceChildren(...pairs.map(([w]) => items.get(w.id).el));
  $("webhooks-empty").hidden = pairs.length > 0;
}

// A redrawn webhook keeps the focus on the same control where it still exists.
function swap(oldEl, newEl) {
  const key = oldEl.contains(document.activeElement) && document.activeElement.dataset.focus;
  oldEl.replaceWith(newEl);
  if (key) newEl.querySelector(`[data-focus="${CSS.escape(key)}"]`)?.focus();
}

function item(w, log) {
  const hid = `whk-${w.id}`;
  return h("li", { class: `hook${w.enabled ? "" : " off"}`, "data-testid": "webhook", "data-webhook-id": w.id,
    "data-enabled": String(w.enabled), "aria-labelledby": hid },
  h("div", { class: "hook-head" },
    h("h3", { id: hid, class: "hook-url", "data-testid": "webhook-url" }, w.url),
    h("span", { class: `pill ${w.enabled ? "p-ok" : "p-bad"}`, "data-testid": "webhook-state" },
      w.enabled ? "Enabled" : "Disabled")),
  h("ul", { class: "chips", "aria-label": "Events" }, w.events.map((e) => h("li", { class: "chip" }, e))),
  w.description ? h("p", { class: "muted small" }, w.description) : null,
  w.enabled ? (w.failing_since ? h("p", { class: "small warn-text" },
    `Failing since ${when(w.failing_since)}; it is retried, and disabled if it keeps failing.`) : null)
    : h("div", { class: "hook-off" },
      h("p", { class: "small bad-text", "data-testid": "webhook-disabled" },
        "Deliveries stopped because they kept failing. Turn it back on to send or redeliver."),
      h("button", { type: "button", class: "small", "data-testid": "webhook-enable", "data-focus": "enable",
        onclick: () => enable(w) }, "Turn back on"),
      // The server's own words (with its timestamps) are for a bug report, not the headline.
      w.disabled_reason ? h("details", { class: "raw" }, h("summary", {}, "Details"),
        h("pre", { "data-testid": "webhook-disabled-reason" }, w.disabled_reason)) : null),
  deliveries(w, log),
  h("div", { class: "hook-actions" },
    h("button", { type: "button", class: "secondary small danger-text", "data-testid": "webhook-delete",
      "data-focus": "delete", onclick: () => remove(w) }, "Delete webhook")));
}

function deliveries(w, log) {
  if (!log.length) return h("p", { class: "muted small", "data-testid": "no-deliveries" }, "No deliveries yet.");
  return h("ol", { class: "deliveries", "aria-label": `Last deliveries to ${w.url}`, "data-testid": "deliveries" },
    log.map((d) => h("li", { class: `delivery d-${d.state}`, "data-testid": "delivery", "data-state": d.state,
      "data-delivery-id": d.id },
    h("span", { class: "d-event" }, d.event),
    h("span", { class: "d-state", "data-testid": "delivery-state" }, d.state),
    h("span", { class: "d-facts muted", "data-testid": "delivery-facts" },
      [`${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`, d.status_code ? `HTTP ${d.status_code}` : null]
        .filter(Boolean).join(" · "), " · ", h("time", { datetime: d.created_at }, when(d.created_at))),
    w.enabled && UNDELIVERED.has(d.state)
      ? h("button", { type: "button", class: "secondary small", "data-testid": "redeliver",
        "data-focus": `redeliver-${d.id}`, "aria-label": `Redeliver ${d.event} of ${when(d.created_at)}`,
        onclick: (e) => redeliver(w, d, e.currentTarget) }, "Redeliver") : null,
    d.state === "pending" && d.next_attempt_at
      ? h("span", { class: "d-why muted" }, `Next try at ${when(d.next_attempt_at)}.`) : null,
    // A status code already says why; a network error (refused, timed out) is said here.
    d.state !== "succeeded" && d.last_error && !d.status_code
      ? h("span", { class: "d-why bad-text", "data-testid": "delivery-error" }, `Last attempt: ${d.last_error}`)
      : null)));
}

// Today's times alone; older ones with their date.
function when(iso) {
  const t = new Date(iso);
  const today = t.toDateString() === new Date().toDateString();
  return today ? t.toLocaleTimeString() : t.toLocaleString();
}

async function redeliver(w, d, button) {
  button.disabled = true;
  try {
    await api("POST", `${path(w.id, d.id)}/redeliver`);
    notify(`${d.event} is being sent to ${w.url} again.`);
    await refresh();
  } catch (e) {
    button.disabled = false;
    fail(e, "Redeliver");
    if (e.code === "webhook_disabled" || e.code === "delivery_not_found") refresh().catch(fail);
  }
}

async function enable(w) {
  try {
    await api("POST", `${path(w.id)}/enable`);
    notify(`Deliveries to ${w.url} are on again.`);
    await refresh();
  } catch (e) {
    fail(e, "Turning the webhook back on");
    if (e.code === "webhook_not_found") refresh().catch(fail);
  }
}

async function remove(w) {
  const question = `Delete the webhook to ${w.url}? Nothing more is sent there and its delivery log is removed.`;
  if (!(await confirmAction(question))) return;
  try {
    await api("DELETE", path(w.id));
  } catch (e) {
    if (e.code !== "webhook_not_found") return fail(e, "Delete webhook");
  }
  notify(`Webhook to ${w.url} deleted.`);
  await refresh().catch(fail);
  $("webhooks-h").focus(); // its Delete button is gone: keep the keyboard in the panel
}

export function showForm(show) {
  $("webhook-form").hidden = !show;
  $("webhook-add-toggle").hidden = show;
  $("webhook-add-toggle").setAttribute("aria-expanded", String(show));
  if (show) $("webhook-url").focus();
}

function chosenEvents() {
  const boxes = [...$("webhook-form").querySelectorAll('input[name="event"]')];
  boxes[0].setCustomValidity("");
  const events = boxes.filter((b) => b.checked).map((b) => b.value);
  if (!events.length) {
    boxes[0].setCustomValidity("Pick at least one event.");
    boxes[0].reportValidity();
  }
  return events;
}

async function create() {
  const events = chosenEvents();
  if (!events.length) return;
  const url = $("webhook-url").value.trim();
  const button = $("webhook-add");
  button.disabled = true;
  try {
    const w = await api("POST", "/v1/webhooks", { url, events });
    $("webhook-form").reset();
    showForm(false);
    showSecret(w);
    await refresh();
  } catch (e) {
    fail(e, "Add webhook");
    $("webhook-url").focus();
  } finally {
    button.disabled = false;
  }
}

// The signing secret exists on this page only until Done (or a reload): the server never repeats it.
function showSecret(w) {
  $("webhook-secret-url").textContent = w.url;
  $("webhook-secret-value").value = w.secret;
  $("webhook-secret").hidden = false;
  $("webhook-secret-value").focus();
  $("webhook-secret-value").select();
}

function hideSecret() {
  $("webhook-secret-value").value = "";
  $("webhook-secret-url").textContent = "";
  $("webhook-secret").hidden = true;
}

async function copySecret() {
  const field = $("webhook-secret-value");
  try {
    await navigator.clipboard.writeText(field.value);
    notify("Secret copied.");
  } catch {
    // No clipboard access (plain http on another host): leave it selected for Ctrl+C.
    field.focus();
    field.select();
    notify("Press Ctrl+C (⌘C) to copy the selected secret.");
  }
}

export function wire() {
  $("webhooks-toggle").addEventListener("click", toggle);
  $("webhook-add-toggle").addEventListener("click", () => showForm(true));
  $("webhook-cancel").addEventListener("click", () => { showForm(false); $("webhook-add-toggle").focus(); });
  // A tick clears "Pick at least one event." (it sits on the first box).
  $("webhook-form").addEventListener("change", (e) => {
    if (e.target.name === "event") $("webhook-form").querySelector('input[name="event"]').setCustomValidity("");
  });
  $("webhook-form").addEventListener("submit", (e) => {
    e.preventDefault();
    create();
  });
  $("webhook-secret-copy").addEventListener("click", copySecret);
  $("webhook-secret-done").addEventListener("click", () => { hideSecret(); $("webhook-add-toggle").focus(); });
}
