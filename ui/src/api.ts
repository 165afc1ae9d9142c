// Typed wrappers for every command and event of the nanodex app.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type {
  AppInfo, DetailPayload, Finished, Layout, LogEntry, ProjectEntry, ProjectPayload, Progress, SearchPayload,
} from "./types";

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  listProjects: () => invoke<ProjectEntry[]>("list_projects"),
  forgetProject: (repo: string) => invoke<void>("forget_project", { repo }),
  checkPath: (path: string) => invoke<string>("check_path", { path }),
  startImport: (path: string) => invoke<number>("start_import", { path }),
  cancelImport: () => invoke<boolean>("cancel_import"),
  currentProject: () => invoke<ProjectPayload | null>("current_project"),
  openProject: (repo: string) => invoke<ProjectPayload>("open_project", { repo }),
  nodeDetail: (id: string) => invoke<DetailPayload>("node_detail", { id }),
  search: (query: string, limit?: number) => invoke<SearchPayload>("search", { query, limit }),
  saveLayout: (layout: Layout) => invoke<void>("save_layout", { layout }),
};

export const events = {
  onProgress: (f: (p: Progress) => void): Promise<UnlistenFn> => listen<Progress>("progress", (e) => f(e.payload)),
  onGraphReady: (f: (repo: string) => void): Promise<UnlistenFn> => listen<string>("graph-ready", (e) => f(e.payload)),
  onFinished: (f: (p: Finished) => void): Promise<UnlistenFn> => listen<Finished>("job-finished", (e) => f(e.payload)),
  onLog: (f: (l: LogEntry) => void): Promise<UnlistenFn> => listen<LogEntry>("log", (e) => f(e.payload)),
};
