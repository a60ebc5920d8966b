// The console's router: #/ (jobs and upload), #/jobs/<id> (one job), #/ops (operations).
// Each view gets a context whose timers stop when the view changes.
import { loadConfig, signedInAs } from "./api.js";
import { esc } from "./format.js";
import * as jobPage from "./job.js";
import * as jobsPage from "./jobs.js";
import * as opsPage from "./ops.js";

let current = null;

class ViewClosed extends Error { constructor() { super("view closed"); this.name = "ViewClosed"; } }

function viewContext() {
  const timers = new Set();
  const closers = [];
  const ctx = {
    closed: false,
    every(ms, fn) {
      let busy = false;
      const id = setInterval(async () => {
        if (busy || ctx.closed) return;
        busy = true;
        try { await fn(); } catch (e) { console.warn(e); } finally { busy = false; }
      }, ms);
      timers.add(id);
    },
    stopTimers() { for (const id of timers) clearInterval(id); timers.clear(); },
    sleep: (ms) => new Promise((resolve, reject) => setTimeout(() => (ctx.closed ? reject(new ViewClosed()) : resolve()), ms)),
    onClose(fn) { closers.push(fn); },
    rerender: () => route(),
    close() { ctx.closed = true; ctx.stopTimers(); closers.forEach((fn) => fn()); },
  };
  return ctx;
}

async function route() {
  if (current) current.close();
  const ctx = (current = viewContext());
  const view = document.getElementById("view");
  const hash = location.hash.replace(/^#/, "") || "/";
  const job = /^\/jobs\/([0-9a-f]+)/.exec(hash);
  for (const link of document.querySelectorAll("[data-nav]")) {
    const active = (link.dataset.nav === "ops") === hash.startsWith("/ops");
    link.toggleAttribute("aria-current", active);
    if (active) link.setAttribute("aria-current", "page");
  }
  try {
    if (job) await jobPage.render(view, ctx, job[1]);
    else if (hash.startsWith("/ops")) await opsPage.render(view, ctx);
    else await jobsPage.render(view, ctx);
    document.getElementById("who").textContent = signedInAs() ? `Signed in as ${signedInAs()}` : "";
  } catch (e) {
    if (!ctx.closed) view.innerHTML = `<div class="errorbox" role="alert"><b>Could not load this page.</b> ${esc(e.message)}</div>`;
  }
}

window.addEventListener("hashchange", route);
loadConfig().then(route, (e) => {
  document.getElementById("view").innerHTML = `<div class="errorbox" role="alert">${esc(e.message)}</div>`;
});
