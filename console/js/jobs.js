// The jobs page: upload (drop or pick a file, settings, presigned POST with progress) and the
// live jobs list (status filter, refreshed every 2 s while shown).
import { api, uploadFile } from "./api.js";
import { age, bar, badge, bytes, esc, fileName } from "./format.js";

const STATUSES = ["", "queued", "processing", "complete", "failed", "canceled"];
let presets = null;

export async function render(view, ctx) {
  presets = presets || (await api("/presets")).presets;
  const filter = new URLSearchParams(location.hash.split("?")[1] || "").get("status") || "";
  view.innerHTML = `
    <h1>Jobs</h1>
    <section class="panel" aria-labelledby="upload-title">
      <h2 id="upload-title" style="margin-top:0">Upload a video</h2>
      <label class="drop" id="drop" tabindex="0">
        <input type="file" id="file" accept="video/*,.mkv,.ts,.mov">
        <span><b>Drop a video here</b> or press to choose a file</span>
      </label>
      <form class="settings" id="settings" aria-label="Job settings">
        <label>Preset <select name="preset">${presets.map((p) =>
          `<option value="${esc(p.name)}" title="${esc(p.description)}">${esc(p.name)}</option>`).join("")}</select></label>
        <label>Ladder (overrides the preset) <input name="ladder" placeholder="720:3000k,480:1500k"></label>
        <label>MP4 renditions <input name="mp4" placeholder="720p,360p"></label>
        <label>Priority <select name="priority"><option>normal</option><option>high</option></select></label>
        <label>Max resolution <select name="max_resolution" title="the tallest rung; above 1080p: web only">${
          maxResolutions(presets).map((r) => `<option>${esc(r)}</option>`).join("")}</select></label>
        <label>Webhook URL <input name="webhook_url" type="url" placeholder="https://example.com/hook"></label>
        <label>Audio tracks <input name="audio_tracks" placeholder="en,es or 0,2" title="languages or positions; all when empty"></label>
        <label class="inline"><input type="checkbox" name="audio"> Audio-only M4A</label>
        <label class="inline"><input type="checkbox" name="normalize_audio"> Normalize loudness</label>
      </form>
      <div id="upload-state" aria-live="polite" style="margin-top:1rem"></div>
    </section>
    <section aria-labelledby="list-title">
      <div class="job-head"><h2 id="list-title">Recent jobs</h2>
        <label class="inline" style="margin-left:auto">Status
          <select id="filter">${STATUSES.map((s) => `<option value="${s}" ${s === filter ? "selected" : ""}>${s || "all"}</option>`).join("")}</select>
        </label></div>
      <table><thead><tr><th>Status</th><th>Progress</th><th>Source</th><th class="num">Size</th><th>Uploaded</th><th>Job</th></tr></thead>
        <tbody id="jobs"><tr><td colspan="6" class="muted">Loading…</td></tr></tbody></table>
    </section>`;
  wireUpload(view, ctx);
  view.querySelector("#filter").onchange = (e) => { location.hash = e.target.value ? `#/?status=${e.target.value}` : "#/"; };
  const refresh = async () => {
    const listing = await api(`/jobs?limit=30${filter ? `&status=${filter}` : ""}`);
    const rows = await Promise.all(listing.jobs.map(async (job) => {
      // a summary has no progress: running jobs read theirs
      const progress = job.status === "complete" ? 100
        : job.status === "processing" || job.status === "queued" ? (await api(`/jobs/${job.job_id}`)).progress : 0;
      return { ...job, progress };
    }));
    view.querySelector("#jobs").innerHTML = rows.length ? rows.map((job) => `
      <tr data-job="${esc(job.job_id)}">
        <td>${badge(job.status)}${job.error ? ` <span class="error">${esc(job.error.code)}</span>` : ""}</td>
        <td>${bar(job.progress, job.status, `progress of ${fileName(job.source.key)}`)}</td>
        <td>${esc(fileName(job.source.key))}</td>
        <td class="num">${bytes(job.source.size)}</td>
        <td>${age(job.created_at)}</td>
        <td><a href="#/jobs/${esc(job.job_id)}" class="mono">${esc(job.job_id)}</a></td>
      </tr>`).join("") : `<tr><td colspan="6" class="muted">No jobs yet: drop a video above.</td></tr>`;
  };
  await refresh();
  ctx.every(2000, refresh);
}

// The max_resolution values any preset takes (GET /presets), the default (1080p) first.
function maxResolutions(list) {
  return [...new Set(list.flatMap((p) => p.max_resolutions || ["1080p"]))];
}

function settingsFrom(form) {
  const settings = { ladder: form.ladder.value.trim() || form.preset.value, priority: form.priority.value,
    max_resolution: form.max_resolution.value };
  const mp4 = form.mp4.value.split(",").map((s) => s.trim()).filter(Boolean);
  if (mp4.length || form.audio.checked) settings.outputs = { mp4, audio: form.audio.checked };
  if (form.webhook_url.value.trim()) settings.webhook_url = form.webhook_url.value.trim();
  if (form.normalize_audio.checked) settings.normalize_audio = true;  // -16 LUFS / -1 dBTP
  const tracks = form.audio_tracks.value.split(",").map((s) => s.trim()).filter(Boolean);
  if (tracks.length) settings.audio_tracks = tracks.map((s) => (/^\d+$/.test(s) ? Number(s) : s));  // positions as ints
  return settings;
}

function wireUpload(view, ctx) {
  const drop = view.querySelector("#drop");
  const input = view.querySelector("#file");
  const state = view.querySelector("#upload-state");
  const start = (file) => file && upload(file, settingsFrom(view.querySelector("#settings")), state, ctx);
  input.onchange = () => start(input.files[0]);
  drop.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } };
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); start(e.dataTransfer.files[0]); };
}

async function upload(file, settings, state, ctx) {
  const show = (html) => { state.innerHTML = html; };
  const started = performance.now();
  try {
    show(`<p>Preparing the upload of <b>${esc(file.name)}</b>…</p>`);
    const presigned = await api("/uploads", { method: "POST", body: {
      filename: file.name, content_type: file.type.startsWith("video/") ? file.type : "video/mp4", ...settings } });
    await uploadFile(presigned, file, (sent, total) => show(`
      <p>Uploading <b>${esc(file.name)}</b>: ${bytes(sent)} of ${bytes(total)}</p>
      ${bar((100 * sent) / total, "", "upload progress")}`));
    show(`<p>Uploaded <b>${esc(file.name)}</b> in ${((performance.now() - started) / 1000).toFixed(1)} s; waiting for its job…</p>`);
    for (;;) {  // S3's event reaches ingest within seconds: the job id is known once S3 has the object
      const status = await api(`/uploads/${presigned.upload_id}`);
      if (status.job_status) { location.hash = `#/jobs/${status.job_id}`; return; }
      await ctx.sleep(500);
    }
  } catch (e) {
    if (e.name === "ViewClosed") return;
    show(`<div class="errorbox" role="alert"><b>Upload failed.</b> ${esc(e.message)}</div>`);
  }
}
