// The notice under the header (information or an error with collapsed details) and the confirm dialog.
import { $ } from "./dom.js";
import { details, plain } from "./messages.js";

let timer = null;

export function notify(text, { error = false, raw = "", sticky = false } = {}) {
  const box = $("notice");
  clearTimeout(timer);
  $("notice-text").textContent = text;
  box.classList.toggle("error", error);
  box.setAttribute("role", error ? "alert" : "status");
  box.dataset.kind = error ? "error" : "info";
  $("notice-raw").textContent = raw;
  $("notice-details").hidden = !raw;
  $("notice-details").open = false;
  box.hidden = false;
  if (!error && !sticky) timer = setTimeout(() => { box.hidden = true; }, 6000);
}

// Any thrown error: an ApiError gets its plain sentence, anything else a generic one; the raw words
// stay under "Details".
export function fail(err, context = "") {
  const sentence = plain(err);
  notify(context ? `${context}: ${sentence}` : sentence, { error: true, raw: details(err) || String(err) });
  if (!err || !err.code) console.error(err); // a bug in the page, not an API answer
}

export function hideNotice() {
  clearTimeout(timer);
  $("notice").hidden = true;
}

// A modal yes/no: resolves true when the user confirms.
export function confirmAction(text, okLabel = "Delete") {
  const dlg = $("confirm");
  $("confirm-text").textContent = text;
  dlg.querySelector('[value="ok"]').textContent = okLabel;
  dlg.returnValue = "";
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
  });
}
