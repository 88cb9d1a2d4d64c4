/**
 * Real Chromium for the dashboard's browser tests: playwright-core driving
 * Debian's chromium (`/usr/bin/chromium`, or $CHROMIUM_PATH) — no browser
 * download. Screenshots go to test-results/dashboard/ (git-ignored).
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll } from "vitest";
import { repoRoot } from "../../local/toolchain.ts";
import { stack } from "./http.ts";

export const SCREENSHOT_DIR = path.join(repoRoot, "test-results", "dashboard");

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** One browser for this test file, closed after it. */
export function useBrowser(): () => Promise<Browser> {
  let browser: Promise<Browser> | undefined;
  afterAll(async () => {
    if (browser) await (await browser).close();
  });
  return () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium not found at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`,
      );
    }
    browser ??= chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // performance.memory reports real heap sizes (for the memory bound check).
        "--enable-precise-memory-info",
        // gc() before heap readings, so growth is measured, not garbage.
        "--js-flags=--expose-gc",
      ],
    });
    return browser;
  };
}

export interface OpenOptions {
  mode?: "websocket" | "realtime" | "dual";
  /** Put the service-role key in sessionStorage before the page loads (as a sign-in does). */
  signedIn?: boolean;
  width?: number;
  height?: number;
  hash?: string;
}

/** A fresh context (its own storage) with the dashboard open; page errors fail loudly. */
export async function openDashboard(
  browser: Browser,
  options: OpenOptions = {},
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 860 },
  });
  const errors: string[] = [];
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(e.message));
  await page.addInitScript(
    ({ key, mode }) => {
      if (sessionStorage.getItem("cutover.test.init")) return;
      sessionStorage.setItem("cutover.test.init", "1");
      if (key) sessionStorage.setItem("cutover.dashboard.credential", key);
      if (mode) localStorage.setItem("cutover.dashboard.mode", mode);
    },
    { key: options.signedIn ? stack().info.serviceRoleKey : null, mode: options.mode ?? null },
  );
  await page.goto(`${stack().info.dashboardUrl}/${options.hash ? `#${options.hash}` : ""}`);
  return { context, page, errors };
}

/**
 * Waits until every active data source reports `status` (default
 * "connected") and the page's initial history read is done, so that events
 * sent afterwards arrive through the live paths.
 */
export async function waitConnected(
  page: Page,
  timeoutMs = 15_000,
  statuses: string[] = ["connected"],
): Promise<void> {
  await page.waitForFunction(
    (ok) => {
      const app = (globalThis as unknown as {
        cutover?: {
          app: {
            links: Record<string, { status: string } | undefined>;
            mode: string;
            historyAccess: string;
          };
        };
      }).cutover?.app;
      if (!app) return false;
      const wanted = app.mode === "dual" ? ["websocket", "realtime"] : [app.mode];
      const anyConnected = wanted.some((p) => app.links[p]?.status === "connected");
      return wanted.every((p) => ok.includes(app.links[p]?.status ?? "")) &&
        (app.historyAccess !== "unknown" || !anyConnected);
    },
    statuses,
    { timeout: timeoutMs, polling: 50 },
  );
}

/** Saves a full-page screenshot as test-results/dashboard/<name>.png; returns the path. */
export async function screenshot(page: Page, name: string, fullPage = false): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** The tail rows currently in the DOM, top to bottom: source, seq and via columns. */
export function visibleRows(page: Page): Promise<{ source: string; seq: string; via: string }[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>("#view-live .vl-row")]
      .filter((r) => !r.hidden)
      .sort((a, b) =>
        Number(a.getAttribute("aria-posinset")) - Number(b.getAttribute("aria-posinset"))
      )
      .map((r) => ({
        source: r.querySelector(".c-src")?.textContent ?? "",
        seq: r.querySelector(".c-seq")?.textContent ?? "",
        via: r.querySelector(".c-via")?.textContent ?? "",
      }))
  );
}
