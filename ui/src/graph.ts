// The graph canvas: cytoscape.js drawing what GraphModel says is visible, with fcose for compound layouts.
import cytoscape, { type Core, type ElementDefinition, type NodeSingular } from "cytoscape";
import fcose from "cytoscape-fcose";
import type { Elements, NodeEl } from "./model";

cytoscape.use(fcose);

export const LANG_COLORS: Record<string, string> = {
  python: "#4b8bbe",
  java: "#e76f00",
  cpp: "#f34b7d",
  c: "#8e9aaf",
  javascript: "#e6c84f",
  typescript: "#3178c6",
};
export const EDGE_COLORS: Record<string, string> = {
  imports: "#7c8aa5",
  calls: "#60a5fa",
  extends: "#c084fc",
  implements: "#a78bfa",
  throws: "#f87171",
  depends_on: "#fbbf24",
  provides: "#2dd4bf",
};

const style: cytoscape.StylesheetJson = [
  {
    selector: "node",
    style: {
      label: "data(label)",
      color: "#dbe4f3",
      "font-family": "Inter, 'DejaVu Sans', system-ui, sans-serif",
      "font-size": 11,
      // Labels whose on-screen size would fall below 9 px are not drawn: zoomed out, only big nodes keep theirs.
      "min-zoomed-font-size": 9,
      "text-wrap": "ellipsis",
      "text-max-width": "140px",
      "text-outline-color": "#0f1629",
      "text-outline-width": 2,
      "overlay-opacity": 0,
    },
  },
  {
    selector: 'node[kind="module"]',
    style: {
      shape: "ellipse",
      width: "mapData(size, 1, 4, 16, 44)",
      height: "mapData(size, 1, 4, 16, 44)",
      "background-color": (n: NodeSingular) => LANG_COLORS[n.data("lang")] ?? "#94a3b8",
      "border-width": 1.5,
      "border-color": "#0f1629",
      "text-valign": "bottom",
      "text-margin-y": 4,
      "font-size": "mapData(size, 1, 4, 10, 18)",
    },
  },
  {
    selector: 'node[kind="package"], node[kind="group"]',
    style: {
      shape: "round-rectangle",
      width: "mapData(size, 1, 4, 70, 150)",
      height: "mapData(size, 1, 4, 30, 56)",
      "background-color": "#253152",
      "border-width": 1.5,
      "border-color": "#5b6b98",
      "text-valign": "center",
      "font-size": "mapData(size, 1, 4, 12, 22)",
      "font-weight": 600,
    },
  },
  { selector: 'node[kind="group"]', style: { "background-color": "#2a2f3a", "border-color": "#6b7280" } },
  {
    selector: 'node[kind="external"]',
    style: { shape: "hexagon", width: 18, height: 16, "background-color": "#6b7280", "text-valign": "bottom", "text-margin-y": 3, "font-size": 10 },
  },
  {
    selector: 'node[kind="capability"]',
    style: {
      shape: "diamond",
      width: 14,
      height: 14,
      "background-color": "#2dd4bf",
      "font-size": 9,
      color: "#a7f3e6",
      "text-valign": "bottom",
      "text-margin-y": 2,
      "min-zoomed-font-size": 10,
    },
  },
  {
    selector: "node:parent",
    style: {
      "background-color": "#1b2440",
      "background-opacity": 0.55,
      "border-style": "dashed",
      "border-color": "#42507a",
      "text-valign": "top",
      "text-halign": "center",
      "text-margin-y": -4,
      "font-size": 12,
      color: "#9fb0d3",
      padding: "14px",
    },
  },
  {
    selector: "edge",
    style: {
      width: "mapData(weight, 1, 40, 1, 5)",
      "line-color": (e: cytoscape.EdgeSingular) => EDGE_COLORS[e.data("kind")] ?? "#7c8aa5",
      "target-arrow-color": (e: cytoscape.EdgeSingular) => EDGE_COLORS[e.data("kind")] ?? "#7c8aa5",
      "target-arrow-shape": "triangle",
      "arrow-scale": 0.7,
      "curve-style": "straight",
      opacity: 0.5,
    },
  },
  { selector: 'edge[kind="implements"]', style: { "line-style": "dashed" } },
  { selector: 'edge[kind="depends_on"]', style: { "line-style": "dotted" } },
  { selector: 'edge[kind="provides"]', style: { "target-arrow-shape": "none", opacity: 0.35, width: 1 } },
  { selector: ".faded", style: { opacity: 0.12 } },
  { selector: "edge.near", style: { opacity: 0.95 } },
  { selector: "node.focus", style: { "border-width": 4, "border-color": "#fbbf24", "z-index": 10 } },
];

export interface GraphCallbacks {
  onSelect(id: string, node: NodeEl): void;
  onToggle(id: string): void;
  onBackground(): void;
  onLayout(positions: Record<string, [number, number]>): void;
}

export class GraphCanvas {
  readonly cy: Core;
  private nodes = new Map<string, NodeEl>();
  private layoutRunning: cytoscape.Layouts | null = null;

  constructor(container: HTMLElement, private cb: GraphCallbacks) {
    this.cy = cytoscape({
      container,
      style,
      wheelSensitivity: 0.25,
      minZoom: 0.05,
      maxZoom: 4,
      boxSelectionEnabled: false,
      textureOnViewport: false,
      motionBlur: false,
    });
    this.cy.on("tap", "node", (e) => {
      const id = e.target.id();
      const n = this.nodes.get(id);
      if (!n) return;
      if ((n.kind === "package" || n.kind === "group") && !n.expanded) this.cb.onToggle(id);
      this.cb.onSelect(id, n);
    });
    this.cy.on("dbltap", "node", (e) => {
      const n = this.nodes.get(e.target.id());
      if (n && n.expanded) this.cb.onToggle(n.id);
    });
    this.cy.on("tap", (e) => {
      if (e.target === this.cy) this.cb.onBackground();
    });
  }

  /** Draws `els`, keeping existing nodes where they are; new nodes start at a saved position or their
   *  parent's. Runs a layout only when some node has no position. */
  render(els: Elements, saved: Record<string, [number, number]>, fit: boolean): Promise<void> {
    const cy = this.cy;
    const keep = new Set([...els.nodes.map((n) => n.id), ...els.edges.map((e) => e.id)]);
    let missing = 0;
    cy.batch(() => {
      cy.elements().forEach((el) => {
        if (!keep.has(el.id())) el.remove();
      });
      // Parents first, so children can refer to them.
      const defs: ElementDefinition[] = [];
      for (const n of els.nodes) {
        const existing = cy.getElementById(n.id);
        if (existing.nonempty()) {
          existing.data({ label: n.label, expanded: n.expanded, size: n.size, kind: n.kind, count: n.count });
          if (existing.isChild() && existing.data("parent") !== n.parent) existing.move({ parent: n.parent ?? null });
          continue;
        }
        let position = saved[n.id] ? { x: saved[n.id][0], y: saved[n.id][1] } : undefined;
        if (!position) {
          missing += n.expanded ? 0 : 1;
          const near = [n.anchor, n.parent].map((id) => (id ? cy.getElementById(id) : null)).find((e) => e && e.nonempty());
          const base = near ? near.position() : { x: 0, y: 0 };
          const jitter = hash(n.id);
          position = { x: base.x + (jitter % 97) - 48, y: base.y + ((jitter >> 8) % 97) - 48 };
        }
        defs.push({ group: "nodes", data: { ...n, parent: n.parent }, position, classes: n.kind });
      }
      cy.add(defs);
      cy.add(
        els.edges
          .filter((e) => cy.getElementById(e.id).empty())
          .map((e) => ({ group: "edges" as const, data: { ...e } })),
      );
    });
    this.nodes = new Map(els.nodes.map((n) => [n.id, n]));
    // Curved edges keep parallel kinds (calls and imports between the same modules) apart; straight ones are
    // cheaper when there are many.
    cy.style().selector("edge").style("curve-style", els.edges.length > 1500 ? "straight" : "bezier").update();
    if (missing === 0) {
      if (fit) cy.fit(undefined, 40);
      return Promise.resolve();
    }
    return this.layout(missing > els.nodes.length / 2, fit);
  }

  private layout(randomize: boolean, fit: boolean): Promise<void> {
    this.layoutRunning?.stop();
    const n = this.cy.nodes().length;
    const layout = this.cy.layout({
      name: "fcose",
      quality: n > 2500 ? "draft" : "default",
      randomize,
      animate: false,
      fit,
      padding: 40,
      nodeDimensionsIncludeLabels: true,
      packComponents: true,
      nodeRepulsion: 9000,
      idealEdgeLength: 90,
      edgeElasticity: 0.2,
      nestingFactor: 0.6,
      gravity: 0.3,
      numIter: n > 800 ? 1000 : 2500,
      tile: true,
    } as cytoscape.LayoutOptions);
    this.layoutRunning = layout;
    return new Promise((resolve) => {
      layout.one("layoutstop", () => {
        this.layoutRunning = null;
        if (fit) this.cy.fit(undefined, 40);
        this.cb.onLayout(this.positions());
        resolve();
      });
      layout.run();
    });
  }

  positions(): Record<string, [number, number]> {
    const out: Record<string, [number, number]> = {};
    this.cy.nodes().forEach((n) => {
      if (n.isParent()) return;
      const p = n.position();
      out[n.id()] = [Math.round(p.x * 10) / 10, Math.round(p.y * 10) / 10];
    });
    return out;
  }

  /** Centres on `id`, marks it, and fades what is not connected to it. */
  focus(id: string): boolean {
    const cy = this.cy;
    const el = cy.getElementById(id);
    if (el.empty()) return false;
    cy.batch(() => {
      cy.elements().removeClass("focus faded near");
      const hood = el.closedNeighborhood().union(el.ancestors());
      cy.elements().not(hood).not(hood.ancestors()).addClass("faded");
      el.connectedEdges().addClass("near");
      el.addClass("focus");
    });
    cy.animate({ center: { eles: el }, zoom: Math.max(cy.zoom(), 1.1) }, { duration: 250 });
    return true;
  }

  clearFocus() {
    this.cy.elements().removeClass("focus faded near");
  }

  fit() {
    this.cy.animate({ fit: { eles: this.cy.elements(), padding: 40 } }, { duration: 250 });
  }

  /** Pans for `frames` animation frames and reports frame times and long tasks (the performance self-check). */
  panCheck(frames = 180): Promise<{ frames: number; maxMs: number; p95Ms: number; meanMs: number; longTasks: number[] }> {
    const longTasks: number[] = [];
    let observer: PerformanceObserver | null = null;
    try {
      observer = new PerformanceObserver((list) => list.getEntries().forEach((e) => longTasks.push(e.duration)));
      observer.observe({ entryTypes: ["longtask"] });
    } catch {
      observer = null; // WebKit has no long-task timeline; frame times below tell the same story.
    }
    const start = { ...this.cy.pan() };
    return new Promise((resolve) => {
      const gaps: number[] = [];
      let last = performance.now();
      let i = 0;
      const step = (t: number) => {
        gaps.push(t - last);
        last = t;
        const dir = Math.floor(i / 45) % 4;
        const d = [[6, 0], [0, 6], [-6, 0], [0, -6]][dir];
        this.cy.panBy({ x: d[0], y: d[1] });
        if (++i < frames) requestAnimationFrame(step);
        else {
          observer?.disconnect();
          this.cy.pan(start);
          const sorted = gaps.slice(1).sort((a, b) => a - b);
          resolve({
            frames: sorted.length,
            maxMs: sorted[sorted.length - 1] ?? 0,
            p95Ms: sorted[Math.floor(sorted.length * 0.95)] ?? 0,
            meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
            longTasks,
          });
        }
      };
      requestAnimationFrame(step);
    });
  }
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
