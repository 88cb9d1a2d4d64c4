/**
 * Accessibility of the dashboard in real Chromium: axe-core (WCAG 2 A/AA
 * rules, contrast included) finds no serious or critical violation on any
 * view, signed out or in, and the keyboard alone reaches the data-source
 * switch, the views, the tail and an event's details.
 */
import { createRequire } from "node:module";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { produce } from "../helpers/fanout.ts";
import { stack } from "../helpers/http.ts";
import { openDashboard, useBrowser, waitConnected } from "../helpers/browser.ts";

const browser = useBrowser();
const axeSource = createRequire(import.meta.url)("axe-core").source as string;

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

async function axe(page: Page): Promise<Violation[]> {
  await page.evaluate(axeSource);
  return await page.evaluate(async () => {
    const result = await (globalThis as unknown as {
      axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: Violation[] }> };
    }).axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => ({ target: n.target })),
    }));
  });
}

describe("dashboard accessibility", () => {
  it("axe finds no serious or critical WCAG 2 AA violation on any view", async () => {
    await produce(stack().info, [
      {
        source: "a11y-check",
        sequence_id: Date.now(),
        event_type: "payment.error",
        category: "critical",
      },
    ]);
    const found: Record<string, Violation[]> = {};
    for (const signedIn of [false, true]) {
      const { page, context } = await openDashboard(await browser(), { mode: "dual", signedIn });
      await waitConnected(page, 15_000, ["connected", "offline"]);
      for (const view of ["live", "health", "reconcile", "flags"]) {
        await page.locator(`a[data-view=${view}]`).click();
        await page.waitForTimeout(1200);
        const serious = (await axe(page)).filter((v) =>
          v.impact === "serious" || v.impact === "critical"
        );
        if (serious.length) found[`${view}${signedIn ? " (signed in)" : ""}`] = serious;
      }
      await context.close();
    }
    expect(found).toEqual({});
  }, 90_000);

  it(
    "the keyboard alone reaches the source switch, the views, the tail and an event's details",
    async () => {
      const { page, context } = await openDashboard(await browser(), { mode: "websocket" });
      await waitConnected(page);
      await produce(stack().info, [
        {
          source: "keyboard-check",
          sequence_id: Date.now(),
          event_type: "payment.error",
          category: "critical",
        },
      ]);
      await page.locator("#view-live .vl-row").first().waitFor();
      const reached = new Set<string>();
      for (let i = 0; i < 40; i++) {
        await page.keyboard.press("Tab");
        const what = await page.evaluate(() => {
          const el = document.activeElement as HTMLElement | null;
          if (!el) return "";
          if (el.matches("input[name=source-mode]")) return "source switch";
          if (el.matches("a.tab")) return `tab ${el.dataset.view}`;
          if (el.matches("[role=listbox]")) return "tail";
          return el.tagName.toLowerCase();
        });
        reached.add(what);
        if (what === "tail") break;
      }
      expect([...reached]).toEqual(
        expect.arrayContaining(["source switch", "tab live", "tab flags", "tail"]),
      );
      await page.keyboard.press("ArrowDown");
      await page.keyboard.press("Enter");
      await page.locator("dialog.detail").waitFor({ state: "visible" });
      await page.keyboard.press("Escape");
      await page.locator("dialog.detail").waitFor({ state: "hidden" });
      // The focus returns to the tail, so reading can go on.
      expect(await page.evaluate(() => document.activeElement?.getAttribute("role"))).toBe(
        "listbox",
      );
      await context.close();
    },
    60_000,
  );
});
