// What the page knows right now, shared by its parts.
const INDEX = "mediaindex.indexId";

export const state = {
  indexId: localStorage.getItem(INDEX) || "",
  assets: new Map(), // asset id -> asset, of the current index (and any a search brought in)
  hits: [], // the current search's results
  words: [], // the current query's words, for marking
  openId: null, // the asset in the player
};

export function setIndexId(id) {
  state.indexId = id;
  if (id) localStorage.setItem(INDEX, id);
  else localStorage.removeItem(INDEX);
}
