import { describe, expect, it } from "vitest";
import { EXTERNALS, GraphModel, defaultFilters, initialExpansion } from "./model";
import type { GraphView } from "./types";

// A small view in the shape nanodex-core's view::build produces: app/{core,ui}, a top-level module, externals.
const view: GraphView = {
  packages: [
    { id: "package:app", name: "app", qname: "app", parent: null, children: 3 },
    { id: "package:core", name: "core", qname: "app.core", parent: "package:app", children: 2 },
    { id: "package:ui", name: "ui", qname: "app.ui", parent: "package:app", children: 1 },
  ],
  modules: [
    mod("module:main", "main.py", null),
    mod("module:init", "__init__.py", "package:app"),
    mod("module:db", "db.py", "package:core", 10),
    mod("module:model", "model.py", "package:core", 3),
    mod("module:view", "view.py", "package:ui", 5),
    { ...mod("module:test", "test_db.py", null), is_test: true },
  ],
  capabilities: [
    { id: "capability_1", name: "db.py.connect", module: "module:db", refs: ["function:connect"] },
  ],
  externals: [{ id: "external:sqlite3", name: "sqlite3" }],
  edges: [
    edge("module:main", "module:view", "imports"),
    edge("module:view", "module:db", "calls", 4),
    edge("module:view", "module:model", "calls", 2),
    edge("module:db", "module:model", "calls"),
    edge("module:db", "external:sqlite3", "imports"),
    edge("module:test", "module:db", "calls", 7),
    edge("module:view", "module:db", "throws"),
  ],
  counts: { module: 6, package: 3 },
};

function mod(id: string, name: string, pkg: string | null, functions = 1) {
  return { id, name, qname: name, path: name, lang: "python", package: pkg, classes: 0, functions, is_test: false, parse_error: false };
}
function edge(source: string, target: string, kind: string, weight = 1) {
  return { source, target, kind, weight };
}

describe("GraphModel", () => {
  const model = new GraphModel(view);

  it("shows top-level packages collapsed, with their child counts", () => {
    const els = model.elements(new Set(), defaultFilters());
    const ids = els.nodes.map((n) => n.id).sort();
    expect(ids).toEqual([EXTERNALS, "module:main", "module:test", "package:app"].sort());
    const app = els.nodes.find((n) => n.id === "package:app")!;
    expect(app).toMatchObject({ kind: "package", expanded: false, label: "app · 3" });
    // main → view folds into main → app; view → db is inside app, so it disappears; test → db and
    // db → sqlite3 fold too.
    expect(els.edges.map((e) => e.id).sort()).toEqual([
      "calls:module:test->package:app",
      "imports:module:main->package:app",
      "imports:package:app->externals",
    ]);
    expect(els.edges.find((e) => e.kind === "calls")!.weight).toBe(7);
  });

  it("folds edges onto the outermost collapsed package and sums weights", () => {
    const els = model.elements(new Set(["package:app"]), defaultFilters());
    const calls = els.edges.filter((e) => e.kind === "calls");
    expect(calls.find((e) => e.source === "package:ui" && e.target === "package:core")?.weight).toBe(6);
    const ui = els.nodes.find((n) => n.id === "package:ui")!;
    expect(ui.parent).toBe("package:app");
    expect(els.nodes.find((n) => n.id === "package:app")!.expanded).toBe(true);
  });

  it("filters edge kinds, test modules and capabilities", () => {
    const all = new Set(["package:app", "package:core", "package:ui", EXTERNALS]);
    const f = defaultFilters();
    let els = model.elements(all, f);
    expect(els.edges.some((e) => e.kind === "throws")).toBe(true);
    const cap = els.nodes.find((n) => n.id === "capability_1")!;
    expect(cap.parent).toBe("package:core");
    expect(cap.label).toBe("connect"); // the module's qualified name is dropped
    expect(els.edges.some((e) => e.kind === "provides" && e.target === "capability_1")).toBe(true);
    expect(els.edges.some((e) => e.target === "external:sqlite3")).toBe(true);

    f.kinds.delete("throws");
    f.tests = false;
    f.capabilities = false;
    els = model.elements(all, f);
    expect(els.edges.some((e) => e.kind === "throws")).toBe(false);
    expect(els.nodes.some((n) => n.id === "module:test")).toBe(false);
    expect(els.edges.some((e) => e.source === "module:test")).toBe(false);
    expect(els.nodes.some((n) => n.kind === "capability")).toBe(false);
  });

  it("depends_on edges are off by default and externals fold into their group", () => {
    expect(defaultFilters().kinds.has("depends_on")).toBe(false);
    const els = model.elements(new Set(["package:app", "package:core"]), defaultFilters());
    expect(els.edges.find((e) => e.source === "module:db" && e.kind === "imports")?.target).toBe(EXTERNALS);
  });

  it("keeps only the heaviest edges past the limit", () => {
    const all = new Set(["package:app", "package:core", "package:ui"]);
    const els = model.elements(all, defaultFilters(), { maxEdges: 1, capabilitiesPerModule: 0, maxCapabilities: 0 });
    const folded = els.edges.filter((e) => e.kind !== "provides");
    expect(folded).toHaveLength(1);
    expect(folded[0].id).toBe("calls:module:test->module:db");
    expect(els.droppedEdges).toBeGreaterThan(0);
  });

  it("spends the capability budget on modules of opened packages, larger first", () => {
    const many: GraphView = {
      ...view,
      capabilities: [
        { id: "c_main", name: "main.py.run", module: "module:main", refs: [] },
        { id: "c_db1", name: "db.py.a", module: "module:db", refs: [] },
        { id: "c_db2", name: "db.py.b", module: "module:db", refs: [] },
        { id: "c_model", name: "model.py.c", module: "module:model", refs: [] },
      ],
    };
    const m = new GraphModel(many);
    const all = new Set(["package:app", "package:core"]);
    const caps = (max: number) =>
      m
        .elements(all, defaultFilters(), { maxEdges: 100, capabilitiesPerModule: 6, maxCapabilities: max })
        .nodes.filter((n) => n.kind === "capability")
        .map((n) => n.id);
    expect(caps(10).sort()).toEqual(["c_db1", "c_db2", "c_main", "c_model"]);
    expect(caps(3)).toEqual(["c_db1", "c_db2", "c_model"]); // db (10 functions) before model, main (top level) last
    expect(caps(2)).toEqual(["c_db1", "c_db2"]);
  });

  it("expands the ancestors of a search hit so it becomes visible", () => {
    const expanded = model.expandTo("module:db", new Set());
    expect([...expanded].sort()).toEqual(["package:app", "package:core"]);
    expect(model.representative("module:db", expanded)).toBe("module:db");
    expect(model.representative("module:db", new Set(["package:app"]))).toBe("package:core");
    expect(model.elements(expanded, defaultFilters()).nodes.some((n) => n.id === "module:db")).toBe(true);
  });

  it("initial expansion opens packages while the view stays under budget", () => {
    expect([...initialExpansion(model, 100)].sort()).toEqual(["package:app", "package:core", "package:ui"]);
    expect([...initialExpansion(model, 5)]).toEqual([]);
  });

  it("sizes nodes by what they hold", () => {
    const els = model.elements(new Set(["package:app", "package:core"]), defaultFilters());
    const db = els.nodes.find((n) => n.id === "module:db")!;
    const model_ = els.nodes.find((n) => n.id === "module:model")!;
    expect(db.size).toBeGreaterThan(model_.size);
  });
});
