// View logic of the graph: which nodes are visible given the expanded packages and filters, and how module-level
// edges fold into edges between visible nodes. Pure (no DOM, no Tauri), so it is unit-tested with vitest.
import type { GraphView, ViewModule } from "./types";

export const EDGE_KINDS = ["imports", "calls", "extends", "implements", "throws", "depends_on"] as const;
export type EdgeKind = (typeof EDGE_KINDS)[number];
/** The compound node that holds external packages. */
export const EXTERNALS = "externals";

export interface Filters {
  kinds: Set<string>;
  capabilities: boolean;
  tests: boolean;
}

export const defaultFilters = (): Filters => ({
  kinds: new Set<string>(["imports", "calls", "extends", "implements", "throws"]),
  capabilities: true,
  tests: true,
});

export type NodeKind = "package" | "module" | "capability" | "external" | "group";

export interface NodeEl {
  id: string;
  parent?: string;
  label: string;
  kind: NodeKind;
  /** Whether a package (or the externals group) is expanded: a compound node. */
  expanded: boolean;
  lang: string;
  /** Relative size, 1..4 (log of the functions it holds). */
  size: number;
  /** Children of a collapsed package, functions of a module. */
  count: number;
  title: string;
  /** A node to start next to when it has no position yet (a capability's module). */
  anchor?: string;
}

export interface EdgeEl {
  id: string;
  source: string;
  target: string;
  kind: string;
  weight: number;
}

export interface Elements {
  nodes: NodeEl[];
  edges: EdgeEl[];
  /** Aggregated edges left out to keep the view responsive. */
  droppedEdges: number;
}

export interface Limits {
  maxEdges: number;
  capabilitiesPerModule: number;
  /** Capability nodes in all; modules inside expanded packages get theirs first, the largest first. */
  maxCapabilities: number;
}

const LIMITS: Limits = { maxEdges: 3000, capabilitiesPerModule: 6, maxCapabilities: 150 };

const size = (n: number) => 1 + Math.min(3, Math.log10(1 + n));

export const clip = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

export class GraphModel {
  readonly view: GraphView;
  private parent = new Map<string, string>();
  private children = new Map<string, string[]>();
  private modules = new Map<string, ViewModule>();
  private functionsIn = new Map<string, number>();
  private labels = new Map<string, string>();

  constructor(view: GraphView) {
    this.view = view;
    const add = (child: string, parent: string | null) => {
      if (!parent) return;
      this.parent.set(child, parent);
      const list = this.children.get(parent) ?? [];
      list.push(child);
      this.children.set(parent, list);
    };
    for (const p of view.packages) {
      add(p.id, p.parent);
      this.labels.set(p.id, p.name);
    }
    for (const m of view.modules) {
      this.modules.set(m.id, m);
      add(m.id, m.package);
      this.labels.set(m.id, m.name);
    }
    for (const e of view.externals) {
      add(e.id, EXTERNALS);
      this.labels.set(e.id, e.name);
    }
    // Functions held by each package, for sizing collapsed packages.
    for (const m of view.modules) {
      for (const a of [m.id, ...this.ancestors(m.id)]) {
        this.functionsIn.set(a, (this.functionsIn.get(a) ?? 0) + m.functions + m.classes);
      }
    }
  }

  /** Enclosing packages of a node, nearest first. */
  ancestors(id: string): string[] {
    const out: string[] = [];
    let cur = this.parent.get(id);
    while (cur && !out.includes(cur)) {
      out.push(cur);
      cur = this.parent.get(cur);
    }
    return out;
  }

  label(id: string): string {
    return this.labels.get(id) ?? id;
  }

  has(id: string): boolean {
    return this.labels.has(id) || id === EXTERNALS;
  }

  isContainer(id: string): boolean {
    return (this.children.get(id)?.length ?? 0) > 0;
  }

  /** The visible node standing for `id`: its outermost collapsed ancestor, or itself. */
  representative(id: string, expanded: Set<string>): string {
    const chain = this.ancestors(id).reverse();
    for (const a of chain) if (!expanded.has(a)) return a;
    return id;
  }

  /** `expanded` plus every ancestor of `id`, so that `id` becomes visible. */
  expandTo(id: string, expanded: Set<string>): Set<string> {
    const out = new Set(expanded);
    for (const a of this.ancestors(id)) out.add(a);
    return out;
  }

  private topLevel(): string[] {
    const top = [
      ...this.view.packages.filter((p) => !p.parent).map((p) => p.id),
      ...this.view.modules.filter((m) => !m.package).map((m) => m.id),
    ];
    if (this.view.externals.length) top.push(EXTERNALS);
    return top;
  }

  /** Nodes and folded edges to draw. */
  elements(expanded: Set<string>, filters: Filters, limits: Limits = LIMITS): Elements {
    const nodes: NodeEl[] = [];
    const visible = new Set<string>();
    const pkgById = new Map(this.view.packages.map((p) => [p.id, p]));
    const hiddenTest = (id: string) => !filters.tests && (this.modules.get(id)?.is_test ?? false);
    const visit = (id: string, parent: string | undefined) => {
      if (hiddenTest(id)) return;
      const open = expanded.has(id) && this.isContainer(id);
      const mod = this.modules.get(id);
      const kids = this.children.get(id)?.length ?? 0;
      let kind: NodeKind;
      let label = this.label(id);
      let title = label;
      if (id === EXTERNALS) {
        kind = "group";
        label = open ? "external packages" : `external · ${kids}`;
        title = `${kids} external packages`;
      } else if (mod) {
        kind = "module";
        title = `${mod.path} — ${mod.classes} classes, ${mod.functions} functions`;
      } else if (pkgById.has(id)) {
        kind = "package";
        const p = pkgById.get(id)!;
        if (!open) label = `${p.name} · ${kids}`;
        title = `${p.qname} — ${kids} modules and packages`;
      } else {
        kind = "external";
      }
      nodes.push({
        id,
        parent,
        label,
        kind,
        expanded: open,
        lang: mod?.lang ?? "",
        size: size(this.functionsIn.get(id) ?? 0),
        count: mod ? mod.functions : kids,
        title,
      });
      visible.add(id);
      if (open) for (const c of this.children.get(id) ?? []) visit(c, id);
    };
    for (const id of this.topLevel()) visit(id, undefined);

    // Fold edges onto visible representatives; drop self-loops and edges into hidden test modules.
    const folded = new Map<string, EdgeEl>();
    for (const e of this.view.edges) {
      if (!filters.kinds.has(e.kind)) continue;
      if (hiddenTest(e.source) || hiddenTest(e.target)) continue;
      const s = this.representative(e.source, expanded);
      const t = this.representative(e.target, expanded);
      if (s === t || !visible.has(s) || !visible.has(t)) continue;
      // A node and one of its own ancestors: the edge is inside the compound, not between two nodes.
      if (this.ancestors(s).includes(t) || this.ancestors(t).includes(s)) continue;
      const key = `${e.kind}:${s}->${t}`;
      const cur = folded.get(key);
      if (cur) cur.weight += e.weight;
      else folded.set(key, { id: key, source: s, target: t, kind: e.kind, weight: e.weight });
    }
    let edges = [...folded.values()];
    // A hairball tells nothing: at most four edges per visible node (and the absolute limit), heaviest first.
    const budget = Math.min(limits.maxEdges, Math.max(200, nodes.length * 4));
    let droppedEdges = 0;
    if (edges.length > budget) {
      edges.sort((a, b) => b.weight - a.weight || a.id.localeCompare(b.id));
      droppedEdges = edges.length - budget;
      edges = edges.slice(0, budget);
    }

    if (filters.capabilities) {
      // Which visible modules show their capabilities: those the user opened a package for before top-level
      // ones, larger modules first, until the budget is spent.
      const byModule = new Map<string, typeof this.view.capabilities>();
      for (const c of this.view.capabilities) {
        if (!visible.has(c.module) || !this.modules.has(c.module)) continue;
        const list = byModule.get(c.module) ?? [];
        if (list.length < limits.capabilitiesPerModule) list.push(c);
        byModule.set(c.module, list);
      }
      const order = [...byModule.keys()].sort((a, b) => {
        const ma = this.modules.get(a)!;
        const mb = this.modules.get(b)!;
        return Number(!ma.package) - Number(!mb.package) || mb.functions - ma.functions || a.localeCompare(b);
      });
      const chosen: typeof this.view.capabilities = [];
      for (const m of order) {
        const list = byModule.get(m)!;
        if (chosen.length + list.length > limits.maxCapabilities) break;
        chosen.push(...list);
      }
      for (const c of chosen) {
        // Capabilities are named by qualified name; inside their module's neighbourhood the module part is noise.
        const prefix = `${this.modules.get(c.module)!.qname}.`;
        const short = c.name.startsWith(prefix) ? c.name.slice(prefix.length) : c.name;
        nodes.push({
          id: c.id,
          parent: this.parent.get(c.module),
          label: clip(short, 36),
          kind: "capability",
          expanded: false,
          lang: "",
          size: 1,
          count: c.refs.length,
          title: c.name,
          anchor: c.module,
        });
        edges.push({ id: `provides:${c.module}->${c.id}`, source: c.module, target: c.id, kind: "provides", weight: 1 });
      }
    }
    return { nodes, edges, droppedEdges };
  }
}

/** Initial expansion: open packages top-down while the number of visible nodes stays under `budget`. */
export function initialExpansion(model: GraphModel, budget = 80): Set<string> {
  const expanded = new Set<string>();
  const filters = defaultFilters();
  let frontier = model.view.packages.filter((p) => !p.parent).map((p) => p.id);
  while (frontier.length) {
    const next: string[] = [];
    for (const id of frontier) {
      const trial = new Set(expanded).add(id);
      if (model.elements(trial, { ...filters, capabilities: false }).nodes.length > budget) continue;
      expanded.add(id);
      next.push(...model.view.packages.filter((p) => p.parent === id).map((p) => p.id));
    }
    frontier = next;
  }
  return expanded;
}
