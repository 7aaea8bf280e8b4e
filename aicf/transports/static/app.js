// AICF operator dashboard: JSON-RPC 2.0 at /rpc for state, WebSocket /ws for live events.
// No framework, no build step, no network beyond this origin. Shapes it expects: docs/DASHBOARD.md.
//
// Robustness rules:
// - RPC is the truth; an event updates the view at once and schedules a debounced RPC refresh, so an event
//   shape the page does not understand costs nothing but the instant update.
// - Each section refreshes on its own: one failing method shows its error and leaves the rest live.
// - The socket reconnects with backoff and resumes from the last sequence number seen (from_seq is
//   inclusive); a duplicate is dropped, a gap or a `lagged` notice triggers a full refresh.
// - Data is written with textContent only, never innerHTML.
(function () {
  "use strict";

  var TOPICS = ["jobAssigned", "jobCompleted", "providerSlashed", "epochSettled"];
  var LIVE_STATUSES = ["QUEUED", "LEASED", "SUBMITTED"];
  var EPOCHS_SHOWN = 8;
  var POLL_MS = 5000;
  var EVENT_REFRESH_MS = 250;
  var FEED_MAX = 40; // also how many past events the first subscription replays from the event log
  var BACKOFF_MIN_MS = 500;
  var BACKOFF_MAX_MS = 10000;
  var CHARTS_MS = 10000; // the coordinator samples its metrics every 10 s (aicf/transports/history.py)

  function meta(name, fallback) {
    var m = document.querySelector('meta[name="' + name + '"]');
    return (m && m.getAttribute("content")) || fallback;
  }

  var RPC_URL = new URL(meta("aicf-rpc", "/rpc"), location.href).href;
  var CHARTS_URL = new URL(meta("aicf-charts", "/charts/"), location.href).href;
  var WS_URL = (function () {
    var u = new URL(meta("aicf-ws", "/ws"), location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  })();

  var state = {
    status: null, // aicf.getStatus result
    statusAtMs: 0, // Date.now() when it arrived: the queue age ticks from there
    providers: new Map(), // provider_id -> item
    jobs: new Map(), // task_id -> item
    epochs: new Map(), // epoch -> aicf.getEpoch result (settled epochs never change)
    slashes: [],
    feed: [],
    lastSeq: 0,
    historyUntil: 0, // events up to this seq were replayed from the log on load: shown, not applied
    flash: new Set(), // ids whose rows changed since the last render
  };

  // ---- helpers -----------------------------------------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "cls") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child !== null && child !== undefined) node.appendChild(child);
    }
    return node;
  }

  function isNum(v) {
    return typeof v === "number" && isFinite(v);
  }

  // Number formats shared with the CLI (aicf/transports/fmt.py; both tested against
  // tests/transports/format_vectors.json): integer maths, so a value prints exactly. JSON numbers above 2^53
  // lose precision in the browser: display only, never recomputed.
  function isInt(v) {
    return typeof v === "number" && Number.isSafeInteger(v);
  }

  function scaled(v, scale, digits) {
    var sign = v < 0 ? "-" : "";
    var a = Math.abs(v);
    var whole = Math.floor(a / scale);
    var frac = String(a - whole * scale).padStart(digits, "0");
    return [sign, whole.toLocaleString("en-US"), frac];
  }

  function fmtInt(v) {
    return isInt(v) ? v.toLocaleString("en-US") : "—";
  }

  function fmtUnits(mu) {
    // milli-units -> "119.303 units"
    if (!isInt(mu)) return "—";
    var p = scaled(mu, 1000, 3);
    return p[0] + p[1] + "." + p[2] + " units";
  }

  function fmtAnm(micro) {
    // µANM -> "0.506 ANM": up to six decimals, trailing zeros dropped
    if (!isInt(micro)) return "—";
    var p = scaled(micro, 1000000, 6);
    var frac = p[2].replace(/0+$/, "");
    return p[0] + p[1] + (frac ? "." + frac : "") + " ANM";
  }

  function fmtAnmShort(micro) {
    // for the headline cards: 1.22M ANM rather than a number that wraps
    if (!isNum(micro)) return "—";
    var anm = micro / 1e6;
    var units = [[1e9, "B"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(anm) >= units[i][0]) return (anm / units[i][0]).toFixed(2) + units[i][1] + " ANM";
    }
    return fmtAnm(micro);
  }

  function fmtPrice(bps) {
    return isNum(bps) ? "×" + (bps / 10000).toFixed(4).replace(/0{1,2}$/, "") : "—";
  }

  function fmtBps(bps) {
    // basis points -> "92.50%"
    if (!isInt(bps)) return "—";
    var p = scaled(bps, 100, 2);
    return p[0] + p[1] + "." + p[2] + "%";
  }

  window.aicfFormat = { units: fmtUnits, anm: fmtAnm, pct: fmtBps, count: fmtInt };

  function fmtMs(ms) {
    return isNum(ms) ? fmtInt(ms) + " ms" : "—";
  }

  function fmtAge(s) {
    if (!isNum(s)) return "—";
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
    return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }

  function shortHex(h) {
    if (typeof h !== "string") return "—";
    return h.length > 14 ? h.slice(0, 8) + "…" + h.slice(-4) : h;
  }

  function hexCell(h) {
    return el("td", { cls: "hex", title: h || "", text: shortHex(h) });
  }

  function pill(text) {
    return el("span", { cls: "pill pill-" + text, text: text || "—" });
  }

  function numCell(text, bad) {
    return el("td", { cls: bad ? "num bad" : "num", text: text });
  }

  function capBar(bps) {
    var fill = el("div", { cls: "fill" });
    setBar(fill, bps);
    return el("div", { cls: "cap" }, el("span", { text: fmtBps(bps) }), el("div", { cls: "bar" }, fill));
  }

  function setBar(fill, bps) {
    var pct = isNum(bps) ? Math.min(100, Math.max(0, bps / 100)) : 0;
    fill.style.width = pct + "%";
    fill.className = "fill" + (bps > 8000 ? " bad" : bps > 6000 ? " warn" : "");
  }

  function setText(id, text, cls) {
    var node = $(id);
    node.textContent = text;
    if (cls !== undefined) node.className = "value" + (cls ? " " + cls : "");
  }

  function showError(id, err) {
    var node = $(id);
    if (!node) return;
    node.hidden = !err;
    node.textContent = err ? String(err.message || err) : "";
  }

  function fillBody(table, rows) {
    var body = $(table).querySelector("tbody");
    body.replaceChildren.apply(body, rows);
  }

  // ---- JSON-RPC ----------------------------------------------------------------------------------------

  var rpcId = 0;

  function rpc(method, params) {
    rpcId += 1;
    var request = { jsonrpc: "2.0", id: rpcId, method: method, params: params || {} };
    return fetch(RPC_URL, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
      cache: "no-store",
    })
      .then(function (res) {
        return res.json();
      })
      .then(function (body) {
        if (body && body.error) {
          var e = new Error(method + ": " + body.error.message + " (" + body.error.code + ")");
          e.code = body.error.code;
          throw e;
        }
        if (!body || !("result" in body)) throw new Error(method + ": no result");
        return body.result;
      });
  }

  // ---- refresh -----------------------------------------------------------------------------------------

  var refreshTimer = null;
  var refreshing = false;
  var refreshAgain = false;

  function scheduleRefresh(delayMs) {
    if (refreshTimer !== null) return;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      refresh();
    }, delayMs);
  }

  function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return Promise.resolve();
    }
    refreshing = true;
    var status = rpc("aicf.getStatus", {}).then(
      function (s) {
        state.status = s;
        state.statusAtMs = Date.now();
        state.slashes = Array.isArray(s.recent_slashes) ? s.recent_slashes.slice() : state.slashes;
        renderStatus();
        renderSlashes();
        return loadEpochs(s.last_settled_epoch);
      },
      function (err) {
        showAlarmsError(err);
      }
    );
    var providers = rpc("aicf.listProviders", { limit: 200 }).then(
      function (page) {
        var next = new Map();
        (page.items || []).forEach(function (p) {
          var old = state.providers.get(p.provider_id);
          if (old && rowKey(old) !== rowKey(p)) state.flash.add(p.provider_id);
          next.set(p.provider_id, p);
        });
        state.providers = next;
        $("providers-count").textContent = next.size + (page.next_cursor ? "+ (first page)" : "");
        showError("providers-error", null);
        renderProviders();
      },
      function (err) {
        showError("providers-error", err);
      }
    );
    var jobs = rpc("aicf.listJobs", { statuses: LIVE_STATUSES, limit: 100 }).then(
      function (page) {
        var next = new Map();
        (page.items || []).forEach(function (j) {
          var old = state.jobs.get(j.task_id);
          if (!old || rowKey(old) !== rowKey(j)) state.flash.add(j.task_id);
          next.set(j.task_id, j);
        });
        state.jobs = next;
        $("jobs-count").textContent = next.size + (page.next_cursor ? "+" : "");
        showError("jobs-error", null);
        renderJobs();
      },
      function (err) {
        showError("jobs-error", err);
      }
    );
    var settled = [status, providers, jobs].map(function (p) {
      return p.catch(function (err) {
        console.error("refresh:", err); // a render bug must not stop later refreshes
      });
    });
    return Promise.all(settled).then(function () {
      refreshing = false;
      state.flash.clear();
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      if (refreshAgain) {
        refreshAgain = false;
        scheduleRefresh(0);
      }
    });
  }

  function rowKey(obj) {
    return JSON.stringify(obj);
  }

  function loadEpochs(last) {
    if (!isNum(last) || last < 0) {
      renderEpochs();
      return Promise.resolve();
    }
    var wanted = [];
    for (var e = last; e >= 0 && e > last - EPOCHS_SHOWN; e--) {
      var known = state.epochs.get(e);
      if (!known || known.provisional) wanted.push(e);
    }
    return Promise.all(
      wanted.map(function (e) {
        return rpc("aicf.getEpoch", { epoch: e }).then(
          function (batch) {
            state.epochs.set(e, batch);
            state.flash.add("epoch:" + e);
          },
          function (err) {
            showError("epochs-error", err);
          }
        );
      })
    ).then(renderEpochs);
  }

  // ---- render ------------------------------------------------------------------------------------------

  function renderStatus() {
    var s = state.status;
    if (!s) return;
    var q = (s.queue && s.queue.by_status) || {};
    $("head-height").textContent = fmtInt(s.head_height);
    $("finalized-height").textContent = fmtInt(s.finalized_height);
    $("current-epoch").textContent = fmtInt(s.current_epoch);
    setText("kpi-queued", fmtInt(q.QUEUED));
    $("kpi-pending").textContent = fmtInt(q.PENDING) + " pending";
    setText("kpi-leased", fmtInt(q.LEASED));
    $("kpi-submitted").textContent = fmtInt(q.SUBMITTED) + " submitted";
    setText("kpi-assigns", fmtInt(s.assignments_total));
    $("kpi-retries").textContent = fmtInt(s.retries_total) + " retries";
    var t = s.treasury || {};
    setText("kpi-treasury", fmtAnmShort(t.treasury_balance));
    $("kpi-treasury").title = fmtAnm(t.treasury_balance);
    $("kpi-fund").textContent = "fund " + fmtAnmShort(t.fund_balance);
    setText("kpi-cap", fmtBps(t.cap_use_bps), t.cap_use_bps > 8000 ? "bad" : t.cap_use_bps > 6000 ? "warn" : "");
    setBar($("kpi-cap-bar"), t.cap_use_bps);
    setText("kpi-throttle", t.budget_throttle_active ? "THROTTLED" : "off", t.budget_throttle_active ? "bad" : "ok");
    var op = s.operator || {};  // operator transactions on chain (docs/OPERATOR.md)
    var pending = Array.isArray(op.pending) ? op.pending.length : 0;
    setText("kpi-params", isNum(op.params_version) ? "v" + op.params_version : "—");
    $("kpi-params").title = op.params_hash || "";
    $("kpi-params-next").textContent = op.next_params_version !== op.params_version && isNum(op.next_params_version)
      ? "v" + op.next_params_version + " next epoch · " + pending + " pending"
      : pending + " pending operator tx";
    tickAge();
    renderAlarms();
  }

  function tickAge() {
    var s = state.status;
    if (!s || !s.queue) return;
    var queued = s.queue.by_status && s.queue.by_status.QUEUED;
    var age = s.queue.oldest_queued_age_s;
    if (queued > 0 && isNum(age)) age += Math.floor((Date.now() - state.statusAtMs) / 1000);
    setText("kpi-age", queued > 0 ? fmtAge(age) : "—", age > 1800 ? "bad" : age > 600 ? "warn" : "");
  }

  function renderAlarms() {
    var s = state.status;
    var alarms = (s && Array.isArray(s.alarms) && s.alarms) || [];
    var items = alarms.map(function (a) {
      var since = isNum(a.since) && isNum(s.now) ? "for " + fmtAge(s.now - a.since) : "";
      return el(
        "li",
        { "data-alarm": a.name || "" },
        pill(a.severity || "warning"),
        el("span", { cls: "alarm-name", text: a.name || "alarm" }),
        el("span", { text: a.message || "" }),
        el("span", { cls: "alarm-since", text: since })
      );
    });
    if (!items.length) items = [el("li", { cls: "none", text: "No alarms" })];
    var list = $("alarms");
    list.replaceChildren.apply(list, items);
  }

  function showAlarmsError(err) {
    var list = $("alarms");
    list.replaceChildren(el("li", { cls: "error", text: "aicf.getStatus failed: " + (err.message || err) }));
  }

  function renderProviders() {
    var now = state.status && state.status.now;
    var rows = Array.from(state.providers.values())
      .sort(function (a, b) {
        return (b.bonded_stake || 0) - (a.bonded_stake || 0) || (a.provider_id < b.provider_id ? -1 : 1);
      })
      .map(function (p) {
        var done = (p.proofs_accepted || 0) + (p.proofs_rejected || 0);
        var success = done ? Math.floor(((p.proofs_accepted || 0) * 10000) / done) : null;
        var hb = isNum(p.last_heartbeat_at) && isNum(now) ? fmtAge(now - p.last_heartbeat_at) + " ago" : "—";
        var tr = el(
          "tr",
          { "data-provider-id": p.provider_id, "data-status": p.status || "" },
          hexCell(p.provider_id),
          el("td", null, pill(p.status)),
          numCell(fmtAnm(p.bonded_stake)),
          numCell(fmtInt(p.live_leases)),
          numCell(fmtMs(p.latency_p50_ms)),
          numCell(fmtMs(p.latency_p95_ms), p.latency_p95_ms > 800),
          numCell(fmtBps(p.availability_bps), p.availability_bps < 9900),
          numCell(success === null ? "—" : fmtBps(success), success !== null && success < 9500),
          numCell(hb, isNum(now) && now - p.last_heartbeat_at > 60)
        );
        if (state.flash.has(p.provider_id)) tr.className = "flash";
        return tr;
      });
    if (!rows.length) rows = [el("tr", null, el("td", { colspan: "9", cls: "muted", text: "no providers registered" }))];
    fillBody("providers", rows);
  }

  var STATUS_ORDER = { LEASED: 0, SUBMITTED: 1, QUEUED: 2 };

  function renderJobs() {
    var rows = Array.from(state.jobs.values())
      .sort(function (a, b) {
        var sa = STATUS_ORDER[a.status] === undefined ? 9 : STATUS_ORDER[a.status];
        var sb = STATUS_ORDER[b.status] === undefined ? 9 : STATUS_ORDER[b.status];
        return sa - sb || (b.tier || 0) - (a.tier || 0) || (a.enqueue_height || 0) - (b.enqueue_height || 0);
      })
      .map(function (j) {
        var tr = el(
          "tr",
          { "data-task-id": j.task_id, "data-status": j.status || "" },
          hexCell(j.task_id),
          el("td", { text: j.kind === "ai" && j.model ? "ai · " + j.model : j.kind || "—" }),
          el("td", null, pill(j.status)),
          j.provider_id ? hexCell(j.provider_id) : el("td", { cls: "muted", text: "—" }),
          numCell(fmtInt(j.attempts)),
          numCell(fmtInt(j.tier))
        );
        if (state.flash.has(j.task_id)) tr.className = "flash";
        return tr;
      });
    if (!rows.length) rows = [el("tr", null, el("td", { colspan: "6", cls: "muted", text: "no live jobs" }))];
    fillBody("jobs", rows);
  }

  function renderEpochs() {
    var rows = Array.from(state.epochs.values())
      .sort(function (a, b) {
        return b.epoch - a.epoch;
      })
      .slice(0, EPOCHS_SHOWN)
      .map(function (e) {
        var t = e.totals || {};
        var tr = el(
          "tr",
          { "data-epoch": String(e.epoch) },
          numCell(fmtInt(e.epoch)),
          numCell(fmtInt(e.payout_count)),
          numCell(fmtInt(e.carried_count)),
          numCell(fmtUnits(t.units_mu)),
          numCell(fmtAnm(t.provider)),
          numCell(fmtAnm(t.miner)),
          numCell(fmtAnm(t.fund)),
          numCell(fmtPrice(e.price_bps)),
          el("td", null, capBar(e.cap_use_bps))
        );
        if (state.flash.has("epoch:" + e.epoch)) tr.className = "flash";
        return tr;
      });
    if (!rows.length) rows = [el("tr", null, el("td", { colspan: "9", cls: "muted", text: "no settled epoch yet" }))];
    fillBody("epochs", rows);
  }

  function renderSlashes() {
    var rows = state.slashes.slice(0, 20).map(function (s) {
      return el(
        "tr",
        { "data-evidence": s.evidence_hash || "" },
        numCell(fmtInt(s.height)),
        hexCell(s.provider_id),
        el("td", null, el("span", { cls: "pill pill-reason", text: s.reason || "—" })),
        numCell(fmtAnm(s.amount)),
        el("td", null, s.status ? pill(s.status) : el("span", { cls: "muted", text: "—" }))
      );
    });
    if (!rows.length) rows = [el("tr", null, el("td", { colspan: "5", cls: "muted", text: "no slashes" }))];
    fillBody("slashes", rows);
  }

  function renderFeed() {
    var items = state.feed.map(function (ev) {
      return el(
        "li",
        ev.history ? { "data-seq": String(ev.seq), cls: "history" } : { "data-seq": String(ev.seq) },
        el("span", { cls: "seq", text: "#" + ev.seq }),
        el("span", { cls: "topic topic-" + ev.topic, text: ev.topic }),
        el("span", { cls: "text", text: describe(ev), title: JSON.stringify(ev.data) })
      );
    });
    if (!items.length) items = [el("li", { cls: "muted empty", text: "waiting for events…" })];
    var list = $("feed");
    list.replaceChildren.apply(list, items);
    $("last-seq").textContent = state.lastSeq ? "#" + state.lastSeq : "—";
  }

  function describe(ev) {
    var d = ev.data || {};
    switch (ev.topic) {
      case "jobAssigned":
        return shortHex(d.task_id) + " → " + shortHex(d.provider_id) + (isNum(d.attempt) ? " (attempt " + d.attempt + ")" : "");
      case "jobCompleted":
        return shortHex(d.task_id) + " verified" + (isNum(d.units_mu) ? ", " + fmtUnits(d.units_mu) : "");
      case "providerSlashed":
        return shortHex(d.provider_id) + " " + (d.reason || "") + " " + fmtAnm(d.amount);
      case "epochSettled":
        var units = (d.totals || {}).units_mu;
        return "epoch " + d.epoch + ": " + fmtInt(isNum(d.payout_count) ? d.payout_count : d.payouts) + " payouts" +
          (isNum(units) ? ", " + fmtUnits(units) : "");
      default:
        return JSON.stringify(d);
    }
  }

  // ---- events: apply at once, then let RPC reconcile ----------------------------------------------------

  function applyEvent(ev) {
    var d = ev.data || {};
    state.feed.unshift(ev);
    if (state.feed.length > FEED_MAX) state.feed.length = FEED_MAX;
    if (ev.topic === "jobAssigned" && d.task_id) {
      var job = Object.assign({}, state.jobs.get(d.task_id) || { task_id: d.task_id, kind: d.kind }, {
        status: "LEASED",
        provider_id: d.provider_id,
      });
      if (isNum(d.attempt)) job.attempts = d.attempt + 1;
      state.jobs.set(d.task_id, job);
      state.flash.add(d.task_id);
      renderJobs();
    } else if (ev.topic === "jobCompleted" && d.task_id) {
      if (state.jobs.delete(d.task_id)) renderJobs();
    } else if (ev.topic === "providerSlashed") {
      state.slashes.unshift(d);
      var p = state.providers.get(d.provider_id);
      if (p && d.status) {
        state.providers.set(d.provider_id, Object.assign({}, p, { status: d.status }));
        state.flash.add(d.provider_id);
        renderProviders();
      }
      renderSlashes();
    } else if (ev.topic === "epochSettled" && isNum(d.epoch)) {
      // the event carries `payouts`/`carried`, getEpoch `payout_count`/`carried_count` and `cap_use_bps`: show
      // what the event has at once, and mark it provisional so the next refresh loads the whole batch
      state.epochs.set(d.epoch, Object.assign({ provisional: true }, d, {
        payout_count: isNum(d.payout_count) ? d.payout_count : d.payouts,
        carried_count: isNum(d.carried_count) ? d.carried_count : d.carried,
      }));
      state.flash.add("epoch:" + d.epoch);
      renderEpochs();
    }
    renderFeed();
  }

  // ---- WebSocket ---------------------------------------------------------------------------------------

  var socket = null;
  var backoffMs = BACKOFF_MIN_MS;
  var attempts = 0;

  function setConn(which, detail) {
    var badge = $("conn-badge");
    badge.dataset.state = which;
    badge.className = "badge badge-" + which;
    badge.textContent = which === "live" ? "live" : which === "connecting" ? "connecting" : "disconnected";
    badge.title = detail || "";
  }

  function connect() {
    attempts += 1;
    // the first attempt is "connecting"; every later one means the page is not live: "disconnected"
    if (attempts === 1) setConn("connecting", "connecting to " + WS_URL);
    var ws;
    try {
      ws = new WebSocket(WS_URL);
    } catch (err) {
      reconnectLater(String(err));
      return;
    }
    socket = ws;
    ws.onopen = function () {
      var msg = { op: "subscribe", topics: TOPICS };
      if (state.lastSeq > 0) {
        msg.from_seq = state.lastSeq + 1; // inclusive: the first event not yet seen
      } else if (state.status && isInt(state.status.latest_seq) && state.status.latest_seq > 0) {
        // first connection: replay the last FEED_MAX events so the feed starts filled, not empty
        state.historyUntil = state.status.latest_seq;
        msg.from_seq = Math.max(1, state.historyUntil - FEED_MAX + 1);
      }
      ws.send(JSON.stringify(msg));
    };
    ws.onmessage = function (m) {
      var msg;
      try {
        msg = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      onMessage(msg);
    };
    ws.onclose = function (e) {
      if (socket !== ws) return;
      socket = null;
      reconnectLater("closed (" + e.code + (e.reason ? " " + e.reason : "") + ")");
    };
    ws.onerror = function () {
      // onclose follows and reconnects
    };
  }

  function reconnectLater(why) {
    setConn("disconnected", why + "; retrying in " + Math.round(backoffMs / 100) / 10 + " s");
    setTimeout(connect, backoffMs);
    backoffMs = Math.min(BACKOFF_MAX_MS, backoffMs * 2);
  }

  function onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "subscribed") {
      backoffMs = BACKOFF_MIN_MS;
      if (isNum(msg.from_seq)) state.lastSeq = Math.max(state.lastSeq, msg.from_seq - 1);
      setConn("live", "subscribed to " + TOPICS.join(", "));
      renderFeed();
      scheduleRefresh(0); // whatever happened while away
    } else if (msg.type === "lagged") {
      // the server dropped us for being slow; it says where to resume, and closes the socket
      if (isNum(msg.resume_from)) state.lastSeq = msg.resume_from - 1;
      scheduleRefresh(0);
    } else if (msg.type === "error") {
      setConn("disconnected", "server refused the subscription: " + (msg.message || msg.code));
      state.lastSeq = 0; // a refused resume point: start live again and rely on RPC for the state
    } else if (isNum(msg.seq) && typeof msg.topic === "string") {
      if (msg.seq <= state.lastSeq) return; // a duplicate after a resume
      var gap = state.lastSeq > 0 && msg.seq > state.lastSeq + 1;
      state.lastSeq = msg.seq;
      if (msg.seq <= state.historyUntil) {
        // the past, replayed on load: the RPC state already includes it; list it only
        msg.history = true;
        state.feed.unshift(msg);
        if (state.feed.length > FEED_MAX) state.feed.length = FEED_MAX;
        renderFeed();
        return;
      }
      applyEvent(msg);
      scheduleRefresh(gap ? 0 : EVENT_REFRESH_MS);
    }
  }

  // ---- charts: SVG drawn by the coordinator, the same figures `aicf report` saves ------------------------

  function refreshCharts() {
    document.querySelectorAll("#charts img[data-chart]").forEach(function (img) {
      img.src = CHARTS_URL + img.dataset.chart + ".svg?t=" + Date.now();
    });
  }

  // ---- start -------------------------------------------------------------------------------------------

  function start() {
    renderProviders();
    renderJobs();
    renderEpochs();
    renderSlashes();
    renderFeed();
    // the first status says where the event log ends, so the socket can replay its tail into the feed
    refresh().then(connect);
    setInterval(function () {
      scheduleRefresh(0);
    }, POLL_MS);
    setInterval(tickAge, 1000);
    refreshCharts();
    setInterval(refreshCharts, CHARTS_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
