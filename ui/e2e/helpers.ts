// Shared pieces of the end-to-end tests: tauri-driver, sessions, waits, screenshots.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import { createServer, type AddressInfo } from "node:net";
import { remote } from "webdriverio";

export const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "../..");
export const BIN = process.env.NANODEX_APP_BIN ?? "";
export const OUT = resolve(process.env.E2E_OUT ?? join(here, "out"));
export const FIXTURE = join(repoRoot, "tests/fixtures/brain");
let PORT = 0;

/** A free local TCP port, so a driver left over from another run never answers for this one. */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => res(port));
    });
  });
}

export type Browser = Awaited<ReturnType<typeof remote>>;
let driver: ChildProcess | null = null;
const dataDir = mkdtempSync(join(tmpdir(), "nanodex-e2e-"));
export const metrics: Record<string, unknown> = {};

async function startDriver(): Promise<void> {
  PORT = await freePort();
  const native = await freePort();
  driver = spawn("tauri-driver", ["--port", String(PORT), "--native-port", String(native)], {
    env: { ...process.env, NANODEX_APP_DATA: dataDir },
    stdio: ["ignore", "inherit", "inherit"],
    detached: true, // its own process group, so the WebKitWebDriver and app it starts go down with it
  });
  driver.on("error", (e) => {
    throw new Error(`cannot start tauri-driver (cargo install tauri-driver --locked): ${e.message}`);
  });
  await new Promise((res) => setTimeout(res, 800));
}

export async function session(): Promise<{ browser: Browser; ms: number }> {
  const t0 = Date.now();
  const browser = await remote({
    hostname: "127.0.0.1",
    port: PORT,
    logLevel: "warn",
    capabilities: {
      browserName: "wry",
      "tauri:options": { application: BIN },
      // WebKitWebDriver speaks classic WebDriver only; WebdriverIO 9 would otherwise ask for a BiDi socket.
      "wdio:enforceWebDriverClassic": true,
    } as WebdriverIO.Capabilities,
  });
  await browser.$("body[data-ready='true']").waitForExist({ timeout: 30_000 });
  return { browser, ms: Date.now() - t0 };
}

export async function waitGraph(browser: Browser, timeout = 120_000) {
  await browser.$("#graph[data-ready='true']").waitForExist({ timeout });
  await browser.waitUntil(async () => Number(await browser.$("#graph").getAttribute("data-nodes")) > 0, { timeout });
}

export async function waitIdle(browser: Browser, timeout = 300_000) {
  await browser.waitUntil(async () => !(await browser.$("#progress").isDisplayed()), { timeout, interval: 250 });
}

export async function importPath(browser: Browser, path: string) {
  const tab = browser.$("[data-tab='projects']");
  await tab.click();
  const input = browser.$("#import-path");
  await input.setValue(path);
  await browser.$("#import-btn").click();
}

/** Delivers the event Tauri's webview emits when folders are dropped on the window (what the OS drag ends in;
 *  WebDriver cannot perform an OS-level drag). */
export async function drop(browser: Browser, paths: string[]) {
  await browser.execute(async (p: string[]) => {
    const internals = (window as unknown as { __TAURI_INTERNALS__: { invoke: (cmd: string, args: unknown) => Promise<unknown> } })
      .__TAURI_INTERNALS__;
    await internals.invoke("plugin:event|emit_to", {
      target: { kind: "Webview", label: "main" },
      event: "tauri://drag-drop",
      payload: { paths: p, position: { x: 200, y: 200 } },
    });
  }, paths);
}

/** A fresh copy of the installed Python standard library as the benchmarks use it (no site-packages, tests or
 *  caches); returns its path. */
export function copyStdlib(): string {
  const dir = join(mkdtempSync(join(tmpdir(), "nanodex-stdlib-")), "python-stdlib");
  execFileSync("python3", [
    "-c",
    "import shutil, sys, sysconfig; shutil.copytree(sysconfig.get_paths()['stdlib'], sys.argv[1], symlinks=True, " +
      "ignore=shutil.ignore_patterns('site-packages', 'test', 'tests', 'idle_test', '__pycache__'))",
    dir,
  ]);
  return dir;
}

/** Text content of the first element matching `sel` ("" when none), read in the page. */
export async function text(browser: Browser, sel: string): Promise<string> {
  return browser.execute((s: string) => document.querySelector(s)?.textContent ?? "", sel);
}

/** Text of every element matching `sel`. */
export async function texts(browser: Browser, sel: string): Promise<string[]> {
  return browser.execute((s: string) => [...document.querySelectorAll(s)].map((e) => e.textContent ?? ""), sel);
}

/** Runs `body`; on failure saves a screenshot and the app's log next to the other outputs, then rethrows. */
export async function withEvidence(browser: Browser, name: string, body: () => Promise<void>) {
  try {
    await body();
  } catch (e) {
    await browser.saveScreenshot(join(OUT, `${name}-failure.png`)).catch(() => undefined);
    const log = await browser.execute(() => document.querySelector("#log ul")?.textContent ?? "").catch(() => "");
    writeFileSync(join(OUT, `${name}-failure-log.txt`), String(log));
    throw e;
  }
}

export function windowShot(name: string) {
  // The whole X screen (window decorations and all), when imagemagick's `import` is there.
  if (!process.env.DISPLAY || !existsSync("/usr/bin/import")) return;
  try {
    execFileSync("/usr/bin/import", ["-window", "root", join(OUT, name)], { timeout: 20_000 });
  } catch {
    /* the WebDriver screenshots below are the required ones */
  }
}

let metricsName = "metrics";

/** Writes the metrics gathered so far (also called at the end), so a timed-out run still leaves its figures. */
export function saveMetrics() {
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, `${metricsName}.json`), JSON.stringify(metrics, null, 2));
}

/** Starts tauri-driver for the test file and writes its metrics at the end to `<OUT>/<name>.json`. */
export function useDriver(name: string) {
  metricsName = name;
  beforeAll(async () => {
    if (!BIN || !existsSync(BIN)) throw new Error(`NANODEX_APP_BIN must point at the built app (got "${BIN}"); run scripts/e2e.sh`);
    mkdirSync(OUT, { recursive: true });
    await startDriver();
  });
  afterAll(() => {
    if (driver?.pid) {
      try {
        process.kill(-driver.pid, "SIGTERM");
      } catch {
        /* already gone */
      }
    }
    saveMetrics();
  });
}

