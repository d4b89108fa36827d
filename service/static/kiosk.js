/*
 * hcp hall tablet page (/kiosk). Plain JavaScript, no framework.
 *
 * Every tapped rating gets its client_id (the intake API's idempotency key) and rated_at
 * at the moment of the tap, and is written to a queue in localStorage *before* it is
 * sent. The queue is sent in order with the device key; an item leaves the queue only
 * when the server answers 201 (stored) or 200 (a replay of one already stored), so a
 * rating made while the server is unreachable (network error, 5xx, 429) is retried later
 * with the same client_id and the same body, and is stored exactly once.
 */
(function () {
  "use strict";

  var root = document.getElementById("kiosk");
  var API = root.dataset.api;
  var PAIR_API = root.dataset.pair;
  var RESET_MS = (parseInt(root.dataset.resetSeconds, 10) || 5) * 1000;
  var DETAILS_IDLE_MS = 60000;   // an abandoned details screen still sends the tapped rating
  var MIN_RETRY_MS = 2000;
  var MAX_RETRY_MS = 30000;
  var REQUEST_TIMEOUT_MS = 10000;
  var KEY_STORE = "hcp.kiosk.key";
  var QUEUE_STORE = "hcp.kiosk.queue";
  var REJECTED_STORE = "hcp.kiosk.rejected";  // refused for good (409/422): kept for staff to look at

  var screens = ["setup", "faces", "details", "thanks"];
  var current = null;        // the rating being made: {client_id, level, rated_at}
  var screenTimer = null;
  var countdownTimer = null;
  var retryTimer = null;
  var flushing = false;
  var failures = 0;

  // ------------------------------------------------------------ storage

  function load(name) {
    try { return JSON.parse(localStorage.getItem(name) || "[]"); } catch (e) { return []; }
  }
  function save(name, list) { localStorage.setItem(name, JSON.stringify(list)); }
  function deviceKey() { return localStorage.getItem(KEY_STORE) || ""; }

  function enqueue(body) {
    var queue = load(QUEUE_STORE);
    queue.push({body: body, queued_at: new Date().toISOString()});
    save(QUEUE_STORE, queue);
    showPending();
  }

  function removeFromQueue(clientId) {
    save(QUEUE_STORE, load(QUEUE_STORE).filter(function (item) { return item.body.client_id !== clientId; }));
    showPending();
  }

  // ------------------------------------------------------------ ids and times

  function uuid4() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    // crypto.randomUUID needs a secure context; a tablet on plain http has getRandomValues only.
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // ISO 8601 with the tablet's own offset, e.g. 2024-05-06T09:30:12+08:00.
  function isoNow() {
    var d = new Date();
    var off = -d.getTimezoneOffset();
    var sign = off >= 0 ? "+" : "-";
    off = Math.abs(off);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      sign + pad(Math.floor(off / 60)) + ":" + pad(off % 60);
  }

  // ------------------------------------------------------------ sending

  function retryLater(retryAfter) {
    flushing = false;
    failures += 1;
    var delay = Math.min(MAX_RETRY_MS, MIN_RETRY_MS * Math.pow(2, failures - 1));
    var seconds = parseInt(retryAfter, 10);
    if (seconds > 0) { delay = Math.max(delay, seconds * 1000); }
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, delay);
  }

  function post(body) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
    return fetch(API, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + deviceKey()},
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal: controller ? controller.signal : undefined
    }).finally(function () { clearTimeout(timer); });
  }

  // Send the queue, oldest first, one at a time; stop at the first transient failure.
  function flush() {
    clearTimeout(retryTimer);
    if (flushing || !deviceKey()) { return; }
    var queue = load(QUEUE_STORE);
    if (!queue.length) { failures = 0; return; }
    flushing = true;
    var item = queue[0];
    post(item.body).then(function (resp) {
      if (resp.status === 200 || resp.status === 201) {
        removeFromQueue(item.body.client_id);
        keyProblem(false);
        failures = 0;
        flushing = false;
        flush();
      } else if (resp.status === 401) {
        keyProblem(true);  // keep the ratings: the key can be fixed on the setup screen
        retryLater(null);
      } else if (resp.status === 429 || resp.status >= 500) {
        retryLater(resp.headers.get("Retry-After"));
      } else if (resp.status === 422 && item.body.reasons) {
        // A reason code the server no longer takes (the table was replaced since the page
        // loaded): keep the rating, the codes go along as free tags.
        var queue = load(QUEUE_STORE);
        queue[0].body.tags = (item.body.tags || []).concat(item.body.reasons);
        delete queue[0].body.reasons;
        save(QUEUE_STORE, queue);
        flushing = false;
        flush();
      } else {
        // 409 or 422: the server will never take this body; set it aside and go on.
        var rejected = load(REJECTED_STORE).slice(-99);
        rejected.push({body: item.body, status: resp.status});
        save(REJECTED_STORE, rejected);
        removeFromQueue(item.body.client_id);
        flushing = false;
        flush();
      }
    }, function () {
      retryLater(null);  // unreachable: network error, server stopped, request timed out
    });
  }

  function showPending() {
    var n = load(QUEUE_STORE).length;
    root.dataset.pending = String(n);
    var el = document.getElementById("pending");
    el.hidden = n === 0;
    el.textContent = "待上传 " + n + " 条";
  }

  function keyProblem(on) { document.getElementById("key-problem").hidden = !on; }

  // ------------------------------------------------------------ screens

  function show(name) {
    screens.forEach(function (s) { document.getElementById("screen-" + s).hidden = s !== name; });
    root.dataset.screen = name;
    clearTimeout(screenTimer);
    clearInterval(countdownTimer);
  }

  function start() {
    current = null;
    show(deviceKey() ? "faces" : "setup");
  }

  function submit(extra) {
    if (!current) { return; }
    var body = {client_id: current.client_id, level: current.level, rated_at: current.rated_at};
    if (extra && extra.reasons && extra.reasons.length) { body.reasons = extra.reasons; }
    if (extra && extra.comment) { body.comment = extra.comment; }
    current = null;
    enqueue(body);
    flush();
    thanks();
  }

  function thanks() {
    show("thanks");
    var left = Math.round(RESET_MS / 1000);
    var counter = document.getElementById("thanks-countdown");
    counter.textContent = left;
    countdownTimer = setInterval(function () { left -= 1; counter.textContent = Math.max(0, left); }, 1000);
    screenTimer = setTimeout(start, RESET_MS);
  }

  function details() {
    // Only the reasons offered for the tapped level (data-levels holds their digits).
    document.querySelectorAll(".tag").forEach(function (t) {
      t.setAttribute("aria-pressed", "false");
      t.hidden = (t.dataset.levels || "").indexOf(String(current.level)) === -1;
    });
    document.getElementById("comment").value = "";
    show("details");
    screenTimer = setTimeout(function () { submit(collectDetails()); }, DETAILS_IDLE_MS);
  }

  function collectDetails() {
    var codes = [];
    document.querySelectorAll('.tag[aria-pressed="true"]').forEach(function (t) {
      if (!t.hidden) { codes.push(t.dataset.reason); }
    });
    return {reasons: codes, comment: document.getElementById("comment").value.trim().slice(0, 500)};
  }

  // ------------------------------------------------------------ wiring

  document.querySelectorAll(".face").forEach(function (button) {
    button.addEventListener("click", function () {
      // The rating is made at the tap: its id and time do not change however long details take.
      current = {client_id: uuid4(), level: parseInt(button.dataset.level, 10), rated_at: isoNow()};
      if (current.level <= 2) { details(); } else { submit(null); }
    });
  });

  document.querySelectorAll(".tag").forEach(function (tag) {
    tag.addEventListener("click", function () {
      tag.setAttribute("aria-pressed", tag.getAttribute("aria-pressed") === "true" ? "false" : "true");
    });
  });

  document.getElementById("details-submit").addEventListener("click", function () { submit(collectDetails()); });
  document.getElementById("details-skip").addEventListener("click", function () { submit(null); });
  document.getElementById("comment").addEventListener("input", function () {
    clearTimeout(screenTimer);  // someone is typing: restart the idle timer
    screenTimer = setTimeout(function () { submit(collectDetails()); }, DETAILS_IDLE_MS);
  });
  document.getElementById("screen-thanks").addEventListener("click", start);

  function useKey(key) {
    localStorage.setItem(KEY_STORE, key);
    document.getElementById("setup-key").value = "";
    keyProblem(false);
    start();
    flush();
  }

  // A pairing code from the admin console: the server answers with this tablet's key.
  function pair(code) {
    var state = document.getElementById("setup-state");
    state.textContent = "正在配对…";
    fetch(PAIR_API, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({code: code}),
      cache: "no-store",
      credentials: "omit"
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (resp.status === 200 && body.key) {
          state.textContent = "";
          useKey(body.key);
        } else {
          show("setup");
          state.textContent = body.message || "配对失败，请稍后重试";
        }
      });
    }, function () {
      show("setup");
      state.textContent = "无法连接服务器，请检查网络后重试";
    });
  }

  document.getElementById("setup-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var value = document.getElementById("setup-key").value.trim();
    if (!value) { return; }
    if (value.indexOf("hcpd_") === 0) { useKey(value); } else { pair(value); }
  });

  function readHash() {
    // /kiosk#key=hcpd_… stores the key once and drops it from the address bar.
    var hash = location.hash.replace(/^#/, "");
    var params = new URLSearchParams(hash);
    if (params.get("pair")) {
      history.replaceState(null, "", location.pathname);
      show("setup");
      pair(params.get("pair"));
      return "pairing";
    }
    if (params.get("key")) {
      localStorage.setItem(KEY_STORE, params.get("key"));
      history.replaceState(null, "", location.pathname);
      return "start";
    }
    if (hash === "setup") {
      history.replaceState(null, "", location.pathname);
      document.getElementById("setup-state").textContent =
        deviceKey() ? "本设备已设置密钥；保存新密钥将替换它。" : "本设备尚未设置密钥。";
      return "setup";
    }
    return "start";
  }

  window.addEventListener("online", flush);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { flush(); } });

  showPending();
  var opened = readHash();
  if (opened === "setup") { show("setup"); } else if (opened === "start") { start(); }
  flush();
}());
