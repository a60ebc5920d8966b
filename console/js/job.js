// The job page: status, poster, a progress bar per rendition (never going back), the player
// (hls.js, level, audio and subtitle switching, sprite previews from the thumbnails WebVTT track
// on the seek bar), measured renditions (audio and subtitle ones with their language), MP4 links,
// the error of a failed job, retry and cancel.
import { api } from "./api.js";
import { age, badge, bar, bitrate, bytes, clock, esc, fileName } from "./format.js";

const ENDED = new Set(["complete", "failed", "canceled"]);

export async function render(view, ctx, jobId) {
  view.innerHTML = `
    <div class="job-head"><h1 id="title">Job <span class="mono">${esc(jobId)}</span></h1>
      <span id="status"></span>
      <div class="actions"><button id="retry" hidden>Retry failed renditions</button>
        <button id="cancel" class="danger" hidden>Cancel</button></div></div>
    <p id="summary" class="muted"></p>
    <p id="conversions" class="muted"></p>
    <div id="error"></div>
    <div class="media">
      <section class="player panel" aria-label="Player">
        <video id="video" muted playsinline preload="auto" aria-label="Job output"></video>
        <div class="seek"><div class="preview" id="preview"><span></span></div>
          <input id="seek" type="range" min="0" max="0" step="0.1" value="0" aria-label="Seek" disabled></div>
        <div class="controls"><button id="play" disabled>Play</button><span id="time" class="mono">0:00 / 0:00</span>
          <label class="inline">Quality <select id="level" disabled><option value="-1">Auto</option></select></label>
          <label class="inline">Audio <select id="audio" disabled></select></label>
          <label class="inline">Subtitles <select id="subtitles" disabled><option value="-1">Off</option></select></label>
          <span id="playing" class="muted" aria-live="polite">The player starts when the first chunk is published.</span></div>
      </section>
      <aside>
        <div class="poster panel"><h2 style="margin-top:0">Poster</h2><div id="poster" class="muted">Waiting for ThumbnailReady…</div></div>
        <div class="panel"><h2 style="margin-top:0">Progress</h2><div id="progress"></div></div>
      </aside>
    </div>
    <h2>Renditions</h2>
    <table><thead><tr><th>Rendition</th><th>Status</th><th>Resolution</th><th>Codecs</th><th class="num">Average</th>
      <th class="num">Peak</th><th class="num">PSNR (dB)</th><th class="num">SSIM</th><th>Playlist</th></tr></thead>
      <tbody id="renditions"></tbody></table>
    <p id="skipped" class="muted"></p>
    <h2>Downloads</h2><div id="files" class="muted">MP4 and M4A files are made at completion when the job asks for them.</div>`;
  const seen = new Map();  // rendition -> highest progress shown (a bar never goes back)
  let player = null;
  const refresh = async () => {
    const job = await api(`/jobs/${jobId}`);
    update(view, job, seen);
    wireActions(view, job, ctx);
    const master = job.outputs && job.outputs.master_playlist && job.outputs.master_playlist.url;
    if (master && !player) player = attachPlayer(view, master, ctx);
    if (!master && ENDED.has(job.status)) {  // nothing was published: no player to show
      view.querySelector(".player").innerHTML = `<p class="muted">No output to play: the job ${esc(job.status)} before its first chunk was published.</p>`;
    }
    // the track grows with every published chunk: read it again when a sprite sheet is added,
    // and once more when the job has ended (its last cues may be written after the last sheet
    // is listed); a read that failed is tried again at the next refresh, even after the end
    const sheets = `${(job.outputs && job.outputs.sprites || []).length}/${job.status}`;
    const previews = player && player.loadPreviews && job.outputs && job.outputs.thumbnails_vtt;
    if (previews && sheets !== player.sheets) {
      player.sheets = sheets;
      await player.loadPreviews(job.outputs.thumbnails_vtt.url);
    }
    return ENDED.has(job.status) && (!previews || player.sheets === sheets);
  };
  if (!(await refresh())) ctx.every(1000, async () => { if (await refresh()) ctx.stopTimers(); });
}

function update(view, job, seen) {
  view.querySelector("#status").innerHTML = badge(job.status);
  const probe = job.probe || {};
  view.querySelector("#summary").innerHTML = `${esc(fileName(job.source.key))} · ${bytes(job.source.size)}` +
    (probe.width ? ` · ${probe.width}×${probe.height} ${esc(probe.video_codec || "")} · ${clock(probe.duration)}` : "") +
    ` · uploaded ${age(job.uploaded_at || job.created_at)}` +
    (job.playable_at ? ` · playable ${seconds(job.uploaded_at || job.created_at, job.playable_at)} after upload` : "") +
    (job.watchable_at ? ` · watchable without a stall ${seconds(job.uploaded_at || job.created_at, job.watchable_at)} after upload` : "") +
    (job.completed_at ? ` · complete in ${seconds(job.uploaded_at || job.created_at, job.completed_at)}` : "") +
    (job.dropped_rungs && job.dropped_rungs.length ? ` · not upscaled: ${esc(job.dropped_rungs.join(", "))}` : "");
  view.querySelector("#conversions").textContent = (job.conversions || []).length ?
    `Picture: ${(probe.picture && probe.picture.hdr_format) || "SDR"}; ${job.conversions.join("; ")}` : "";
  view.querySelector("#error").innerHTML = job.error ? `<div class="errorbox" role="alert">
    <b class="mono" id="error-code">${esc(job.error.code)}</b> <span id="error-message">${esc(job.error.message)}</span></div>` : "";
  const poster = job.outputs && job.outputs.poster && job.outputs.poster.url;
  const box = view.querySelector("#poster");
  if (poster && !box.querySelector("img")) box.innerHTML = `<img src="${esc(poster)}" alt="Poster frame of ${esc(fileName(job.source.key))}">`;
  const rows = (job.renditions || []).map((r) => {
    const shown = Math.max(seen.get(r.name) || 0, job.status === "complete" ? 100 : Number(r.progress) || 0);
    seen.set(r.name, shown);
    return `<div style="margin-bottom:.5rem" data-rendition="${esc(r.name)}"><div class="job-head" style="gap:.5rem">
      <span>${esc(r.name)}</span><span class="muted mono" style="margin-left:auto">${shown.toFixed(0)} %</span></div>
      ${bar(shown, r.status, `${r.name} progress`)}</div>`;
  });
  view.querySelector("#progress").innerHTML = rows.join("") || `<p class="muted">${esc(job.status)}</p>`;
  const variants = (job.outputs && job.outputs.variants) || {};
  const subtitles = (job.outputs && job.outputs.subtitles) || {};  // a text rendition's whole .vtt
  view.querySelector("#renditions").innerHTML = (job.renditions || []).map((r) => `<tr data-row="${esc(r.name)}">
    <td>${renditionName(r)}${
      r.loudness_out ? ` · ${Number(r.loudness_out.integrated_lufs).toFixed(1)} LUFS` : ""}</td><td>${badge(r.status)}</td>
    <td>${r.width ? `${r.width}×${r.height}` : r.channels ? `${r.channels} ch` : r.cues != null ? `${Number(r.cues)} cues` : "–"}</td>
    <td class="mono">${esc(r.codecs || (r.kind === "text" ? "WebVTT" : "–"))}</td><td class="num">${bitrate(r.average_bandwidth)}</td>
    <td class="num">${bitrate(r.peak_bandwidth)}</td><td class="num">${r.psnr_y != null ? Number(r.psnr_y).toFixed(2) : "–"}</td>
    <td class="num">${r.ssim_y != null ? Number(r.ssim_y).toFixed(4) : "–"}</td>
    <td>${variants[r.name] && variants[r.name].url ? `<a href="${esc(variants[r.name].url)}">index.m3u8</a>` : "–"}${
      subtitles[r.name] && subtitles[r.name].url ? ` · <a href="${esc(subtitles[r.name].url)}" data-vtt="${esc(r.name)}">${
        esc(fileName(subtitles[r.name].url))}</a>` : ""}</td></tr>`).join("");
  const skipped = job.skipped_subtitles || [];  // source subtitle tracks not published (bitmap formats ...)
  view.querySelector("#skipped").innerHTML = skipped.length ? `Subtitle tracks not published: ${skipped.map((t) =>
    `track ${esc(t.position)} (${esc(t.codec)}${t.language && t.language !== "und" ? `, ${esc(t.language)}` : ""}): ${
      esc(t.reason)}`).join("; ")}` : "";
  const files = Object.entries((job.outputs && job.outputs.files) || {});
  if (files.length) {
    view.querySelector("#files").innerHTML = `<ul>${files.map(([name, f]) =>
      `<li><a href="${esc(f.url)}" download>${esc(name)}</a> <span class="muted">${bytes(f.bytes)}${f.duration ? ` · ${clock(f.duration)}` : ""}</span></li>`).join("")}</ul>`;
  }
}

// "audio_1 · Spanish (es)", "subtitles · French (fr) captions forced": a rendition by name, and
// an audio or text one by label and language, with the captions (hearing impaired) and forced marks.
function renditionName(r) {
  if (r.kind !== "audio" && r.kind !== "text") return esc(r.name);
  const marks = r.kind === "text" ? [r.hearing_impaired && "captions", r.forced && "forced"].filter(Boolean) : [];
  return `${esc(r.name)}${r.label ? ` · ${esc(r.label)}${r.language ? ` (${esc(r.language)})` : ""}` : ""}` +
    marks.map((m) => ` <span class="badge" data-mark="${m}">${m}</span>`).join("");
}

// An hls.js audio or subtitle track (EXT-X-MEDIA) by NAME and LANGUAGE: "French (fr)".
const trackName = (t) => `${esc(t.name)}${t.lang && t.lang !== "und" ? ` (${esc(t.lang)})` : ""}`;

function seconds(from, to) {
  return `${((Date.parse(to) - Date.parse(from)) / 1000).toFixed(1)} s`;
}

function wireActions(view, job, ctx) {
  const retry = view.querySelector("#retry");
  const cancel = view.querySelector("#cancel");
  retry.hidden = job.status !== "failed";
  cancel.hidden = ENDED.has(job.status);
  const act = (button, call) => async () => {
    button.disabled = true;
    try { await call(); ctx.rerender(); } catch (e) {
      view.querySelector("#error").innerHTML = `<div class="errorbox" role="alert">${esc(e.message)}</div>`;
    } finally { button.disabled = false; }
  };
  retry.onclick = act(retry, () => api(`/jobs/${job.job_id}/retry`, { method: "POST" }));
  cancel.onclick = act(cancel, () => api(`/jobs/${job.job_id}`, { method: "DELETE" }));
}

function attachPlayer(view, master, ctx) {
  const video = view.querySelector("#video");
  const seek = view.querySelector("#seek");
  const level = view.querySelector("#level");
  const playing = view.querySelector("#playing");
  const play = view.querySelector("#play");
  const player = { previews: null, sheets: 0 };
  let hls = null;
  if (window.Hls && window.Hls.isSupported()) {
    hls = new window.Hls({ capLevelToPlayerSize: false });
    hls.loadSource(master);
    hls.attachMedia(video);
    hls.on(window.Hls.Events.MANIFEST_PARSED, (_e, data) => {
      level.innerHTML = `<option value="-1">Auto</option>` + data.levels.map((l, i) =>
        `<option value="${i}">${l.height}p · ${bitrate(l.bitrate)}</option>`).join("");
      level.disabled = false;
    });
    hls.on(window.Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      const l = hls.levels[data.level];
      playing.textContent = `Playing ${l.height}p (${bitrate(l.bitrate)})`;
      playing.dataset.height = l.height;
    });
    hls.on(window.Hls.Events.ERROR, (_e, data) => { if (data.fatal) playing.textContent = `Player error: ${data.details}`; });
    level.onchange = () => { hls.currentLevel = Number(level.value); };
    const audio = view.querySelector("#audio");  // the job's audio renditions (EXT-X-MEDIA), by name and language
    hls.on(window.Hls.Events.AUDIO_TRACKS_UPDATED, (_e, data) => {
      audio.innerHTML = data.audioTracks.map((t, i) =>
        `<option value="${i}" data-lang="${esc(t.lang || "")}">${trackName(t)}</option>`).join("");
      audio.value = String(hls.audioTrack);
      audio.disabled = data.audioTracks.length < 2;
    });
    hls.on(window.Hls.Events.AUDIO_TRACK_SWITCHED, (_e, data) => {
      const t = hls.audioTracks[data.id];
      audio.value = String(data.id);
      audio.dataset.playing = t ? t.lang || "" : "";
    });
    audio.onchange = () => { hls.audioTrack = Number(audio.value); };
    const subtitles = view.querySelector("#subtitles");  // the job's text renditions (EXT-X-MEDIA TYPE=SUBTITLES)
    hls.on(window.Hls.Events.SUBTITLE_TRACKS_UPDATED, (_e, data) => {
      subtitles.innerHTML = `<option value="-1">Off</option>` + data.subtitleTracks.map((t, i) =>
        `<option value="${i}" data-lang="${esc(t.lang || "")}">${trackName(t)}</option>`).join("");
      subtitles.value = String(hls.subtitleTrack);
      subtitles.disabled = !data.subtitleTracks.length;
    });
    hls.on(window.Hls.Events.SUBTITLE_TRACK_SWITCH, (_e, data) => {
      const t = hls.subtitleTracks[data.id];
      subtitles.value = String(t ? data.id : -1);
      subtitles.dataset.showing = t ? t.lang || "" : "";
    });
    subtitles.onchange = () => {  // hls.js shows the chosen track's cues on the video (native text tracks)
      const id = Number(subtitles.value);
      if (id >= 0) hls.subtitleDisplay = true;
      hls.subtitleTrack = id;
    };
    ctx.onClose(() => hls.destroy());
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = master;  // Safari plays HLS natively (no level choice)
  } else {
    playing.textContent = "This browser cannot play HLS.";
    return player;
  }
  play.disabled = false;
  play.onclick = () => (video.paused ? video.play() : video.pause());
  video.onplay = () => { play.textContent = "Pause"; };
  video.onpause = () => { play.textContent = "Play"; };
  video.ondurationchange = () => { if (isFinite(video.duration)) { seek.max = video.duration; seek.disabled = false; } };
  video.ontimeupdate = () => {
    if (document.activeElement !== seek) seek.value = video.currentTime;
    view.querySelector("#time").textContent = `${clock(video.currentTime)} / ${clock(video.duration)}`;
  };
  seek.oninput = () => { video.currentTime = Number(seek.value); };
  const preview = view.querySelector("#preview");
  const showPreview = (time, x) => {
    const cue = player.previews && player.previews.find((c) => time >= c.start && time < c.end);
    if (!cue) { preview.style.display = "none"; return; }
    preview.style.cssText = `display:block;left:${x}px;width:${cue.w}px;height:${cue.h}px;` +
      `background-image:url("${cue.url}");background-position:-${cue.x}px -${cue.y}px`;
    preview.dataset.time = time.toFixed(1);
    preview.querySelector("span").textContent = clock(time);
  };
  seek.onmousemove = (e) => {
    const box = seek.getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (e.clientX - box.left) / box.width));
    showPreview(fraction * (Number(seek.max) || 0), e.clientX - box.left);
  };
  seek.onmouseleave = () => { preview.style.display = "none"; };
  player.loadPreviews = async (url) => {
    try { player.previews = parseThumbnails(await (await fetch(url, { cache: "no-store" })).text(), url); } catch {
      player.sheets = null;  // read it again at the next refresh
    }
  };
  return player;
}

/** WebVTT thumbnail cues ("sprite.jpg#xywh=x,y,w,h") -> [{start, end, url, x, y, w, h}] (s, pixels). */
export function parseThumbnails(text, base) {
  const time = (t) => t.split(":").reduce((acc, part) => acc * 60 + Number(part), 0);
  const cues = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.split(/\r?\n/);
    const at = lines.findIndex((l) => l.includes("-->"));
    if (at < 0 || !lines[at + 1]) continue;
    const [from, to] = lines[at].split("-->").map((s) => time(s.trim().split(" ")[0]));
    const [file, fragment] = lines[at + 1].trim().split("#xywh=");
    const [x, y, w, h] = (fragment || "0,0,0,0").split(",").map(Number);
    cues.push({ start: from, end: to, url: new URL(file, base).href, x, y, w, h });
  }
  return cues;
}
