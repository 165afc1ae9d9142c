// Payloads of the nanodex app's commands and events (mirrors src-tauri/src/main.rs and nanodex-core's view).

export interface ViewPackage { id: string; name: string; qname: string; parent: string | null; children: number }
export interface ViewModule {
  id: string; name: string; qname: string; path: string; lang: string; package: string | null;
  classes: number; functions: number; is_test: boolean; parse_error: boolean;
}
export interface ViewCapability { id: string; name: string; module: string; refs: string[] }
export interface ViewExternal { id: string; name: string }
export interface ViewEdge { source: string; target: string; kind: string; weight: number }
export interface GraphView {
  packages: ViewPackage[]; modules: ViewModule[]; capabilities: ViewCapability[];
  externals: ViewExternal[]; edges: ViewEdge[]; counts: Record<string, number>;
}
export interface ProjectEntry {
  name: string; repo: string; workspace: string; extracted_at_ms: number;
  counts: Record<string, number>; has_brain: boolean;
}
export interface Layout { positions: Record<string, [number, number]>; expanded: string[] }
export interface ProjectPayload { entry: ProjectEntry; view: GraphView; layout: Layout }
export interface Link { id: string; type: string; name: string; qname: string; path: string; line: number; sites: number[] }
export interface Relation { kind: string; direction: "in" | "out"; links: Link[] }
export interface NodeView {
  id: string; type: string; name: string; qname: string; path: string; line: number; end_line: number;
  lang: string; signature: string; doc: string; summary: string | null; module: string | null;
  callers: Link[]; callees: Link[]; relations: Relation[]; meta: Record<string, unknown>;
}
export interface Excerpt { start: number; text: string; truncated: boolean; redacted: number }
export interface DetailPayload { node: NodeView; excerpt: Excerpt | null }
export interface SymbolHit { id: string; type: string; name: string; qname: string; path: string; line: number; module: string | null }
export interface BrainHit {
  id: string; type: string; name: string; path: string; line: number; summary: string; score: number;
  target: string | null; module: string | null;
}
export interface SearchPayload { symbols: SymbolHit[]; brain: BrainHit[]; notes: string[] }
export interface Progress {
  job: number; stage: string; done: number; total: number | null; rate: number; message: string; elapsed_ms: number;
}
export interface Finished { job: number; repo: string; ok: boolean; cancelled: boolean; error: string | null; elapsed_ms: number }
export interface LogEntry { level: "info" | "warn" | "error"; message: string; time_ms: number }
export interface AppInfo { version: string; data_dir: string; uptime_ms: number }
