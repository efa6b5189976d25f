// Plain sentences for the error codes the API documents (docs/api.md), and for feature states.
// The server's own message (which may quote ffmpeg) is never the headline: it goes under "Details".

const SENTENCES = {
  // keys, limits, the service
  api_key_missing: "Paste your API key above to start.",
  unauthorized: "This API key was not accepted. Check it, or make a new one on the server (mediaindex keys create).",
  rate_limited: "Too many requests in a short time. Wait a few seconds and try again.",
  network_error: "The server could not be reached. Check that it is running.",
  internal_error: "Something went wrong on the server. Try again; if it keeps happening, check the server log.",
  service_unavailable: "A service the server needs is not available right now. Try again shortly.",
  service_busy: "The server is busy. Try again in a moment.",
  write_contention: "Many changes are arriving at once. Try again in a moment.",
  scope_insufficient: "This API key is not allowed to do that. Use a key with a wider scope.",
  quota_exceeded: "Your quota is used up for now. Ask an administrator to raise it, or try again later.",
  concurrency_limited: "Too many files are processing at once for your account. Try again shortly.",
  key_is_caller: "A key cannot revoke itself. Use another admin key.",
  encoder_unavailable: "Search is warming up and could not answer. Try again in a moment.",
  request_timeout: "The request took too long to arrive. Check your connection and try again.",
  payload_too_large: "That request is too large.",
  route_not_found: "The server does not offer this action (it may be an older version).",
  method_not_allowed: "The server does not offer this action (it may be an older version).",
  // requests
  parameter_invalid: "Some of what was sent is not valid.",
  parameter_missing: "Something required is missing.",
  parameter_unknown: "The server did not understand part of the request (it may be an older version).",
  invalid_json: "The request could not be read.",
  cursor_invalid: "That page of results has expired. Search again.",
  idempotency_key_reused: "This request clashes with an earlier one. Reload the page and try again.",
  idempotency_request_in_progress: "The same request is still running. Try again in a moment.",
  // indexes
  index_not_found: "This index no longer exists. Pick another one or create a new one.",
  index_name_invalid: "Index names cannot be blank or hold control characters.",
  index_name_already_exists: "An index with that name already exists.",
  // re-indexing
  model_not_available: "That Whisper model is not offered by this server. Pick one from the list.",
  reindex_running: "This index is already being re-indexed. Wait for it to finish or cancel it.",
  reindex_not_running: "No re-index of this index is running any more.",
  reindex_swapped: "The re-index has already switched search to the new generation, so it can only finish now.",
  reindex_failed: "A file could not be rebuilt, so the new generation was dropped.",
  reindex_cancelled: "What it had rebuilt so far was dropped.",
  // webhooks
  webhooks_unavailable: "Webhooks are not set up on this server, so no events can be sent from it.",
  webhook_url_forbidden: "That webhook address points at a private or local network and cannot be used.",
  webhook_url_invalid: "That webhook address is not a valid web address.",
  webhook_url_unreachable: "That webhook address could not be looked up. Check its host name.",
  webhook_events_invalid: "Pick at least one of the listed events.",
  webhook_limit_reached: "This account has as many webhooks as it may have. Delete one to add another.",
  webhook_not_found: "This webhook no longer exists. It may have been deleted.",
  webhook_disabled: "This webhook is turned off after failing. Turn it back on first.",
  delivery_not_found: "That delivery no longer exists.",
  // assets and uploads
  asset_not_found: "This file no longer exists. It may have been deleted.",
  asset_name_invalid: "That name cannot be used: it holds control or direction-changing characters.",
  asset_name_extension_required: "File names need an extension such as .mp4, .mp3 or .jpg.",
  asset_file_too_large: "This file is larger than the server accepts.",
  asset_file_empty: "This file is empty.",
  asset_url_forbidden: "That address cannot be fetched: it points at a private or local network.",
  asset_url_invalid: "That address is not a valid web address.",
  asset_url_unreachable: "The file could not be fetched from its address.",
  asset_source_conflict: "Give either a file or an address, not both.",
  asset_source_required: "Give a file or an address.",
  asset_not_uploaded: "This file has not finished uploading yet.",
  asset_failed: "This file could not be processed, so it cannot be processed again.",
  content_type_invalid: "This kind of file is not accepted.",
  content_type_unsupported: "This kind of file is not accepted.",
  user_metadata_too_large: "The file's metadata is too large.",
  unsupported_media: "This file is not a video, audio file or image that can be read.",
  media_corrupt: "This file is damaged or incomplete, so it could not be read.",
  media_too_large: "This file is too long or too large to process.",
  upload_refused: "Storage did not accept the upload. Try again; if it keeps happening, check the server log.",
  upload_aborted: "The upload was stopped before it finished.",
  upload_expired: "The upload was not finished in time. Upload the file again.",
  upload_already_completed: "This upload has already finished.",
  upload_not_accepted: "The upload was refused because the file was deleted meanwhile.",
  upload_not_multipart: "This upload cannot be resumed in parts.",
  upload_parts_invalid: "Parts of the upload were lost. Upload the file again.",
  upload_size_mismatch: "The file changed size while uploading. Upload it again.",
  original_not_saved: "The original file was not kept, so it cannot be downloaded.",
  original_not_available: "The original file has not been uploaded yet.",
  transcript_not_found: "There is no transcript for this file.",
  step_failed: "A processing step failed.",
  step_timeout: "Processing took too long and was stopped.",
  // tasks
  feature_busy: "That is already being processed.",
  feature_not_rerunnable: "That cannot be run again.",
  task_not_found: "That job no longer exists.",
  task_not_active: "That job has already finished.",
  // search
  query_required: "Type something to search for.",
  query_conflict: "Search for one thing at a time.",
  query_asset_not_indexed: "That file has nothing searchable yet.",
  search_option_unavailable: "That kind of search is not available on this server.",
  search_filter_too_large: "Too many search filters.",
};

export const sentenceFor = (code) => SENTENCES[code] || null;

// The user-facing sentence for an API error or an asset's {code, message} error.
export function plain(err) {
  const code = err && err.code;
  if (code && SENTENCES[code]) return SENTENCES[code];
  if (err && err.status >= 500) return SENTENCES.internal_error;
  return "Something went wrong. See the details below.";
}

// What the user sees as "details": the code and the server's words, for a bug report.
export function details(err) {
  if (!err) return "";
  const lines = [];
  if (err.code) lines.push(`code: ${err.code}`);
  if (err.status) lines.push(`HTTP status: ${err.status}`);
  if (err.message) lines.push(`message: ${err.message}`);
  if (err.requestId) lines.push(`request id: ${err.requestId}`);
  return lines.join("\n");
}

export const FEATURES = {
  proxy: "Playback",
  preview: "Thumbnails",
  transcription: "Transcript",
  embedding: "Smart search",
};

const STATE_WORDS = {
  queued: "waiting", processing: "working", completed: "done", failed: "failed", cancelled: "cancelled",
  na: "not available",
};

// One feature's state in user words, with why where it did not complete.
export function featureLine(name, f) {
  const label = FEATURES[name] || name;
  const why = f.state === "failed" ? sentenceFor(f.error) || "it failed" : f.reason || null;
  return { label, word: STATE_WORDS[f.state] || f.state, why, state: f.state };
}

// An asset's status summarised in one short line.
export function statusLine(asset) {
  const fs = Object.values(asset.features || {});
  if (asset.status === "awaiting_upload") return "Waiting for upload";
  if (asset.status === "failed") return asset.error ? sentenceFor(asset.error.code) || "Processing failed" : "Processing failed";
  if (asset.status === "processing") {
    const done = fs.filter((f) => !["queued", "processing"].includes(f.state)).length;
    return `Processing (${done} of ${fs.length} steps done)`;
  }
  const missing = fs.filter((f) => f.state === "failed" || f.state === "na").length;
  return missing ? "Ready, with limits" : "Ready";
}
