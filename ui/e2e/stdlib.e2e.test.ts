// On demand (`make bench-app`): the installed Python standard library in the real app — time from import to
// first graph, frame times while panning it, and screenshots.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "vitest";
import { OUT, importPath, metrics, session, useDriver, waitGraph, waitIdle } from "./helpers";

useDriver("stdlib");

describe("nanodex desktop app on the standard library", () => {
  it("imports the Python standard library and stays responsive", async () => {
    const stdlib = execFileSync("python3", ["-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"]).toString().trim();
    const { browser } = await session();
    const t0 = Date.now();
    await importPath(browser, stdlib);
    await waitGraph(browser, 600_000);
    metrics.stdlibFirstGraphMs = Date.now() - t0;
    metrics.stdlibNodes = Number(await browser.$("#graph").getAttribute("data-nodes"));
    metrics.stdlibEdges = Number(await browser.$("#graph").getAttribute("data-edges"));
    await browser.pause(500);
    metrics.stdlibPan = await browser.execute(() => window.nanodexDiagnostics.panCheck(240));
    await browser.saveScreenshot(join(OUT, "stdlib.png"));
    await waitIdle(browser, 900_000);
    metrics.stdlibImportMs = Date.now() - t0;
    await browser.$("#search").setValue("loads");
    const hit = browser.$("button.search-result*=json.loads");
    await hit.waitForExist({ timeout: 20_000 });
    await hit.click();
    await browser.$("#panel").waitForDisplayed({ timeout: 10_000 });
    await browser.pause(400);
    metrics.stdlibPanAfterFocus = await browser.execute(() => window.nanodexDiagnostics.panCheck(240));
    await browser.saveScreenshot(join(OUT, "stdlib-panel.png"));
    await browser.deleteSession();
  });
});
