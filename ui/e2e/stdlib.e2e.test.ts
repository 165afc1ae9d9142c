// On demand (`make bench-app`): the installed Python standard library in the real app — time from import to
// first graph, frame times while panning it, and screenshots.
import { join } from "node:path";
import { describe, it } from "vitest";
import { OUT, copyStdlib, importPath, metrics, saveMetrics, session, useDriver, waitGraph, waitIdle, withEvidence } from "./helpers";

useDriver("stdlib");

describe("nanodex desktop app on the standard library", () => {
  it("imports the Python standard library and stays responsive", async () => {
    // The standard library itself, as the benchmarks use it: a copy without site-packages, tests and caches.
    const stdlib = copyStdlib();
    const { browser } = await session();
    await withEvidence(browser, "stdlib", async () => {
    const t0 = Date.now();
    await importPath(browser, stdlib);
    await waitGraph(browser, 600_000);
    metrics.stdlibFirstGraphMs = Date.now() - t0;
    metrics.stdlibFirstGraphAppMs = Number(await browser.$("#graph").getAttribute("data-first-graph-ms"));
    metrics.stdlibNodes = Number(await browser.$("#graph").getAttribute("data-nodes"));
    metrics.stdlibEdges = Number(await browser.$("#graph").getAttribute("data-edges"));
    await browser.pause(500);
    metrics.stdlibPan = await browser.execute(() => window.nanodexDiagnostics.panCheck(240));
    saveMetrics();
    await browser.saveScreenshot(join(OUT, "stdlib.png"));
    await waitIdle(browser, 1_500_000);
    metrics.stdlibImportMs = Date.now() - t0;
    await browser.pause(500);
    metrics.stdlibPanWithBrain = await browser.execute(() => window.nanodexDiagnostics.panCheck(240));
    metrics.stdlibNodesWithBrain = Number(await browser.$("#graph").getAttribute("data-nodes"));
    saveMetrics();
    await browser.saveScreenshot(join(OUT, "stdlib-brain.png"));
    await browser.$("#search").setValue("parse JSON from a string");
    await browser.$("button.search-result.brain").waitForExist({ timeout: 30_000 });
    await browser.pause(300);
    await browser.saveScreenshot(join(OUT, "stdlib-search.png"));
    await browser.$("#search").setValue("loads");
    const hit = browser.$("button.search-result*=json.loads");
    await hit.waitForExist({ timeout: 20_000 });
    await hit.click();
    await browser.$("#panel").waitForDisplayed({ timeout: 10_000 });
    await browser.pause(400);
    metrics.stdlibPanAfterFocus = await browser.execute(() => window.nanodexDiagnostics.panCheck(240));
    await browser.saveScreenshot(join(OUT, "stdlib-panel.png"));
    });
    await browser.deleteSession();
  });
});
