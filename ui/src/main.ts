// The nanodex window: left bar, projects (drop / pick / recent), graph with search and side panel, progress,
// status bar and log. All work happens in the app's Rust commands; this file only wires views to them.
import "./style.css";
import iconUrl from "../../icons/nanodex.svg";
import { getCurrentWebview } from "@tauri-apps/api/webview";
import { open as openDialog } from "@tauri-apps/plugin-dialog";
import { api, events } from "./api";
import { ago, baseName, count, dropTarget, duration, escapeHtml as h, eta, stageName } from "./format";
import { GraphCanvas, EDGE_COLORS } from "./graph";
import { EDGE_KINDS, GraphModel, clip, defaultFilters, initialExpansion, type Filters, type NodeEl } from "./model";
import { prose, renderPanel } from "./panel";
import type { LogEntry, ProjectEntry, ProjectPayload, SearchPayload } from "./types";

const app = document.getElementById("app")!;
app.innerHTML = `
<div class="shell">
  <nav class="sidebar">
    <div class="brand"><img src="${iconUrl}" alt=""><span>nanodex</span></div>
    <button class="tab active" data-tab="projects">Projects</button>
    <button class="tab" data-tab="graph" id="tab-graph" disabled>Graph</button>
    <button class="tab" data-tab="train" disabled title="Fine-tuning arrives in a later release">Train</button>
    <button class="tab" data-tab="chat" disabled title="Chat arrives in a later release">Chat</button>
    <button class="tab" data-tab="export" disabled title="Adapter export arrives in a later release">Export</button>
  </nav>
  <main>
    <section class="view" id="view-projects">
      <div id="dropzone" class="dropzone">
        <div class="big">Drop a repository folder here</div>
        <div class="sub">nanodex extracts its code graph (Python, Java, C++, C, JavaScript, TypeScript) and builds its brain.</div>
        <div class="row">
          <button id="pick" class="primary">Choose folder…</button>
          <form id="import-form" class="pathform">
            <input id="import-path" placeholder="or paste a path: /home/me/src/project" spellcheck="false" autocomplete="off">
            <button id="import-btn" type="submit">Import</button>
          </form>
        </div>
      </div>
      <div id="message" class="message" hidden></div>
      <h2>Recent projects</h2>
      <ul id="recent" class="recent"></ul>
    </section>
    <section class="view" id="view-graph" hidden>
      <div class="toolbar">
        <div class="search">
          <input id="search" placeholder="Search symbols, or ask: “parse JSON from a string”" spellcheck="false" autocomplete="off">
          <div id="results" class="results" hidden></div>
        </div>
        <div id="filters" class="filters"></div>
        <button id="fit" title="Fit the graph to the window">Fit</button>
        <button id="collapse" title="Collapse every package">Collapse all</button>
        <button id="reimport" title="Extract again (only changed files are re-parsed)">Re-import</button>
      </div>
      <div class="canvas-wrap">
        <div id="graph" data-ready="false"></div>
        <div id="legend" class="legend"></div>
        <aside id="panel" class="panel" hidden></aside>
      </div>
    </section>
    <div id="progress" class="progress" hidden>
      <div class="card">
        <div class="stage" id="p-stage">Starting…</div>
        <div class="bar"><div id="p-bar"></div></div>
        <div class="pinfo"><span id="p-count"></span><span id="p-rate"></span><span id="p-eta"></span></div>
        <div class="pmsg" id="p-msg"></div>
        <button id="cancel">Cancel</button>
      </div>
    </div>
  </main>
  <footer class="status">
    <span id="s-workspace">No project open</span>
    <span id="s-counts"></span>
    <span id="s-time"></span>
    <span class="spacer"></span>
    <button id="s-log" class="link">Log</button>
  </footer>
  <div id="log" class="log" hidden><header>Log <button class="close" id="log-close">×</button></header><ul></ul></div>
</div>`;

const $ = <T extends HTMLElement = HTMLElement>(sel: string) => document.querySelector<T>(sel)!;

const state = {
  project: null as ProjectPayload | null,
  model: null as GraphModel | null,
  expanded: new Set<string>(),
  filters: defaultFilters(),
  positions: {} as Record<string, [number, number]>,
  job: null as number | null,
  logs: [] as LogEntry[],
  recent: [] as ProjectEntry[],
  importStarted: 0,
};

const canvas = new GraphCanvas($("#graph"), {
  onSelect: (id, node) => void select(id, node),
  onToggle: (id) => toggle(id),
  onBackground: () => canvas.clearFocus(),
  onLayout: (positions) => {
    state.positions = { ...state.positions, ...positions };
    saveLayoutSoon();
  },
});

// ---- log and messages -------------------------------------------------------------------------------------
function addLog(entry: LogEntry) {
  state.logs.push(entry);
  const li = document.createElement("li");
  li.className = entry.level;
  li.textContent = `${new Date(entry.time_ms).toLocaleTimeString()}  ${entry.message}`;
  $("#log ul").prepend(li);
  const errors = state.logs.filter((l) => l.level === "error").length;
  $("#s-log").textContent = errors ? `Log · ${errors} error${errors > 1 ? "s" : ""}` : "Log";
  $("#s-log").classList.toggle("has-errors", errors > 0);
}
const logError = (message: string) => addLog({ level: "error", message, time_ms: Date.now() });

/** Shows a message on the projects page; errors also go to the log unless the app already logged them. */
function message(text: string, level: "error" | "info" = "error", logged = false) {
  const m = $("#message");
  m.hidden = !text;
  m.textContent = text;
  m.className = `message ${level}`;
  if (text && level === "error" && !logged) logError(text);
}

// ---- tabs -------------------------------------------------------------------------------------------------
function showTab(tab: "projects" | "graph") {
  document.querySelectorAll<HTMLButtonElement>(".tab").forEach((b) => b.classList.toggle("active", b.dataset.tab === tab));
  $("#view-projects").hidden = tab !== "projects";
  $("#view-graph").hidden = tab !== "graph";
  if (tab === "graph") canvas.cy.resize();
}
document.querySelectorAll<HTMLButtonElement>(".tab").forEach((b) =>
  b.addEventListener("click", () => {
    if (b.dataset.tab === "projects" || b.dataset.tab === "graph") showTab(b.dataset.tab);
  }),
);

// ---- projects ---------------------------------------------------------------------------------------------
function renderRecent() {
  const ul = $("#recent");
  if (!state.recent.length) {
    ul.innerHTML = `<li class="empty">No projects yet. Drop a folder above to import your first repository.</li>`;
    return;
  }
  const now = Date.now();
  ul.innerHTML = state.recent
    .map((p) => {
      const c = p.counts;
      const facts = [`${count(c.module ?? 0)} modules`, `${count(c.function ?? 0)} functions`, p.has_brain ? "brain" : "no brain"];
      return `<li><button class="open" data-repo="${h(p.repo)}"><span class="name">${h(p.name)}</span>
        <span class="path">${h(p.repo)}</span><span class="facts">${facts.map(h).join(" · ")} · extracted ${h(ago(p.extracted_at_ms, now))}</span></button>
        <button class="forget link" data-forget="${h(p.repo)}" title="Remove from this list (keeps its workspace)">Remove</button></li>`;
    })
    .join("");
}

async function refreshRecent() {
  state.recent = await api.listProjects();
  renderRecent();
}

$("#recent").addEventListener("click", async (e) => {
  const t = e.target as HTMLElement;
  const forget = t.closest<HTMLElement>("[data-forget]");
  if (forget) {
    await api.forgetProject(forget.dataset.forget!).catch((err) => message(String(err)));
    return refreshRecent();
  }
  const open = t.closest<HTMLElement>("[data-repo]");
  if (!open) return;
  try {
    const t0 = performance.now();
    const p = await api.openProject(open.dataset.repo!);
    await showProject(p, true);
    addLog({ level: "info", message: `opened ${p.entry.name} in ${duration(performance.now() - t0)}`, time_ms: Date.now() });
  } catch (err) {
    message(String(err));
  }
});

async function importPath(path: string) {
  message("");
  if (state.job !== null) return message("An import is already running.");
  try {
    await api.checkPath(path);
    state.importStarted = performance.now();
    state.job = await api.startImport(path);
    showProgress({ stage: "walk", done: 0, total: null, rate: 0, message: path });
  } catch (err) {
    message(String(err));
  }
}

$("#import-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const path = $<HTMLInputElement>("#import-path").value.trim();
  if (!path) return message("Type or paste the path of a repository folder.");
  void importPath(path);
});
$("#pick").addEventListener("click", async () => {
  try {
    const picked = await openDialog({ directory: true, multiple: false, title: "Choose a repository folder" });
    if (typeof picked === "string") void importPath(picked);
  } catch (err) {
    message(String(err));
  }
});
$("#reimport").addEventListener("click", () => {
  if (state.project) void importPath(state.project.entry.repo);
});

void getCurrentWebview().onDragDropEvent((event) => {
  const zone = $("#dropzone");
  const p = event.payload;
  if (p.type === "enter" || p.type === "over") {
    zone.classList.add("hover");
    if ($("#view-projects").hidden) showTab("projects");
  } else if (p.type === "leave") {
    zone.classList.remove("hover");
  } else if (p.type === "drop") {
    zone.classList.remove("hover");
    const target = dropTarget(p.paths);
    if ("error" in target) return message(target.error);
    void importPath(target.path);
  }
});

// ---- progress ---------------------------------------------------------------------------------------------
function showProgress(p: { stage: string; done: number; total: number | null; rate: number; message: string }) {
  if ($("#progress").hidden) $("#progress").classList.remove("compact");
  $("#progress").hidden = false;
  $("#p-stage").textContent = stageName(p.stage);
  const frac = p.total ? Math.min(1, p.done / p.total) : null;
  const bar = $("#p-bar");
  bar.style.width = frac === null ? "100%" : `${(frac * 100).toFixed(1)}%`;
  bar.classList.toggle("indeterminate", frac === null);
  $("#p-count").textContent = p.total ? `${count(p.done)} / ${count(p.total)}` : p.done ? count(p.done) : "";
  $("#p-rate").textContent = p.rate > 0 ? `${count(Math.round(p.rate))}/s` : "";
  const left = eta(p.done, p.total, p.rate);
  $("#p-eta").textContent = left !== null ? `ETA ${duration(left * 1000)}` : "";
  $("#p-msg").textContent = p.message;
}
$("#cancel").addEventListener("click", async () => {
  $("#p-stage").textContent = "Cancelling…";
  await api.cancelImport();
});

void events.onProgress((p) => {
  if (p.job === state.job) showProgress(p);
});
void events.onGraphReady(async () => {
  const p = await api.currentProject();
  if (!p) return;
  // The graph is usable now: shrink the progress card to a corner while the brain is built behind it.
  $("#progress").classList.add("compact");
  const first = !state.project || state.project.entry.repo !== p.entry.repo;
  await showProject(p, first);
  const ms = performance.now() - state.importStarted;
  $("#graph").dataset.firstGraphMs = String(Math.round(ms));
  addLog({ level: "info", message: `graph of ${p.entry.name} ready in ${duration(ms)}; building the brain…`, time_ms: Date.now() });
});
void events.onFinished(async (f) => {
  if (f.job !== state.job) return;
  state.job = null;
  $("#progress").hidden = true;
  if (f.ok) {
    const p = await api.currentProject();
    if (p) {
      await showProject(p, !state.project || state.project.entry.repo !== p.entry.repo);
      canvas.fit(); // the brain's capabilities arrived: show the whole result of the import
    }
    addLog({
      level: "info",
      message: `imported ${baseName(f.repo)} in ${duration(f.elapsed_ms)}${f.cancelled ? " (brain cancelled)" : ""}`,
      time_ms: Date.now(),
    });
    $("#graph").dataset.importMs = String(f.elapsed_ms);
  } else if (f.cancelled) {
    message("Import cancelled. The previous graph (if any) is unchanged.", "info");
  } else {
    showTab("projects");
    message(f.error ?? "The import failed.", "error", true);
  }
  await refreshRecent();
});
void events.onLog(addLog);

// ---- graph ------------------------------------------------------------------------------------------------
function renderFilters() {
  const f = state.filters;
  const chip = (key: string, label: string, on: boolean, color?: string) =>
    `<label class="chip ${on ? "on" : ""}"><input type="checkbox" data-filter="${key}" ${on ? "checked" : ""}>` +
    `${color ? `<i style="background:${color}"></i>` : ""}${h(label)}</label>`;
  $("#filters").innerHTML =
    EDGE_KINDS.map((k) => chip(k, k.replace("_", " "), f.kinds.has(k), EDGE_COLORS[k])).join("") +
    chip("capabilities", "capabilities", f.capabilities, EDGE_COLORS.provides) +
    chip("tests", "tests", f.tests);
}
$("#filters").addEventListener("change", (e) => {
  const input = e.target as HTMLInputElement;
  const key = input.dataset.filter!;
  const f: Filters = state.filters;
  if (key === "capabilities") f.capabilities = input.checked;
  else if (key === "tests") f.tests = input.checked;
  else if (input.checked) f.kinds.add(key);
  else f.kinds.delete(key);
  renderFilters();
  void draw(false);
});

function renderLegend() {
  const langs = [...new Set(state.project?.view.modules.map((m) => m.lang) ?? [])].filter(Boolean);
  const colors: Record<string, string> = { python: "#4b8bbe", java: "#e76f00", cpp: "#f34b7d", c: "#8e9aaf", javascript: "#e6c84f", typescript: "#3178c6" };
  $("#legend").innerHTML =
    `<span><i class="pkg"></i>package</span>` +
    langs.map((l) => `<span><i style="background:${colors[l] ?? "#94a3b8"}"></i>${h(l)} module</span>`).join("") +
    `<span><i class="cap"></i>capability</span><span><i class="ext"></i>external</span>`;
}

let drawing: Promise<void> = Promise.resolve();
async function draw(fit: boolean) {
  if (!state.model) return;
  const graphEl = $("#graph");
  graphEl.dataset.ready = "false";
  const els = state.model.elements(state.expanded, state.filters);
  drawing = drawing.then(() => canvas.render(els, state.positions, fit));
  await drawing;
  graphEl.dataset.ready = "true";
  graphEl.dataset.nodes = String(els.nodes.length);
  graphEl.dataset.edges = String(els.edges.length);
  if (els.droppedEdges) addLog({ level: "info", message: `showing the ${els.edges.length} heaviest edges (${els.droppedEdges} lighter ones hidden; expand a package to see more)`, time_ms: Date.now() });
}

async function showProject(p: ProjectPayload, fresh: boolean) {
  state.project = p;
  state.model = new GraphModel(p.view);
  if (fresh) {
    state.positions = { ...p.layout.positions };
    const known = p.layout.expanded.filter((id) => state.model!.has(id));
    state.expanded = known.length || Object.keys(p.layout.positions).length ? new Set(known) : initialExpansion(state.model);
    $("#panel").hidden = true;
  }
  $<HTMLButtonElement>("#tab-graph").disabled = false;
  showTab("graph");
  renderFilters();
  renderLegend();
  renderStatus();
  await draw(fresh);
}

function renderStatus() {
  const p = state.project;
  if (!p) return;
  const c = p.view.counts;
  $("#s-workspace").textContent = `${p.entry.name} — ${p.entry.workspace}`;
  $("#s-workspace").title = p.entry.repo;
  $("#s-counts").textContent =
    `${count(c.package ?? 0)} packages · ${count(c.module ?? 0)} modules · ${count(c.class ?? 0)} classes · ` +
    `${count(c.function ?? 0)} functions · ${count(p.view.edges.length)} module edges · ` +
    `${p.view.capabilities.length ? `${count(p.view.capabilities.length)} capabilities` : "no brain yet"}`;
  $("#s-time").textContent = `extracted ${ago(p.entry.extracted_at_ms, Date.now())}`;
}
setInterval(renderStatus, 30_000);

function toggle(id: string) {
  if (state.expanded.has(id)) {
    for (const e of [...state.expanded]) if (e === id || state.model!.ancestors(e).includes(id)) state.expanded.delete(e);
  } else state.expanded.add(id);
  void draw(false).then(saveLayoutSoon);
}

let saveTimer: number | undefined;
function saveLayoutSoon() {
  clearTimeout(saveTimer);
  saveTimer = window.setTimeout(() => {
    if (!state.project) return;
    api.saveLayout({ positions: state.positions, expanded: [...state.expanded] }).catch((e) => logError(String(e)));
  }, 400);
}

$("#fit").addEventListener("click", () => canvas.fit());
$("#collapse").addEventListener("click", () => {
  state.expanded.clear();
  void draw(true).then(saveLayoutSoon);
});

async function select(id: string, node?: NodeEl) {
  if (node?.kind === "group") return;
  await showDetail(id, false);
}

/** Opens `id` in the panel; with `focus`, makes its module visible and centres the graph on it. */
async function showDetail(id: string, focus: boolean) {
  try {
    const d = await api.nodeDetail(id);
    const panel = $("#panel");
    panel.innerHTML = renderPanel(d);
    panel.hidden = false;
    panel.dataset.node = id;
    panel.scrollTop = 0;
    const target = d.node.module ?? (state.model?.has(id) ? id : null);
    if (focus && target && state.model) {
      const before = state.expanded.size;
      state.expanded = state.model.expandTo(target, state.expanded);
      if (state.expanded.size !== before) {
        await draw(false);
        saveLayoutSoon();
      }
      canvas.focus(target);
    }
  } catch (err) {
    logError(String(err));
  }
}

$("#panel").addEventListener("click", (e) => {
  const t = e.target as HTMLElement;
  if (t.closest("[data-close]")) {
    $("#panel").hidden = true;
    canvas.clearFocus();
    return;
  }
  const a = t.closest<HTMLElement>("[data-node]");
  if (a) {
    e.preventDefault();
    void showDetail(a.dataset.node!, true);
  }
});

// ---- search -----------------------------------------------------------------------------------------------
let searchSeq = 0;
let searchTimer: number | undefined;
let lastResults: { id: string; module: string | null }[] = [];
const searchInput = $<HTMLInputElement>("#search");

function renderResults(r: SearchPayload) {
  const box = $("#results");
  const rows: string[] = [];
  lastResults = [];
  for (const s of r.symbols) {
    lastResults.push({ id: s.id, module: s.module });
    rows.push(`<button class="search-result" data-i="${lastResults.length - 1}"><span class="badge t-${h(s.type)}">${h(s.type)}</span>
      <span class="rname">${h(s.qname)}</span><span class="where">${h(s.path)}${s.line ? `:${s.line}` : ""}</span></button>`);
  }
  if (r.brain.length) rows.push(`<div class="rhead">From the brain</div>`);
  for (const b of r.brain) {
    lastResults.push({ id: b.target ?? b.id, module: b.module });
    rows.push(`<button class="search-result brain" data-i="${lastResults.length - 1}"><span class="badge t-${h(b.type)}">${h(b.type)}</span>
      <span class="rname">${h(b.name)}</span><span class="rsum">${prose(clip(b.summary, 160))}</span></button>`);
  }
  for (const n of r.notes) rows.push(`<div class="rnote">${h(n)}</div>`);
  if (!rows.length) rows.push(`<div class="rnote">No match.</div>`);
  box.innerHTML = rows.join("");
  box.hidden = false;
}

searchInput.addEventListener("input", () => {
  clearTimeout(searchTimer);
  const q = searchInput.value.trim();
  if (!q) {
    $("#results").hidden = true;
    return;
  }
  searchTimer = window.setTimeout(async () => {
    const seq = ++searchSeq;
    try {
      const r = await api.search(q, 12);
      if (seq === searchSeq) renderResults(r);
    } catch (err) {
      logError(String(err));
    }
  }, 140);
});
searchInput.addEventListener("keydown", (e) => {
  if (e.key === "Escape") $("#results").hidden = true;
  if (e.key === "Enter" && lastResults.length) pick(0);
});
$("#results").addEventListener("click", (e) => {
  const b = (e.target as HTMLElement).closest<HTMLElement>("[data-i]");
  if (b) pick(Number(b.dataset.i));
});
document.addEventListener("click", (e) => {
  if (!(e.target as HTMLElement).closest(".search")) $("#results").hidden = true;
});

function pick(i: number) {
  const r = lastResults[i];
  if (!r) return;
  $("#results").hidden = true;
  void showDetail(r.id, true);
}

// ---- log view ---------------------------------------------------------------------------------------------
$("#s-log").addEventListener("click", () => ($("#log").hidden = !$("#log").hidden));
$("#log-close").addEventListener("click", () => ($("#log").hidden = true));

// ---- start ------------------------------------------------------------------------------------------------
declare global {
  interface Window {
    nanodexDiagnostics: {
      panCheck: (frames?: number) => ReturnType<GraphCanvas["panCheck"]>;
      positions: () => Record<string, [number, number]>;
      startupMs: number;
    };
  }
}

async function start() {
  try {
    const info = await api.appInfo();
    window.nanodexDiagnostics = { panCheck: (f) => canvas.panCheck(f), positions: () => canvas.positions(), startupMs: info.uptime_ms };
    document.body.dataset.startupMs = String(info.uptime_ms);
    await refreshRecent();
    const current = await api.currentProject();
    if (current) await showProject(current, true);
  } catch (err) {
    message(String(err));
  }
  document.body.dataset.ready = "true";
}
void start();
