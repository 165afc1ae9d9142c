// End to end in the real app: tauri-driver starts the nanodex binary under Xvfb; WebdriverIO drives its window.
// Env: NANODEX_APP_BIN (the built app, absolute), E2E_OUT (screenshots + metrics; default ui/e2e/out).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURE, OUT, copyStdlib, drop, importPath, metrics, session, useDriver, waitGraph, waitIdle, text, texts, windowShot, withEvidence } from "./helpers";

useDriver("metrics");

const steps: Record<string, number> = {};
let last = Date.now();
function step(name: string) {
  steps[name] = Date.now() - last;
  last = Date.now();
  metrics.stepsMs = steps;
}

describe("nanodex desktop app", () => {
  it("imports a repository, draws its graph, finds a symbol and shows its callers", async () => {
    const { browser, ms } = await session();
    let before: Record<string, [number, number]> = {};
    await withEvidence(browser, "app", async () => {
    metrics.coldStartSessionMs = ms;
    metrics.coldStartAppMs = Number(await browser.$("body").getAttribute("data-startup-ms"));
    expect(await browser.getTitle()).toBe("nanodex");
    expect(await browser.$("#recent .empty").isExisting()).toBe(true);

    // Bad input first: a file, then an empty folder, each with a readable message and no graph.
    const empty = mkdtempSync(join(tmpdir(), "nanodex-empty-"));
    await importPath(browser, join(FIXTURE, "README.md"));
    await browser.waitUntil(async () => (await text(browser, "#message")).includes("not a directory"), { timeout: 10_000 });
    await importPath(browser, empty);
    await browser.waitUntil(async () => (await text(browser, "#message")).includes("no source files"), { timeout: 60_000 });

    const t0 = Date.now();
    await importPath(browser, FIXTURE);
    await waitGraph(browser);
    metrics.fixtureFirstGraphMs = Date.now() - t0;
    await waitIdle(browser);
    metrics.fixtureImportMs = Date.now() - t0;
    await browser.pause(300);
    await browser.saveScreenshot(join(OUT, "graph.png"));
    windowShot("window-graph.png");
    expect(await text(browser, "#s-counts")).toMatch(/modules/);
    expect(await text(browser, "#s-counts")).toMatch(/capabilities/);

    // Search a symbol, pick it, and read its callers in the side panel.
    await browser.$("#search").setValue("charge");
    const hit = browser.$("button.search-result*=billing.payments.charge");
    await hit.waitForExist({ timeout: 10_000 });
    await hit.click();
    const panel = browser.$("#panel");
    await panel.waitForDisplayed({ timeout: 10_000 });
    await browser.waitUntil(async () => (await text(browser, "#panel h3")) === "charge", { timeout: 10_000 });
    const callers = await texts(browser, "#panel .callers a");
    expect(callers.join(" ")).toContain("try_charge");
    const source = await text(browser, "#panel .source pre");
    expect(source).toContain("def charge(");
    await browser.pause(400);
    await browser.saveScreenshot(join(OUT, "panel.png"));
    windowShot("window-panel.png");

    // Callers are links: follow one, the panel moves to it and lists charge among its callees.
    await browser.$('#panel .callers a[title="billing.payments.try_charge"]').click();
    await browser.waitUntil(async () => (await text(browser, "#panel h3")) === "try_charge", { timeout: 10_000 });
    expect((await texts(browser, "#panel .callees a")).join(" ")).toContain("charge");

    step("follow a caller");
    // Natural-language search reaches the brain.
    await browser.$("#search").setValue("refund a charge");
    await browser.$("button.search-result.brain").waitForExist({ timeout: 20_000 });

    step("brain search");
    metrics.fixturePan = await browser.execute(() => window.nanodexDiagnostics.panCheck(120));
    before = await browser.execute(() => window.nanodexDiagnostics.positions());
    await browser.pause(800); // let the debounced layout save land
    });
    step("pan check");
    await browser.deleteSession();
    step("close");

    // Reopen: the recent list remembers the project, and the graph comes back with the same layout.
    const second = await session();
    const b2 = second.browser;
    step("second session");
    await withEvidence(b2, "reopen", async () => {
    const open = b2.$('#recent button.open[data-repo$="/brain"]');
    await open.waitForExist({ timeout: 10_000 });
    const t1 = Date.now();
    await open.click();
    await waitGraph(b2);
    metrics.reopenMs = Date.now() - t1;
    step("reopen");

    const after = await b2.execute(() => window.nanodexDiagnostics.positions());
    const ids = Object.keys(before);
    expect(ids.length).toBeGreaterThan(3);
    for (const id of ids) {
      expect(after[id], id).toBeDefined();
      expect(Math.abs(after[id][0] - before[id][0]) + Math.abs(after[id][1] - before[id][1]), id).toBeLessThan(1);
    }

    // Dropping folders on the window: two at once is refused; one imports it and shows its graph.
    await drop(b2, [FIXTURE, join(FIXTURE, "..", "python")]);
    await b2.waitUntil(async () => (await text(b2, "#message")).includes("one repository folder at a time"), { timeout: 10_000 });
    await drop(b2, [join(FIXTURE, "..", "python")]);
    await b2.waitUntil(async () => (await text(b2, "#s-workspace")).startsWith("python"), { timeout: 60_000 });
    await waitIdle(b2);
    await waitGraph(b2);
    expect(await texts(b2, "#recent .name")).toEqual(["python", "brain"]);
    step("drop");

    // Cancel: a larger import (a copy of the Python standard library) stopped while it parses leaves a message,
    // the previous project on screen, and no entry in the recent list.
    const big = copyStdlib();
    await importPath(b2, big);
    await b2.$("#cancel").waitForDisplayed({ timeout: 10_000 });
    await b2.$("#cancel").click();
    await b2.waitUntil(async () => (await text(b2, "#message")).includes("Import cancelled"), { timeout: 60_000 });
    expect(await texts(b2, "#recent .name")).toEqual(["python", "brain"]);
    expect(await text(b2, "#s-workspace")).toMatch(/^python/);
    rmSync(dirname(big), { recursive: true, force: true });
    step("cancel");
    });
    await b2.deleteSession();
  });
});
