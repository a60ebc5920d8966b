// Operations: queue depths, dead letters (last error, redrive), alarm states with their last
// transition, and the last hour of CloudWatch metrics (GET /metrics) as charts (uPlot).
import { api } from "./api.js";
import { badge, esc } from "./format.js";

const QUEUES = [["tasks_high", "High-priority tasks"], ["tasks_first", "First chunks"], ["tasks", "Tasks"], ["ingest", "Ingest"],
  ["tasks_high_dlq", "High DLQ"], ["tasks_dlq", "Tasks DLQ"], ["ingest_dlq", "Ingest DLQ"]];

export async function render(view, ctx) {
  view.innerHTML = `
    <h1>Operations</h1>
    <section aria-labelledby="q-title"><h2 id="q-title">Queues</h2><div class="cards" id="queues"></div></section>
    <section aria-labelledby="d-title"><h2 id="d-title">Dead letters</h2>
      <table><thead><tr><th>Job</th><th>Task</th><th>Queue</th><th>Last error</th><th>Dead since</th><th></th></tr></thead>
      <tbody id="dead"></tbody></table><p id="dead-state" aria-live="polite" class="muted"></p></section>
    <section aria-labelledby="a-title"><h2 id="a-title">Alarms</h2>
      <table><thead><tr><th>Alarm</th><th>State</th><th>Last transition</th><th>Reason</th></tr></thead>
      <tbody id="alarms"></tbody></table></section>
    <section aria-labelledby="c-title"><h2 id="c-title">Last hour</h2><div class="grid" id="charts"></div></section>`;
  const charts = new Map();
  const put = (selector, html) => {  // only a change touches the DOM: a button stays under the pointer
    const node = view.querySelector(selector);
    if (node.dataset.html !== html) { node.innerHTML = html; node.dataset.html = html; }
  };
  const refresh = async () => {
    const [stats, dead, alarms] = await Promise.all([api("/stats"), api("/dlq"), api("/alarms")]);
    put("#queues", QUEUES.map(([key, label]) => {
      const depth = stats.queues[key] || {};
      const n = depth.visible || 0;
      return `<div class="card ${key.endsWith("dlq") && n ? "alert" : ""}" data-queue="${key}">
        <span class="muted">${label}</span><b>${n}</b>
        <span class="muted">${depth.in_flight != null ? `${depth.in_flight} in flight` : ""}</span></div>`;
    }).join("") + `<div class="card"><span class="muted">Completed / min</span><b>${stats.jobs_completed_per_minute}</b></div>`);
    put("#dead", dead.dead_letters.length ? dead.dead_letters.map((d) => `
      <tr data-message="${esc(d.message_id)}"><td><a class="mono" href="#/jobs/${esc(d.job_id)}">${esc(d.job_id)}</a></td>
        <td>${esc(d.task || "–")}</td><td>${esc(d.queue || "tasks")}</td>
        <td class="error">${esc((d.last_error && (d.last_error.message || d.last_error.code)) || (d.error && d.error.message) || "–")}</td>
        <td><time datetime="${esc(d.dead_at)}">${esc((d.dead_at || "").replace("T", " ").replace("Z", " UTC"))}</time></td><td><button data-redrive="${esc(d.message_id)}">Redrive</button></td></tr>`).join("")
      : `<tr><td colspan="6" class="muted">No dead letters.</td></tr>`);
    for (const button of view.querySelectorAll("[data-redrive]")) {
      button.onclick = async () => {
        button.disabled = true;
        const state = view.querySelector("#dead-state");
        try {
          const done = await api(`/dlq/${encodeURIComponent(button.dataset.redrive)}/retry`, { method: "POST" });
          state.textContent = `Redriven: job ${done.job_id} is back on its queue.`;
          await refresh();
        } catch (e) { state.textContent = `Redrive failed: ${e.message}`; button.disabled = false; }
      };
    }
    put("#alarms", alarms.alarms.map((a) => `<tr data-alarm="${esc(a.name)}">
      <td title="${esc(a.description)}">${esc(a.name)}</td><td>${badge(a.state)}</td>
      <td><time datetime="${esc(a.changed_at)}">${esc((a.changed_at || "").replace("T", " ").replace("Z", " UTC"))}</time></td>
      <td class="muted">${esc(a.reason)}</td></tr>`).join(""));
  };
  const refreshCharts = async () => drawCharts(view.querySelector("#charts"), await api("/metrics?window=3600&period=60"), charts);
  await Promise.all([refresh(), refreshCharts()]);
  ctx.every(5000, refresh);
  ctx.every(30000, refreshCharts);
}

const COLORS = ["#5aa9ff", "#3ecf8e", "#f5b942", "#ff6b6b"];

function drawCharts(box, data, charts) {
  const start = Date.parse(data.start) / 1000;
  const end = Date.parse(data.end) / 1000;
  const xs = [];
  for (let t = start; t < end; t += data.period) xs.push(t);
  for (const chart of data.charts) {  // every figure first: a lone grid item would span the row
    if (charts.has(chart.id)) continue;
    const figure = document.createElement("figure");
    figure.className = "chart";
    figure.dataset.chart = chart.id;
    figure.innerHTML = `<h3>${esc(chart.title)} <span class="muted">(${esc(chart.unit)})</span></h3>`;
    box.appendChild(figure);
    charts.set(chart.id, { figure, plot: null });
  }
  for (const chart of data.charts) {
    const entry = charts.get(chart.id);
    const columns = [xs, ...chart.series.map((s) => {
      const byTime = new Map(s.points.map(([iso, v]) => [Math.floor(Date.parse(iso) / 1000), v]));
      return xs.map((t) => byTime.get(t) ?? null);
    })];
    if (entry.plot) entry.plot.setData(columns);
    else if (window.uPlot) {
      entry.plot = new window.uPlot({
        width: Math.max(240, entry.figure.clientWidth - 16), height: 180,
        axes: [{ stroke: "#9aa3b2", grid: { stroke: "#262b36" } }, { stroke: "#9aa3b2", grid: { stroke: "#262b36" } }],
        series: [{}, ...chart.series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2,
          points: { show: true, size: 5 } }))],
      }, columns, entry.figure);
    }
    entry.figure.dataset.points = String(chart.series.reduce((n, s) => n + s.points.length, 0));
  }
}
