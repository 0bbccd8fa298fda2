// Haven cluster status page: polls the load-balancer JSON endpoints every 2 s.
// The operator token stays in this tab's sessionStorage and is sent as a Bearer header.
"use strict";

(function () {
  const TOKEN_KEY = "haven-operator-token";
  const REFRESH_MS = 2000;
  const GONE_KEEP_MS = 60000;
  const known = new Map(); // instanceId -> {row data, lastSeen}
  let timer = null;

  const $ = (id) => document.getElementById(id);

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function getJSON(path, options) {
    const response = await fetch(path, Object.assign({ cache: "no-store" }, options || {}));
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    return { response, body };
  }

  async function checkToken(value) {
    const { response } = await getJSON("/api/v1/load-balancer/health-check", {
      method: "POST",
      headers: { Authorization: "Bearer " + value },
    });
    if (response.ok) return null;
    if (response.status === 404) return "Operator endpoints are off: this instance has no OPERATOR_TOKEN.";
    if (response.status === 401 || response.status === 403) return "That token is not the operator token.";
    return "The instance answered " + response.status + "; try again.";
  }

  function show(signedIn) {
    $("signin").hidden = signedIn;
    $("dashboard").hidden = !signedIn;
    if (!signedIn) {
      $("served-by").textContent = "Not signed in";
      $("token").focus();
    }
  }

  function fmtUptime(seconds) {
    if (typeof seconds !== "number") return "–";
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }

  function fmtBytes(n) {
    if (typeof n !== "number" || !n) return "–";
    return (n / 1048576).toFixed(1) + " MB";
  }

  function num(v, digits) {
    return typeof v === "number" ? v.toFixed(digits) : "–";
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function render(instances, metrics, health, servedBy) {
    const now = Date.now();
    const perInstance = new Map();
    ((metrics && metrics.instances) || []).forEach((m) => perInstance.set(m.instanceId, m));
    const live = new Set();
    (instances || []).forEach((rec) => {
      live.add(rec.instanceId);
      known.set(rec.instanceId, { rec: rec, m: perInstance.get(rec.instanceId) || {}, lastSeen: now });
    });
    for (const [id, entry] of known) {
      if (!live.has(id) && now - entry.lastSeen > GONE_KEEP_MS) known.delete(id);
    }

    const tbody = $("instances").querySelector("tbody");
    tbody.replaceChildren();
    const ids = Array.from(known.keys()).sort();
    let ready = 0;
    let totalRate = 0;
    ids.forEach((id) => {
      const entry = known.get(id);
      const gone = !live.has(id);
      const state = gone ? "gone" : entry.rec.state || "unknown";
      if (state === "ready") ready += 1;
      const m = entry.m;
      const req = m.requests || {};
      const lat = m.latencyMs || {};
      if (!gone) totalRate += req.perSecond || 0;
      const tr = document.createElement("tr");
      tr.className = state;
      tr.dataset.instance = id;
      tr.dataset.state = state;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = id + (id === servedBy ? " (served this page)" : "");
      tr.append(
        th,
        cell(state, "state state-" + state),
        cell(entry.rec.version || "–"),
        cell(fmtUptime(m.uptime)),
        cell(String(entry.rec.inFlight ?? req.inFlight ?? "–")),
        cell(String(entry.rec.requestsTotal ?? req.total ?? "–")),
        cell(num(req.perSecond, 1)),
        cell(num(lat.p50, 1)),
        cell(num(lat.p99, 1)),
        cell(typeof m.errorRate === "number" ? (m.errorRate * 100).toFixed(1) + "%" : "–"),
        cell(fmtBytes(m.memory && m.memory.rssBytes)),
      );
      tbody.append(tr);
    });

    const spread = $("spread");
    spread.replaceChildren();
    ids.filter((id) => live.has(id)).forEach((id) => {
      const rate = ((known.get(id).m.requests || {}).perSecond) || 0;
      const share = totalRate > 0 ? rate / totalRate : 0;
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = id;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.setAttribute("role", "img");
      bar.setAttribute("aria-label", id + ": " + Math.round(share * 100) + "% of requests");
      const fill = document.createElement("span");
      fill.style.width = (share * 100).toFixed(1) + "%";
      bar.append(fill);
      const pct = document.createElement("span");
      pct.textContent = Math.round(share * 100) + "%";
      li.append(name, bar, pct);
      spread.append(li);
    });

    $("sum-ready").textContent = ready + " / " + live.size;
    $("sum-rps").textContent = num(metrics && metrics.requests && metrics.requests.perSecond, 1);
    $("sum-errors").textContent =
      metrics && typeof metrics.errorRate === "number" ? (metrics.errorRate * 100).toFixed(2) + "%" : "–";
    $("sum-sessions").textContent = String((metrics && metrics.sessions && metrics.sessions.active) ?? "–");
    const hooks = (metrics && metrics.webhooks) || null;
    $("hook-lag").textContent = hooks ? fmtUptime(hooks.lagSeconds) : "–";
    $("hook-backlog").textContent = hooks ? String(hooks.backlog) : "–";
    $("hook-failing").textContent = hooks ? String(hooks.failingSubscriptions) : "–";
    $("hook-failing").className = "value" + (hooks && hooks.failingSubscriptions ? " unhealthy" : "");
    const deps = (health && health.dependencies) || {};
    ["redis", "database"].forEach((dep) => {
      const el = $("dep-" + dep);
      el.textContent = deps[dep] || "unknown";
      el.className = "value " + (deps[dep] || "");
    });
    $("served-by").textContent = "Page data served by " + (servedBy || "unknown instance");
    $("updated").textContent = "Updated " + new Date().toLocaleTimeString();
  }

  async function refresh() {
    const value = token();
    if (!value) return;
    try {
      const auth = await checkToken(value);
      if (auth) {
        signOut(auth);
        return;
      }
      // The registry and the cluster-wide metrics name internal addresses: operator only.
      const operator = { headers: { Authorization: "Bearer " + value } };
      const [inst, metrics, health] = await Promise.all([
        getJSON("/api/v1/load-balancer/instances", operator),
        getJSON("/api/v1/load-balancer/metrics?scope=cluster", operator),
        getJSON("/api/v1/load-balancer/health"),
      ]);
      const servedBy = health.response.headers.get("X-Instance-Id");
      render((inst.body && inst.body.instances) || [], metrics.body, health.body, servedBy);
    } catch (e) {
      $("updated").textContent = "Update failed (" + e.message + "); retrying";
    }
  }

  function start() {
    show(true);
    refresh();
    if (timer) clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (timer) clearInterval(timer);
    timer = null;
    known.clear();
    show(false);
    $("signin-error").textContent = message || "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      $("signin-error").textContent = "";
      const problem = await checkToken(value);
      if (problem) {
        $("signin-error").textContent = problem;
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token").value = "";
      start();
    });
    $("signout").addEventListener("click", () => signOut("Signed out."));
    if (token()) start();
    else show(false);
  });
})();
