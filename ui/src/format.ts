// Small formatting helpers for the progress view, the status bar and the panel.

export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s % 60);
  if (m < 60) return `${m} min ${rest} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Seconds left at `rate` units/s, or null when unknown. */
export function eta(done: number, total: number | null, rate: number): number | null {
  if (total === null || rate <= 0 || done >= total) return null;
  return (total - done) / rate;
}

export function count(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

export function ago(thenMs: number, nowMs: number): string {
  if (!thenMs) return "never";
  const s = Math.max(0, Math.round((nowMs - thenMs) / 1000));
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

const STAGES: Record<string, string> = {
  walk: "Scanning files",
  parse: "Parsing",
  resolve: "Resolving names",
  store: "Writing the graph",
  brain: "Building the brain",
  "brain-store": "Storing the brain",
  embed: "Embedding summaries",
  done: "Done",
};

export const stageName = (s: string) => STAGES[s] ?? s;

/** The text of a path's last segment (a folder's name). */
export function baseName(path: string): string {
  const parts = path.split(/[\\/]+/).filter(Boolean);
  return parts[parts.length - 1] ?? path;
}

/** What a drop gives: one folder path, or a message saying what is wrong. */
export function dropTarget(paths: string[]): { path: string } | { error: string } {
  if (paths.length === 0) return { error: "Nothing was dropped. Drop a repository folder." };
  if (paths.length > 1) return { error: `Drop one repository folder at a time (got ${paths.length} items).` };
  return { path: paths[0] };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
