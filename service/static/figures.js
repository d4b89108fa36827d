/* Shared by the figures pages (统计分析 dashboard.js, 热点分析 insights.js): the pickers' query
   for the API, the drill-down address to the case list, and the JSON fetch that carries the
   page's CSRF token (the API takes the web session only with it).
   hcpFigures(form, keys): ``keys`` are the pickers besides from/to (department, channel …). */
window.hcpFigures = function (form, keys) {
  "use strict";
  var CSRF = (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  var HEADERS = { Accept: "application/json", "X-CSRFToken": CSRF };

  // The pickers as the API's query, with ``extra`` (an object) over them.
  function params(extra) {
    var data = new FormData(form), q = new URLSearchParams();
    ["from", "to"].concat(keys).forEach(function (k) { if (data.get(k)) { q.set(k, data.get(k)); } });
    Object.keys(extra || {}).forEach(function (k) { q.set(k, extra[k]); });
    return q.toString();
  }
  // The case list for the pickers' period and filters, narrowed by ``extra`` (an object, or
  // a query string such as "status=open&warning=red").
  function drill(extra) {
    var data = new FormData(form), q = new URLSearchParams({ scope: "dept", status: "all" });
    if (data.get("from")) { q.set("rated_from", data.get("from")); }
    if (data.get("to")) { q.set("rated_to", data.get("to")); }
    keys.forEach(function (k) { if (data.get(k)) { q.set(k, data.get(k)); } });
    new URLSearchParams(extra || "").forEach(function (v, k) { q.set(k, v); });
    return "/cases?" + q.toString();
  }
  // GET ``path`` with the pickers' query (``query`` given: that query instead), as JSON; a
  // refusal rejects with the API's message.
  function get(path, extra, query) {
    return fetch(path + "?" + (query === undefined ? params(extra) : query),
                 { credentials: "same-origin", headers: HEADERS })
      .then(function (r) {
        if (!r.ok) { return r.json().then(function (b) { throw new Error(b.message || r.status); }); }
        return r.json();
      });
  }
  return { params: params, drill: drill, get: get };
};
