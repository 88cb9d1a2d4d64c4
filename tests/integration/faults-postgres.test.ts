/**
 * Postgres stopped mid-load, on the shared stack: producers keep sending
 * while the database goes away and comes back. Ingest answers 503 with
 * Retry-After (never a 200 for something it did not store, never a 500),
 * the producers' retries of the same events are idempotent, the service
 * resumes by itself, and every acknowledged event ends up delivered exactly
 * once to each adapter it was routed to — whatever the breakers did in
 * between (they are put back afterwards, with the flags).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useDb } from "../helpers/db.ts";
import { restoreDefaults } from "../helpers/flags.ts";
import { stack } from "../helpers/http.ts";
import {
  type Acked,
  control,
  type Delivery,
  expectExactAccount,
  freshEvent,
  resetResilience,
  sendUntilAcked,
} from "../helpers/resilience.ts";

const sql = useDb();

beforeAll(async () => {
  await resetResilience(sql);
  await restoreDefaults(sql);
});

afterAll(async () => {
  // Whatever opened during the outage is closed again, for the next test file.
  await resetResilience(sql);
  await restoreDefaults(sql);
});

describe("Postgres stopped mid-load", () => {
  it(
    "ingest sheds with 503 + Retry-After, loses nothing acknowledged, and resumes by itself",
    { timeout: 240_000 },
    async () => {
      const info = stack().info;
      const categories = ["critical", "performance", "system", "user_activity"];
      const deliveries: Delivery[] = [];
      let stop = false;
      const producers = categories.map(async (category) => {
        while (!stop) {
          const events = Array.from({ length: 5 }, () => freshEvent(category));
          deliveries.push(
            await sendUntilAcked(info, events, { retryMs: 300, deadline: Date.now() + 90_000 }),
          );
          await new Promise((r) => setTimeout(r, 100));
        }
      });
      await new Promise((r) => setTimeout(r, 2_500));
      expect(await control(info, "postgres/stop")).toBe(200);
      const downAt = Date.now();
      await new Promise((r) => setTimeout(r, 4_000));
      expect(await control(info, "postgres/start")).toBe(200);
      const upAt = Date.now();
      // Keep producing a while after the restart: the service must take it by itself.
      await new Promise((r) => setTimeout(r, 6_000));
      stop = true;
      await Promise.all(producers);

      const statuses = deliveries.flatMap((d) => d.statuses);
      // The outage was seen, and answered as the contract says.
      expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
      for (const ra of deliveries.flatMap((d) => d.retryAfter)) expect(ra).toMatch(/^\d+$/);
      expect(statuses.every((s) => [200, 503, 502, 0].includes(s))).toBe(true);
      // Every request was acknowledged in the end, after the outage too.
      const acked: Acked[] = deliveries.flatMap((d) => d.acked);
      expect(acked.length).toBe(deliveries.length * 5);
      expect(deliveries.length).toBeGreaterThan(20);
      expect(upAt - downAt).toBeGreaterThanOrEqual(4_000);

      // Exactly once per routed adapter: relays that failed while the
      // database was down reach ws-fanout through its drain or dlq-retry;
      // Realtime deliveries deferred by an open breaker through dlq-retry.
      await expectExactAccount(sql, acked, 150_000);
    },
  );
});
