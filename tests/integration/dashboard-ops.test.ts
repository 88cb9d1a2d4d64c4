/**
 * The dashboard's operator paths in real Chromium: signing in through the
 * UI and changing flags (the change shows in the flags API and its audit
 * log; a 400 marks the field at fault; a 409 keeps the edits and reapplies
 * them), and ws-fanout going away and coming back (the indicator shows
 * "reconnecting" with a countdown, then nothing is missing or repeated).
 */
import { randomUUID } from "node:crypto";
import type { Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { useDb } from "../helpers/db.ts";
import { produce } from "../helpers/fanout.ts";
import { restoreDefaults } from "../helpers/flags.ts";
import { fetchJson, functionUrl, stack } from "../helpers/http.ts";
import { openDashboard, screenshot, useBrowser, waitConnected } from "../helpers/browser.ts";

const browser = useBrowser();
const sql = useDb();
afterAll(() => restoreDefaults(sql));

const service = () => ({ authorization: `Bearer ${stack().info.serviceRoleKey}` });

interface FlagsBody {
  version: number;
  categories: Record<string, { percentage: number; adapters: string[] }>;
}
interface AuditBody {
  entries: {
    actor: string;
    key: string;
    reason: string | null;
    after: Record<string, unknown> | null;
  }[];
}

async function control(name: string, action: "stop" | "start"): Promise<void> {
  const res = await fetch(`${stack().info.apiUrl}/_local/functions/${name}/${action}`, {
    method: "POST",
    headers: service(),
  });
  expect(res.status).toBe(200);
  await res.text();
}

/** Ids from `ids` the page has seen on the WebSocket path (live or replayed). */
function seenOnWebSocket(page: Page, ids: string[]): Promise<string[]> {
  return page.evaluate((wanted) => {
    const store = (globalThis as unknown as {
      cutover: {
        app: { store: { get(id: string): { seenAt: { websocket?: number } } | undefined } };
      };
    }).cutover.app.store;
    return wanted.filter((id) => store.get(id)?.seenAt.websocket !== undefined);
  }, ids);
}

async function batch(source: string, from: number, count: number): Promise<string[]> {
  const answer = await produce(
    stack().info,
    Array.from({ length: count }, (_, i) => ({
      source,
      sequence_id: from + i,
      event_type: "worker.heartbeat",
      category: "system",
    })),
  );
  expect(answer.stored).toBe(count);
  return answer.results.map((r) => r.id);
}

describe("dashboard operator paths in Chromium", () => {
  it(
    "flags: sign in, change a percentage with a reason; it shows in the flags API and the audit; 400 and 409 are explained",
    async () => {
      const { page, context, errors } = await openDashboard(await browser(), {
        mode: "websocket",
        hash: "flags",
      });
      await page.getByText("Flags are for the service role").waitFor();

      // Sign in through the dialog; a wrong key is refused first.
      await page.locator("#view-flags").getByRole("button", { name: "Sign in" }).click();
      await page.locator("#signin-key").fill(stack().info.anonKey);
      await page.locator(".signin button[type=submit]").click();
      await page.getByText("That is the anon key").waitFor();
      await page.locator("#signin-key").fill(stack().info.serviceRoleKey);
      await page.locator("#signin-operator").fill("browser-test");
      await page.locator(".signin button[type=submit]").click();
      await page.locator(".flags-head h2").waitFor();
      expect(await page.evaluate(() => sessionStorage.getItem("cutover.dashboard.credential")))
        .toBe(stack().info.serviceRoleKey);
      expect(await page.evaluate(() => localStorage.getItem("cutover.dashboard.credential")))
        .toBeNull();

      const pct = page.locator("input[name='performance.percentage']");
      await pct.fill("37.5");
      await page.locator("input[name='performance.adapters.realtime']").check();
      await expect(page.locator(".pending").textContent()).resolves.toContain(
        "performance.percentage: 50 → 37.5",
      );
      const reason = `browser test ${randomUUID().slice(0, 6)}: ramp performance`;
      await page.getByLabel("Reason for the change").fill(reason);
      await page.getByRole("button", { name: "Apply changes" }).click();
      await page.locator(".feedback.ok", { hasText: "Applied: now version" }).waitFor();

      const flags = await fetchJson<FlagsBody>(functionUrl("flags"), { headers: service() });
      expect(flags.body.categories.performance).toMatchObject({
        percentage: 37.5,
        adapters: ["websocket", "realtime"],
      });
      const audit = await fetchJson<AuditBody>(
        functionUrl("flags", "/audit?key=performance&limit=5"),
        {
          headers: service(),
        },
      );
      expect(audit.body.entries[0]).toMatchObject({
        actor: "service_role:browser-test",
        key: "performance",
        reason,
        after: expect.objectContaining({ percentage: 37.5 }),
      });
      await page.locator(".audit-table tr", { hasText: reason }).first().waitFor();

      // 400: the API's reason, and the field at fault marked.
      await pct.fill("12.345");
      await page.getByLabel("Reason for the change").fill("finer grain");
      await page.getByRole("button", { name: "Apply changes" }).click();
      await page.locator(".feedback.bad", { hasText: "Refused (400)" }).waitFor();
      await expect(
        page.locator("input[name='performance.percentage']").getAttribute("aria-invalid"),
      )
        .resolves.toBe("true");
      await expect(page.locator("[data-field='performance.percentage'] .field-error").textContent())
        .resolves.toContain("0.01 grain");
      await screenshot(page, "flags-refused-400");
      const unchanged = await fetchJson<FlagsBody>(functionUrl("flags"), { headers: service() });
      expect(unchanged.body.version).toBe(flags.body.version);

      // 409: someone else changes the flags first; the edits survive a reload and apply.
      await page.getByRole("button", { name: "Discard" }).click();
      await page.locator("input[name='system.percentage']").fill("90");
      const other = await fetchJson(functionUrl("flags", "/categories/critical"), {
        method: "PATCH",
        headers: {
          ...service(),
          "content-type": "application/json",
          "x-cutover-actor": "someone-else",
        },
        body: JSON.stringify({
          expected_version: flags.body.version,
          reason: "concurrent change",
          changes: { percentage: 99 },
        }),
      });
      expect(other.status).toBe(200);
      await page.getByLabel("Reason for the change").fill("lower system share");
      await page.getByRole("button", { name: "Apply changes" }).click();
      const conflict = page.locator(".feedback.bad", {
        hasText: "someone changed the flags first",
      });
      await conflict.waitFor();
      await expect(conflict.textContent()).resolves.toContain(
        `it is now version ${flags.body.version + 1}`,
      );
      await screenshot(page, "flags-refused-409");
      await page.getByRole("button", { name: "Reload, keeping my edits" }).click();
      await page.locator(".flags-head h2", { hasText: `v${flags.body.version + 1}` }).waitFor();
      await expect(page.locator(".pending").textContent()).resolves.toContain(
        "system.percentage: 100 → 90",
      );
      await page.getByLabel("Reason for the change").fill("lower system share");
      await page.getByRole("button", { name: "Apply changes" }).click();
      await page.locator(".feedback.ok", { hasText: "Applied" }).waitFor();
      const after = await fetchJson<FlagsBody>(functionUrl("flags"), { headers: service() });
      expect(after.body.categories.system!.percentage).toBe(90);
      expect(after.body.categories.critical!.percentage).toBe(99);
      await screenshot(page, "flags-applied", true);
      expect(errors).toEqual([]);
      await context.close();
      await restoreDefaults(sql);
    },
    60_000,
  );

  it(
    "ws-fanout stopped and restarted: 'reconnecting' with a countdown, then no event missing or repeated",
    async () => {
      const { page, context, errors } = await openDashboard(await browser(), {
        mode: "websocket",
        signedIn: true,
      });
      await waitConnected(page);
      const source = `outage-${randomUUID().slice(0, 8)}`;
      const before = await batch(source, 1, 10);
      await expect.poll(() => seenOnWebSocket(page, before).then((s) => s.length), {
        timeout: 10_000,
      }).toBe(10);

      await control("ws-fanout", "stop");
      const link = page.locator(".link[data-path=websocket]");
      await page.locator(".link[data-path=websocket][data-status=reconnecting]").waitFor({
        timeout: 10_000,
      });
      await expect(link.locator(".link-detail").textContent()).resolves.toMatch(
        /retrying (in \d+ s|now)/,
      );
      await screenshot(page, "reconnecting");
      // Ingest keeps accepting: the outbox holds what ws-fanout cannot take yet.
      const during = await batch(source, 11, 10);
      await new Promise((r) => setTimeout(r, 2000));
      expect(await seenOnWebSocket(page, during)).toEqual([]);

      await control("ws-fanout", "start");
      await page.locator(".link[data-path=websocket][data-status=connected]").waitFor({
        timeout: 40_000,
      });
      const afterIds = await batch(source, 21, 10);
      const all = [...before, ...during, ...afterIds];
      await expect.poll(() => seenOnWebSocket(page, all).then((s) => s.length), { timeout: 20_000 })
        .toBe(30);

      const state = await page.evaluate(() => {
        const app = (globalThis as unknown as {
          cutover: {
            app: {
              repeats: Record<string, number>;
              store: { view: { event: { source: string; sequence_id: number } }[] };
            };
          };
        }).cutover.app;
        return { repeats: app.repeats, seqs: app.store.view.map((r) => r.event) };
      });
      expect(state.repeats.websocket).toBe(0);
      const mine = state.seqs.filter((e) => e.source === source).map((e) => e.sequence_id).sort((
        a,
        b,
      ) => a - b);
      expect(mine).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(errors).toEqual([]);
      await context.close();
    },
    90_000,
  );
});
