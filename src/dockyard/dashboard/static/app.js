// Dockyard dashboard: keeps the page current from /events (server-sent events); charts with
// uPlot (served from the package: no CDN); actions shown as their plan first, run when asked
// a second time, their lines streamed as the CLI prints them.
"use strict";
(function () {
  const body = document.body;
  const page = body.dataset.page;
  const initial = JSON.parse(body.dataset.initial || "{}");
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  window.dockyard = {charts: {}, data: initial, events: 0};

  function badge(ok, text) {
    return `<span class="badge ${ok ? "ok" : "bad"}">${ok ? "✔" : "✖"} ${esc(text)}</span>`;
  }

  function renderApps(apps) {
    const el = document.getElementById("apps");
    if (!el) return;
    el.innerHTML = apps.map((a) => {
      const procs = Object.entries(a.processes).map(([n, p]) => badge(p.running >= p.total && p.running > 0, `${n} ${p.running}/${p.total}`)).join(" ");
      const problems = a.problems.map((p) => `<li>${esc(p)}</li>`).join("");
      const domains = a.domains.map((d) => `<li>${esc(d.name)}${d.certificate ? ` <small>certificate: ${esc(d.certificate)}</small>` : ""}</li>`).join("");
      const extra = Object.entries(a.backups).map(([k, v]) => `<li>${esc(k)}: last backup ${esc(v)}</li>`).join("") +
        Object.entries(a.jobs).map(([k, v]) => `<li>job ${esc(k)}: ${esc(v)}</li>`).join("");
      const last = a.last_change ? `<p><small>last change: ${esc(a.last_change.subcommand)} by ${esc(a.last_change.user)} at ${esc(a.last_change.time)} (${esc(a.last_change.outcome)})</small></p>` : "";
      return `<article class="app${a.problems.length ? " problem" : ""}" data-app="${esc(a.name)}">` +
        `<h2><a href="/app/${esc(a.name)}?host=${encodeURIComponent(a.host || "")}">${esc(a.name)}</a> <span class="release">${esc(a.release)}</span> ${badge(!a.problems.length, a.health)}</h2>` +
        (a.busy ? `<p class="busy" role="status"><b>Now:</b> ${esc(a.busy)}</p>` : "") + `<p>${procs}</p>` +
        (problems ? `<ul class="problems" aria-label="problems">${problems}</ul>` : "") +
        (domains ? `<ul>${domains}</ul>` : "") + (extra ? `<ul>${extra}</ul>` : "") + last + "</article>";
    }).join("") || "<p>No app on this server yet.</p>";
  }

  // each deploy (release start) within the chart: a dashed vertical line, named in the legend
  const deploys = (initial.releases || []).map((r) => Date.parse(r.created_at) / 1000).filter((t) => t > Date.now() / 1000 - 3600);
  function markDeploys(u) {
    const ctx = u.ctx;
    ctx.save(); ctx.strokeStyle = "#6a1b9a"; ctx.setLineDash([2, 4]); ctx.lineWidth = 2;
    for (const t of deploys) {
      const x = u.valToPos(t, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    }
    ctx.restore();
  }
  function chart(id, series, labels, data) {
    const el = document.getElementById(id);
    if (!el || !window.uPlot) return;
    const opts = {width: 520, height: 220, series: [{}].concat(labels.map((l, i) => ({label: l, stroke: ["#0b2545", "#b35c00", "#a10d0d"][i], dash: i ? [6, 3] : undefined}))),
      axes: [{}, {}], scales: {x: {time: true}}, hooks: {draw: [markDeploys]}};
    if (window.dockyard.charts[id]) { window.dockyard.charts[id].setData(data); return; }
    el.innerHTML = "";
    window.dockyard.charts[id] = new uPlot(opts, data, el);
  }

  function renderMetrics(m) {
    if (!m) return;
    chart("chart-rate", null, ["req/s", "4xx/s", "5xx/s"], [m.t, m.rate, m.e4, m.e5]);
    chart("chart-latency", null, ["p50 ms", "p95 ms"], [m.t, m.p50, m.p95]);
    const points = document.getElementById("points");
    if (points) points.textContent = `${m.t.length} points (10 s each); dotted purple lines: deploys (${deploys.length} in the last hour)`;
    window.dockyard.points = m.t.length;
  }

  function renderRequests(rows) {
    const el = document.getElementById("requests");
    if (!el || !rows) return;
    el.innerHTML = rows.map((r) => `<tr><td>${esc(r.time.slice(11, 19))}</td><td>${r.status >= 500 || r.status < 0 ? "✖ " : ""}${esc(r.status)}</td><td>${esc(r.method)} ${esc(r.path)}</td><td>${esc(r.ms)}</td></tr>`).join("");
  }

  function renderAction(a) {
    const el = document.getElementById("action");
    if (!el || !a || !a.command) return;
    el.innerHTML = `<h2>${esc(a.command)} ${a.active ? "(running)" : a.exit === 0 ? "✔ done" : "✖ exit " + esc(a.exit)}</h2><pre id="action-lines">${esc(a.lines.join("\n"))}</pre>`;
  }

  const app = page === "app" ? initial.name : "";
  if (page === "app") { renderMetrics(initial.metrics); renderRequests(initial.requests); }
  const hostParam = new URLSearchParams(location.search).get("host") || "";
  const source = new EventSource("/events" + (app ? "?app=" + encodeURIComponent(app) + "&host=" + encodeURIComponent(hostParam) : ""));
  source.onmessage = (e) => {
    const d = JSON.parse(e.data);
    window.dockyard.events += 1;
    if (page === "overview") {
      renderApps(d.overview.apps);
      const s = document.getElementById("summary");
      const bad = d.overview.apps.filter((a) => a.problems.length).length;
      if (s) s.textContent = `${d.overview.apps.length} apps, ${bad ? bad + " with problems" : "all running"}; disk ${d.overview.disk.used_percent}% used`;
    }
    if (page === "app") {
      renderMetrics(d.metrics); renderRequests(d.requests); renderAction(d.action);
      const mine = d.overview.apps.find((a) => a.name === app);
      const rel = document.querySelector("h1 .release");
      if (mine && rel) rel.textContent = mine.release;
    }
  };

  async function post(payload) {
    const r = await fetch("/api/action", {method: "POST", headers: {"Content-Type": "application/json", "X-Dockyard-CSRF": csrf}, body: JSON.stringify(payload)});
    return r.json();
  }
  const dialog = document.getElementById("dialog");
  let pending = null;
  document.addEventListener("click", async (ev) => {
    const t = ev.target.closest("button");
    if (!t) return;
    if (t.dataset.action) {
      pending = {action: t.dataset.action, app: app, arg: t.dataset.arg || ""};
      const plan = await post(pending);
      document.getElementById("dialog-title").textContent = plan.error ? "Cannot run" : `The plan of: ${plan.command}`;
      document.getElementById("plan").textContent = plan.error || plan.plan;
      dialog.hidden = false;
      document.getElementById(plan.error ? "cancel" : "confirm").focus();
    } else if (t.id === "confirm" && pending) {
      dialog.hidden = true;
      const r = await post(Object.assign({confirm: true}, pending));
      renderAction({command: r.started || r.error, active: !!r.started, lines: [], exit: r.error ? 1 : null});
      pending = null;
    } else if (t.id === "cancel") {
      dialog.hidden = true; pending = null;
    } else if (t.dataset.logs) {
      window.dockyard.tailing = t.dataset.logs;
      await tail();
    } else if (t.id === "load-stats") {
      const rows = await (await fetch("/api/stats/" + encodeURIComponent(app))).json();
      document.getElementById("stats").innerHTML = "<table><tr><th>container</th><th>CPU</th><th>memory</th></tr>" + rows.map((r) => `<tr><td>${esc(r.container)}</td><td>${esc(r.cpu)}</td><td>${esc(r.memory)}</td></tr>`).join("") + "</table>";
    }
  });
  // the chosen container's logs, again every 3 s while the page is open (a live tail)
  async function tail() {
    const name = window.dockyard.tailing;
    if (!name) return;
    const lines = await (await fetch("/api/logs/" + encodeURIComponent(name))).json();
    window.dockyard.logs = lines;
    document.getElementById("log-name").textContent = `${name} (refreshed every 3 s)`;
    filterLogs();
  }
  if (page === "app") setInterval(tail, 3000);
  function filterLogs() {
    const f = (document.getElementById("log-filter") || {}).value || "";
    const lines = (window.dockyard.logs || []).filter((l) => !f || l.toLowerCase().includes(f.toLowerCase()));
    document.getElementById("logs").textContent = lines.join("\n");
  }
  const filter = document.getElementById("log-filter");
  if (filter) filter.addEventListener("input", filterLogs);
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && dialog && !dialog.hidden) { dialog.hidden = true; pending = null; } });
})();
