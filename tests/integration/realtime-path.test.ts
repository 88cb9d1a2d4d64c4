/**
 * The Realtime path end to end with the real @supabase/supabase-js client:
 * ingest → monitoring_events_live / realtime.send → local Realtime →
 * subscriber, in both delivery modes, under RLS, and gap-free across a
 * reconnect through the consumer helper's backfill.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  createHistoryFetcher,
  type MonitoringEvent,
  subscribeMonitoringEvents,
} from "../../shared/realtime-consumer/subscribe.ts";
import { useDb } from "../helpers/db.ts";
import { ingest, makeEvent } from "../helpers/events.ts";
import { eventually, restoreDefaults, setCategory } from "../helpers/flags.ts";
import { stack } from "../helpers/http.ts";
import { Collector, subscribed, supabaseClient, userJwt } from "../helpers/supabase.ts";
import type { SupabaseClient } from "@supabase/supabase-js";

const sql = useDb();
const clients: SupabaseClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) {
    await c.removeAllChannels();
    c.realtime.disconnect();
  }
});
afterAll(() => restoreDefaults(sql));

async function client(role?: "authenticated") {
  const c = supabaseClient(role ? await userJwt(role) : undefined);
  clients.push(c);
  return c;
}

/** Sends through ingest and returns the stored ids. */
async function send(events: Record<string, unknown>[]): Promise<string[]> {
  const res = await ingest({ events });
  expect(res.status).toBe(200);
  return res.body.results.map((r) => r.id!);
}

/** Waits until ingest routes a probe event of `eventType` as expected (config caches refresh in ≤ 2 s). */
async function untilRouted(eventType: string, routes: string[]) {
  await eventually(async () => {
    const res = await ingest(makeEvent({ event_type: eventType }));
    expect(res.body.results[0]!.routes).toEqual(routes);
  }, 6000);
}

describe("postgres_changes mode", () => {
  it("delivers an ingested event to an authenticated subscriber, in the server's shape", async () => {
    const c = await client("authenticated");
    const got = new Collector<Record<string, unknown>>();
    const channel = c.channel("live-test").on(
      "postgres_changes",
      { event: "INSERT", schema: "public", table: "monitoring_events_live" },
      (p) => got.push(p as unknown as Record<string, unknown>),
    );
    expect((await subscribed(channel)).status).toBe("SUBSCRIBED");
    const event = makeEvent({ data: { code: 502, nested: { ok: false } } });
    const [id] = await send([event]);
    const [payload] = await got.waitFor((items) =>
      items.some((p) => (p.new as { id: string }).id === id)
    );
    expect(payload).toMatchObject({
      schema: "public",
      table: "monitoring_events_live",
      eventType: "INSERT",
      new: {
        id,
        source: event.source,
        category: "critical",
        data: { code: 502, nested: { ok: false } },
      },
    });
    expect(typeof payload!.commit_timestamp).toBe("string");
  });

  it("applies a filter: a subscriber to critical does not see performance events", async () => {
    await setCategory(sql, "performance", { percentage: 100, adapters: ["websocket", "realtime"] });
    await untilRouted("cache.latency", ["websocket", "realtime"]);
    const c = await client("authenticated");
    const got = new Collector<{ new: { id: string; category: string } }>();
    const channel = c.channel("filter-test").on(
      "postgres_changes",
      {
        event: "INSERT",
        schema: "public",
        table: "monitoring_events_live",
        filter: "category=eq.critical",
      },
      (p) => got.push(p as unknown as { new: { id: string; category: string } }),
    );
    expect((await subscribed(channel)).status).toBe("SUBSCRIBED");
    const [perfId, critId] = await send([makeEvent({ event_type: "cache.latency" }), makeEvent()]);
    await got.waitFor((items) => items.some((p) => p.new.id === critId));
    await new Promise((r) => setTimeout(r, 300));
    expect(got.items.map((p) => p.new.id)).not.toContain(perfId);
    expect(new Set(got.items.map((p) => p.new.category))).toEqual(new Set(["critical"]));
  });

  it("an anon subscriber without a read policy receives nothing", async () => {
    const anon = await client();
    const user = await client("authenticated");
    const anonGot = new Collector<unknown>();
    const userGot = new Collector<{ new: { id: string } }>();
    const a = anon.channel("anon-test").on(
      "postgres_changes",
      { event: "INSERT", schema: "public", table: "monitoring_events_live" },
      (p) => anonGot.push(p),
    );
    const u = user.channel("user-test").on(
      "postgres_changes",
      { event: "INSERT", schema: "public", table: "monitoring_events_live" },
      (p) => userGot.push(p as unknown as { new: { id: string } }),
    );
    expect((await subscribed(a)).status).toBe("SUBSCRIBED");
    expect((await subscribed(u)).status).toBe("SUBSCRIBED");
    const [id] = await send([makeEvent()]);
    await userGot.waitFor((items) => items.some((p) => p.new.id === id));
    await new Promise((r) => setTimeout(r, 300));
    expect(anonGot.items).toEqual([]);
  });

  it("answers an unsupported subscription with an error, not silence", async () => {
    const c = await client("authenticated");
    const channel = c.channel("bad-filter").on(
      "postgres_changes",
      {
        event: "INSERT",
        schema: "public",
        table: "monitoring_events_live",
        filter: "no_such_column=eq.1",
      },
      () => {},
    );
    const result = await subscribed(channel);
    expect(result.status).toBe("CHANNEL_ERROR");
    expect(String(result.error?.message ?? result.error)).toMatch(
      /no_such_column|column|Unable to subscribe/i,
    );
  });
});

describe("broadcast mode", () => {
  it("delivers a batch per category topic to a private-channel subscriber; anon is refused", async () => {
    await setCategory(sql, "system", { delivery_mode: "broadcast" });
    await untilRouted("deploy.finished", ["websocket", "realtime"]);
    await eventually(async () => {
      const [row] =
        await sql`select delivery_mode from cutover.category_flags where category = 'system'`;
      expect(row!.delivery_mode).toBe("broadcast");
    });
    await new Promise((r) => setTimeout(r, 2200)); // ingest's config cache

    const c = await client("authenticated");
    const got = new Collector<{ events: { id: string; category: string; seq: number }[] }>();
    const channel = c.channel("monitoring:system", { config: { private: true } })
      .on(
        "broadcast",
        { event: "events" },
        (m) => got.push(m.payload as { events: { id: string; category: string; seq: number }[] }),
      );
    expect((await subscribed(channel)).status).toBe("SUBSCRIBED");

    const ids = await send(
      Array.from({ length: 5 }, () => makeEvent({ event_type: "deploy.finished" })),
    );
    const batches = await got.waitFor((items) =>
      items.flatMap((b) => b.events.map((e) => e.id)).includes(ids[4]!)
    );
    const mine = batches.filter((b) => b.events.some((e) => ids.includes(e.id)));
    expect(mine).toHaveLength(1); // one message carried the whole request's batch
    expect(mine[0]!.events.map((e) => e.id)).toEqual(ids);
    expect(mine[0]!.events.every((e) => e.category === "system")).toBe(true);
    const [live] =
      await sql`select count(*)::int as n from public.monitoring_events_live where id = any(${ids}::uuid[])`;
    expect(live!.n).toBe(0);

    const anon = await client();
    const refused = await subscribed(
      anon.channel("monitoring:system", { config: { private: true } }),
    );
    expect(refused.status).toBe("CHANNEL_ERROR");
  });
});

describe("consumer helper", () => {
  it("both: a delivery-mode switch while subscribed loses nothing and repeats nothing, live", async () => {
    await setCategory(sql, "system", { delivery_mode: "postgres_changes" });
    await untilRouted("deploy.step", ["websocket", "realtime"]);
    const token = await userJwt("authenticated");
    const c = supabaseClient(token);
    clients.push(c);
    const got = new Collector<MonitoringEvent>();
    const sub = subscribeMonitoringEvents({
      client: c,
      mode: "both",
      categories: ["system"],
      history: createHistoryFetcher({ url: stack().info.apiUrl, token }),
      onEvents: (events) => got.push(...events),
    });
    await eventually(() => Promise.resolve(expect(sub.state.status).toBe("live")));
    const backfilledBefore = sub.state.backfilled;
    const source = `consumer-both-${crypto.randomUUID().slice(0, 6)}`;
    const ids: string[] = [];
    let seq = 0;
    const sendOne = async () =>
      ids.push(
        ...await send([makeEvent({ source, sequence_id: ++seq, event_type: "deploy.step" })]),
      );
    // Traffic keeps flowing across two switches; ingest instances pick each up within their
    // config refresh, so some events go out the old way and some the new way.
    for (const mode of ["broadcast", "postgres_changes"] as const) {
      await setCategory(sql, "system", { delivery_mode: mode });
      for (let i = 0; i < 15; i++) {
        await sendOne();
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // Both ways were really used: the live table holds some of the events and not all.
    const [row] = await sql<{ live: number }[]>`
      select count(*)::int as live from public.monitoring_events_live where id = any (${ids})`;
    const live = row!.live;
    expect(live).toBeGreaterThan(0);
    expect(live).toBeLessThan(ids.length);
    await got.waitFor((items) => ids.every((id) => items.some((e) => e.id === id)), 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const mine = got.items.filter((e) => e.source === source);
    // Each once (the two ways need not interleave in send order).
    expect(mine.map((e) => e.sequence_id).sort((a, b) => a - b)).toEqual(ids.map((_, i) => i + 1));
    // Delivered live: no reconnect happened, so no backfill ran after the subscription was live.
    expect(sub.state.backfilled).toBe(backfilledBefore);
    await sub.close();
  });

  for (const mode of ["postgres_changes", "broadcast"] as const) {
    it(`${mode}: a subscriber that drops and reconnects misses nothing and gets nothing twice`, async () => {
      await setCategory(sql, "system", { delivery_mode: mode });
      await new Promise((r) => setTimeout(r, 2200));
      const token = await userJwt("authenticated");
      const c = supabaseClient(token);
      clients.push(c);
      const got = new Collector<MonitoringEvent>();
      const statuses: string[] = [];
      const sub = subscribeMonitoringEvents({
        client: c,
        mode,
        categories: ["system"],
        history: createHistoryFetcher({ url: stack().info.apiUrl, token }),
        onEvents: (events) => got.push(...events),
        onState: (s) => statuses.push(s.status),
      });
      await eventually(() => Promise.resolve(expect(sub.state.status).toBe("live")));
      const source = `consumer-${mode}-${crypto.randomUUID().slice(0, 6)}`;
      const batch = (from: number) =>
        Array.from(
          { length: 5 },
          (_, i) => makeEvent({ source, sequence_id: from + i, event_type: "deploy.step" }),
        );

      const first = await send(batch(1));
      await got.waitFor((items) => first.every((id) => items.some((e) => e.id === id)));

      c.realtime.disconnect();
      await eventually(() => Promise.resolve(expect(sub.state.status).toBe("reconnecting")));
      const missed = await send(batch(6));
      c.realtime.connect();

      const after = await send(batch(11));
      const all = [...first, ...missed, ...after];
      await got.waitFor((items) => all.every((id) => items.some((e) => e.id === id)), 15000);
      await new Promise((r) => setTimeout(r, 500));
      const mine = got.items.filter((e) => e.source === source);
      expect(mine.map((e) => e.id).sort()).toEqual([...all].sort());
      expect(mine.map((e) => e.sequence_id).filter((s, i, a) => a.indexOf(s) !== i)).toEqual([]);
      expect(sub.state.backfilled).toBeGreaterThan(0);
      expect(statuses).toContain("backfilling");
      await sub.close();
    });
  }
});
