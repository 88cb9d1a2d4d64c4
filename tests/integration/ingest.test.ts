import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { checksumEvent } from "../../shared/events/checksum.ts";
import { deriveEventId } from "../../shared/events/event-id.ts";
import type { WireEvent } from "../../shared/events/schema.ts";
import { useDb } from "../helpers/db.ts";
import { ingest, makeEvent } from "../helpers/events.ts";
import { eventually, restoreDefaults, setCategory, setSetting } from "../helpers/flags.ts";
import { fetchJson, functionUrl, stack } from "../helpers/http.ts";

const sql = useDb();
afterAll(() => restoreDefaults(sql));

async function counts() {
  const [row] = await sql<{ events: number; outbox: number }[]>`
    select (select count(*)::int from public.monitoring_events) as events,
           (select count(*)::int from cutover.relay_outbox) as outbox`;
  return row!;
}

/** Asserts that `fn` leaves the database exactly as it was. */
async function changesNothing(fn: () => Promise<unknown>) {
  const before = await counts();
  await fn();
  expect(await counts()).toEqual(before);
}

describe("ingest: per-event results", () => {
  it("stores, reports duplicates and rejects with a reason, in request order", async () => {
    const a = makeEvent();
    const b = makeEvent({ event_type: "cache.latency", data: { p99: 12.5 } });
    const bad = makeEvent({ sequence_id: "seven" });
    const res = await ingest({ events: [a, b, bad, a] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ stored: 2, duplicates: 1, rejected: 1 });
    expect(res.body.results.map((r) => [r.index, r.status])).toEqual([
      [0, "stored"],
      [1, "stored"],
      [2, "rejected"],
      [3, "duplicate"],
    ]);
    expect(res.body.results[2]!.error).toEqual({
      code: "invalid_event",
      message: "sequence_id must be an integer",
    });
    expect(res.body.results[0]!.id).toBe(
      await deriveEventId(a.source as string, a.sequence_id as number),
    );
    expect(res.body.results[3]!.id).toBe(res.body.results[0]!.id);

    const rows = await sql`select id, category from public.monitoring_events where source in (${a
      .source as string}, ${b.source as string}) order by seq`;
    expect(rows.map((r) => r.category)).toEqual(["critical", "performance"]);
  });

  it("a retried request stores nothing twice", async () => {
    const events = [makeEvent(), makeEvent(), makeEvent({ id: crypto.randomUUID() })];
    const first = await ingest({ events });
    expect(first.body.stored).toBe(3);
    const before = await counts();
    const retry = await ingest({ events });
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ stored: 0, duplicates: 3, rejected: 0 });
    expect(retry.body.results.map((r) => r.id)).toEqual(first.body.results.map((r) => r.id));
    expect(await counts()).toEqual(before);
  });

  it("keeps the producer's id and accepts gzip", async () => {
    const id = crypto.randomUUID();
    const res = await ingest(makeEvent({ id }), { gzip: true });
    expect(res.status).toBe(200);
    expect(res.body.results[0]).toMatchObject({ id, status: "stored" });
  });

  it("stores checksums that Node recomputes identically from the stored row (canonical form across runtimes)", async () => {
    const events = [
      makeEvent({ data: { z: 1, a: { y: [1, 2, { b: true, a: null }], x: "é" }, n: 1.5e-7 } }),
      makeEvent({ event_type: "cache.hit", data: { ratio: 0.25, big: 12345678901234 } }),
      makeEvent({
        category: "user_activity",
        timestamp: "2026-11-20T10:00:00.123456+05:30",
        data: { "ü": "🙂" },
      }),
    ];
    const res = await ingest({ events });
    expect(res.body.stored).toBe(3);
    const ids = res.body.results.map((r) => r.id!);
    const rows = await sql<
      (WireEvent & { checksum: string; checksum_alg: "crc32" | "sha256"; ts: Date })[]
    >`
      select id::text, source, sequence_id::int, event_type, category, "timestamp" as ts, data, checksum, checksum_alg
      from public.monitoring_events where id = any(${ids}::uuid[])`;
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      const wire: WireEvent = { ...row, timestamp: row.ts.toISOString() };
      expect(await checksumEvent(wire, row.checksum_alg)).toBe(row.checksum);
    }
    expect(rows.find((r) => r.category === "user_activity")!.ts.toISOString()).toBe(
      "2026-11-20T04:30:00.123Z",
    );
    expect(rows.map((r) => r.checksum_alg).sort()).toEqual(["crc32", "sha256", "sha256"]);
  });
});

describe("ingest: routing and the outbox", () => {
  it("writes an outbox row for exactly the events routed to websocket", async () => {
    await setSetting(sql, "global_override", null);
    const events = Array.from(
      { length: 40 },
      (_, i) =>
        makeEvent({
          event_type:
            ["service.error", "cache.latency", "user.click", "debug.trace", "deploy.done"][i % 5],
        }),
    );
    const res = await ingest({ events });
    expect(res.body.stored).toBe(40);
    const ids = res.body.results.map((r) => r.id!);
    const stored = await sql<{ id: string; routes: string[] }[]>`
      select id::text, routes from public.monitoring_events where id = any(${ids}::uuid[])`;
    const outbox = await sql<{ event_id: string }[]>`
      select event_id::text from cutover.relay_outbox where event_id = any(${ids}::uuid[])`;
    const expected = stored.filter((s) => s.routes.includes("websocket")).map((s) => s.id).sort();
    expect(outbox.map((o) => o.event_id).sort()).toEqual(expected);
    for (const r of res.body.results) {
      expect(stored.find((s) => s.id === r.id)!.routes).toEqual(r.routes);
    }
  });

  it("follows the override and percentage changes within 5 s, and never drops", async () => {
    await setSetting(sql, "global_override", "realtime_only");
    await eventually(async () => {
      const res = await ingest(makeEvent());
      expect(res.body.results[0]!.routes).toEqual(["realtime"]);
    }, 5000);
    const res = await ingest({ events: [makeEvent(), makeEvent({ event_type: "debug.log" })] });
    const ids = res.body.results.map((r) => r.id!);
    expect(
      (await sql`select count(*)::int as n from cutover.relay_outbox where event_id = any(${ids}::uuid[])`)[
        0
      ]!.n,
    ).toBe(0);
    await setSetting(sql, "global_override", null);

    await setCategory(sql, "performance", { percentage: 0, adapters: ["realtime"] });
    await eventually(async () => {
      const r = await ingest(makeEvent({ event_type: "cache.miss" }));
      expect(r.body.results[0]!.routes).toEqual(["websocket"]);
    }, 5000);
    await setCategory(sql, "performance", { percentage: 100, adapters: ["realtime"] });
    await eventually(async () => {
      const r = await ingest(makeEvent({ event_type: "cache.miss" }));
      expect(r.body.results[0]!.routes).toEqual(["websocket", "realtime"]);
    }, 5000);
    await setCategory(sql, "debug", { enabled: false, percentage: 100, adapters: [] });
    const dbg = await ingest(makeEvent({ event_type: "debug.trace" }));
    expect(dbg.body.results[0]!.routes).toEqual(["websocket"]);
  });
});

describe("ingest: errors change nothing", () => {
  const producerKey = () => stack().info.producerKey;

  it("401 without or with a wrong key, or with a user JWT", async () => {
    await changesNothing(async () => {
      for (const key of [null, "nope", `${producerKey()}x`, stack().info.anonKey]) {
        const res = await ingest(makeEvent(), { key });
        expect(res.status).toBe(401);
        expect((res.body as unknown as { error: { code: string } }).error.code).toBe(
          "unauthorized",
        );
      }
    });
  });

  it("accepts the service-role key", async () => {
    expect((await ingest(makeEvent(), { key: stack().info.serviceRoleKey })).status).toBe(200);
  });

  it("400 for malformed JSON, a wrong shape, or only invalid events", async () => {
    await changesNothing(async () => {
      const cases: [unknown, string | undefined, string][] = [
        [undefined, "{not json", "malformed_json"],
        [[makeEvent()], undefined, "malformed_body"],
        [{ events: "x" }, undefined, "malformed_body"],
        [{ events: [] }, undefined, "no_events"],
        [
          { events: [{ source: "a" }, makeEvent({ timestamp: "nope" })] },
          undefined,
          "no_valid_events",
        ],
      ];
      for (const [body, raw, code] of cases) {
        const res = await ingest(body, raw ? { raw } : {});
        expect(res.status, code).toBe(400);
        expect(res.body.error?.code).toBe(code);
      }
    });
  });

  it("413 over each published limit, with the limit in the message", async () => {
    await changesNothing(async () => {
      const big = await ingest(null, {
        raw: JSON.stringify({ events: [makeEvent({ data: { x: "a".repeat(1_100_000) } })] }),
      });
      expect(big.status).toBe(413);
      expect(big.body.error?.message).toContain("1048576 bytes");

      const many = await ingest({ events: Array.from({ length: 1001 }, () => makeEvent()) });
      expect(many.status).toBe(413);
      expect(many.body.error?.message).toContain("at most 1000 events");

      const bomb = await ingest(null, {
        gzip: true,
        raw: `{"events":[${" ".repeat(50_000_000)}]}`,
      });
      expect(bomb.status).toBe(413);
      expect(bomb.body.error?.code).toBe("request_too_large");

      const fat = await ingest(makeEvent({ data: { x: "a".repeat(40_000) } }));
      expect(fat.status).toBe(413);
      expect(fat.body.error?.message).toMatch(/per-event size limit/);
    });
    const mixed = await ingest({
      events: [makeEvent(), makeEvent({ data: { x: "a".repeat(40_000) } })],
    });
    expect(mixed.status).toBe(200);
    expect(mixed.body.results[1]).toMatchObject({
      status: "rejected",
      error: { code: "event_too_large" },
    });
  });

  it("415 for another content type or encoding", async () => {
    await changesNothing(async () => {
      for (
        const headers of [{ "content-type": "text/plain" }, { "content-type": "" }, {
          "content-encoding": "br",
        }] as Record<string, string>[]
      ) {
        const res = await ingest(makeEvent(), { headers });
        expect(res.status).toBe(415);
      }
    });
  });

  it("400 for corrupt gzip", async () => {
    await changesNothing(async () => {
      const res = await ingest(null, {
        raw: "definitely not gzip",
        headers: { "content-encoding": "gzip" },
      });
      expect(res.status).toBe(400);
      expect(res.body.error?.code).toBe("malformed_gzip");
    });
  });

  it("publishes its limits and refuses other methods", async () => {
    const limits = await fetchJson<{ limits: Record<string, number> }>(functionUrl("ingest"));
    expect(limits.body.limits).toEqual({
      max_request_bytes: 1048576,
      max_event_bytes: 32768,
      max_events: 1000,
      max_future_skew_ms: 3600000,
    });
    const put = await fetchJson(functionUrl("ingest"), { method: "PUT" });
    expect(put.status).toBe(405);
  });

  it("503 with Retry-After while the database is down; resumes by itself", async () => {
    const control = (action: string) =>
      fetch(`${stack().info.apiUrl}/_local/postgres/${action}`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack().info.serviceRoleKey}` },
      });
    const event = makeEvent();
    expect((await control("stop")).status).toBe(200);
    try {
      const res = await ingest({ events: [event] });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("5");
      expect(res.body.error?.message).toContain("nothing was stored");
    } finally {
      expect((await control("start")).status).toBe(200);
    }
    const after = await eventually(async () => {
      const res = await ingest({ events: [event] });
      expect(res.status).toBe(200);
      return res;
    }, 15000);
    expect(after.body.stored).toBe(1);
  });
});

it("gzip bodies are decompressed before the event limit applies", async () => {
  const events = Array.from({ length: 3 }, () => makeEvent());
  const res = await fetchJson<{ stored: number }>(functionUrl("ingest"), {
    method: "POST",
    headers: {
      "content-type": "application/json; charset=utf-8",
      "content-encoding": "gzip",
      authorization: `Bearer ${stack().info.producerKey}`,
    },
    body: gzipSync(JSON.stringify({ events })),
  });
  expect(res.body.stored).toBe(3);
});
