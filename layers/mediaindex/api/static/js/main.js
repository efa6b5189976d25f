// mediaindex in the browser: a client of the public HTTP API (/v1) and nothing else.
import { keyStore } from "./api.js";
import { $ } from "./dom.js";
import * as library from "./library.js";
import { forget } from "./media.js";
import { sentenceFor } from "./messages.js";
import { fail, hideNotice, notify } from "./notify.js";
import * as player from "./player.js";
import * as reindex from "./reindex.js";
import * as search from "./search.js";
import { state } from "./state.js";
import { upload } from "./upload.js";
import * as webhooks from "./webhooks.js";

const openAsset = (id, t) => player.open(id, t).catch((e) => fail(e, "Opening the file"));

// With a key: the workspace; without one, or with one the server refuses: the welcome note.
async function start() {
  const key = keyStore.get();
  showKey(key, Boolean(key));
  welcome(key ? null : "");
  player.close();
  search.clear();
  reindex.show(""); // stops following the last key's index
  webhooks.reset();
  forget();
  delete $("library").dataset.loaded;
  if (!key) return;
  try {
    await library.loadIndexes();
    reindex.offer(await search.loadCapabilities());
    await webhooks.load();
  } catch (e) {
    if (e.code === "unauthorized") {
      welcome(sentenceFor("unauthorized"));
      showKey(key, false);
    } else fail(e);
  }
}

// The key form, or (with a key in use) a one-line note that it is saved, with Change and Forget.
function showKey(key, saved) {
  $("api-key").value = key;
  $("forget-key").disabled = !key;
  $("key-saved").hidden = !saved;
  $("key-form").hidden = saved;
}

// problem: null hides the note (the workspace shows), "" is a plain welcome, text says what is wrong.
function welcome(problem) {
  $("welcome").hidden = problem === null;
  $("workspace").hidden = problem !== null;
  $("welcome-problem").textContent = problem || "";
  $("welcome-problem").hidden = !problem;
  $("welcome-title").textContent = problem ? "That key did not work" : "Welcome";
}

function forgetKey() {
  keyStore.clear();
  notify("Key forgotten: this browser no longer keeps it.");
  start();
}

function sendFiles(files) {
  if (!state.indexId) return fail({ code: "index_not_found" }, "Upload");
  const on = { created: (asset) => library.added(asset).catch(fail), failed: library.unwatch };
  for (const f of files) upload(f, state.indexId, on).then((asset) => asset && library.uploaded(asset));
}

function wire() {
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    keyStore.set($("api-key").value.trim());
    notify("Key saved in this browser.");
    start();
  });
  $("forget-key").addEventListener("click", forgetKey);
  $("forget-saved").addEventListener("click", forgetKey);
  $("change-key").addEventListener("click", () => {
    showKey("", false);
    $("forget-key").disabled = false;
    $("api-key").focus();
  });
  keyStore.onChange(() => start()); // another tab saved or forgot the key
  $("notice-close").addEventListener("click", hideNotice);
  $("index-select").addEventListener("change", (e) => {
    player.close();
    search.clear();
    library.setIndex(e.target.value).catch(fail);
  });
  $("new-index-toggle").addEventListener("click", () => library.showIndexForm($("index-form").hidden));
  $("index-form").addEventListener("submit", (e) => {
    e.preventDefault();
    library.createIndex($("new-index-name").value.trim())
      .then(() => { $("new-index-name").value = ""; })
      .catch((err) => fail(err, "New index"));
  });
  $("file-input").addEventListener("change", (e) => {
    sendFiles([...e.target.files]);
    e.target.value = "";
  });
  const dz = $("dropzone");
  dz.addEventListener("dragover", (e) => { e.preventDefault(); dz.classList.add("over"); });
  dz.addEventListener("dragleave", () => dz.classList.remove("over"));
  dz.addEventListener("drop", (e) => {
    e.preventDefault();
    dz.classList.remove("over");
    sendFiles([...e.dataTransfer.files]);
  });
  // A drop that misses the zone must not navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  library.init({ open: openAsset, removed: (id) => { search.dropAsset(id); if (state.openId === id) player.close(); },
    renamed: player.renamed, indexChanged: reindex.show });
  search.init({ open: openAsset, changed: player.refresh });
  search.wire();
  player.wire();
  reindex.wire();
  webhooks.wire();
}

wire();
start();
