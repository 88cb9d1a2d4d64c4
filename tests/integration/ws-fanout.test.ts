/**
 * ws-fanout over real sockets against the shared test stack, which runs two
 * ws-fanout instances behind the gateway: ingest → outbox → relay → ledger →
 * both instances → clients.
 */
import { SignJWT } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import WS from "ws";
import { checksumEvent } from "../../shared/events/checksum.ts";
import type { WireEvent } from "../../shared/events/schema.ts";
import { connectFanout } from "../../shared/fanout-client/client.ts";
import type { ErrorMessage } from "../../shared/fanout/protocol.ts";
import { useDb } from "../helpers/db.ts";
import {
  events,
  openRaw,
  produce,
  type RawConnection,
  trackedWebSocket,
  uniqueSource,
  until,
} from "../helpers/fanout.ts";
import { fetchJson, functionUrl, stack } from "../helpers/http.ts";

const info = () => stack().info;
const sql = useDb();
const open: { close(): void }[] = [];
afterAll(() => {
  for (const c of open) c.close();
});

async function raw(query: Record<string, string | number> = {}): Promise<RawConnection> {
  const conn = await openRaw(info(), { token: info().anonKey, ...query });
  open.push(conn);
  return conn;
}

const seqs = (list: { event: WireEvent }[], source?: string) =>
  list.filter((d) => !source || d.event.source === source).map((d) => d.event.sequence_id);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function control(action: "kill" | "start" | "stop", index?: number) {
  const res = await fetch(
    `${info().apiUrl}/_local/functions/ws-fanout/${action}${
      index === undefined ? "" : `?index=${index}`
    }`,
    { method: "POST", headers: { authorization: `Bearer ${info().serviceRoleKey}` } },
  );
  expect(res.status).toBe(200);
}

describe("ws-fanout: refusals before the upgrade", () => {
  const expectRefused = async (query: Record<string, string>, status: number) => {
    const error = await openRaw(info(), query).then(
      () => null,
      (e: Error & { status?: number; body?: { error?: ErrorMessage } }) => e,
    );
    expect(error?.status).toBe(status);
    return error!.body as { error: { code: string; message: string } };
  };

  it("refuses a missing, malformed, wrongly signed or expired token with 401", async () => {
    await expectRefused({}, 401);
    await expectRefused({ token: "not-a-jwt" }, 401);
    const forged = await new SignJWT({ role: "anon" }).setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode("some-other-secret-some-other-secret"));
    await expectRefused({ token: forged }, 401);
    const secret = new TextEncoder().encode(stack().jwtSecret);
    const expired = await new SignJWT({ role: "authenticated" }).setProtectedHeader({
      alg: "HS256",
    })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(secret);
    const body = await expectRefused({ token: expired }, 401);
    expect(body.error.code).toBe("unauthorized");
    // A valid authenticated JWT and the service-role key are accepted.
    const user = await new SignJWT({ role: "authenticated", sub: "u1" }).setProtectedHeader({
      alg: "HS256",
    }).setExpirationTime("1h").sign(secret);
    (await raw({ token: user })).close();
    (await raw({ token: info().serviceRoleKey })).close();
  });

  it("refuses bad parameters with 400 and the reason", async () => {
    const token = info().anonKey;
    expect((await expectRefused({ token, categories: "critical,nope" }, 400)).error.message)
      .toMatch(/unknown category "nope"/);
    expect((await expectRefused({ token, since: "-3" }, 400)).error.message).toMatch(/since/);
    expect((await expectRefused({ token, sorces: "x" }, 400)).error.message).toMatch(/sorces/);
  });

  it("answers a plain GET with 426 and the relay without the service-role key with 401", async () => {
    const res = await fetchJson<{ error: { code: string } }>(
      functionUrl("ws-fanout", `?token=${info().anonKey}`),
    );
    expect(res.status).toBe(426);
    expect(res.body.error.code).toBe("upgrade_required");
    const relay = await fetchJson(functionUrl("ws-fanout", "/relay"), {
      method: "POST",
      headers: { authorization: `Bearer ${info().anonKey}`, "content-type": "application/json" },
      body: JSON.stringify({ events: [] }),
    });
    expect(relay.status).toBe(401);
    const bad = await fetchJson<{ error: { message: string } }>(
      functionUrl("ws-fanout", "/relay"),
      {
        method: "POST",
        headers: {
          authorization: `Bearer ${info().serviceRoleKey}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ events: [{ id: "nope", event_time: "2026-01-01T00:00:00Z" }] }),
      },
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/id must be a UUID/);
  });
});

describe("ws-fanout: delivery", () => {
  it("delivers every event once, in sequence order, with the payload and checksum that were stored", async () => {
    const source = uniqueSource("order");
    const conn = await raw({ sources: source });
    for (let i = 0; i < 10; i++) {
      const answer = await produce(
        info(),
        events(source, i * 20 + 1, i * 20 + 20, {
          data: { nested: { b: 1, a: [1.5, "x"] }, i },
        }),
      );
      expect(answer.stored).toBe(20);
      expect(answer.results.every((r) => r.routes?.includes("websocket"))).toBe(true);
    }
    await until(() => conn.delivered.length >= 200, "200 events");
    await new Promise((r) => setTimeout(r, 300));
    expect(seqs(conn.delivered)).toEqual(range(1, 200));
    for (let i = 1; i < conn.cursors.length; i++) {
      expect(conn.cursors[i]!).toBeGreaterThan(conn.cursors[i - 1]!);
    }
    // What arrived is what was stored, checksum for checksum, and the ledger says so.
    const stored = await sql<{ id: string; checksum: string; checksum_alg: "crc32" | "sha256" }[]>`
      select id, checksum, checksum_alg from public.monitoring_events where source = ${source}`;
    const byId = new Map(stored.map((r) => [r.id, r]));
    for (const { event } of conn.delivered) {
      const row = byId.get(event.id)!;
      expect(await checksumEvent(event, row.checksum_alg)).toBe(row.checksum);
      expect(event.data).toEqual({
        nested: { b: 1, a: [1.5, "x"] },
        i: Math.floor((event.sequence_id - 1) / 20),
      });
    }
    const ledger = await sql<{ n: number; same: number; delivered: number }[]>`
      select count(*)::int as n,
             count(*) filter (where l.checksum = e.checksum)::int as same,
             (select count(*)::int from cutover.relay_outbox o
              where o.source = ${source} and o.status = 'delivered') as delivered
      from cutover.ws_delivery_ledger l
      join public.monitoring_events e on e.id = l.event_id and e."timestamp" = l.event_time
      where l.source = ${source}`;
    expect(ledger[0]).toEqual({ n: 200, same: 200, delivered: 200 });
  });

  it("applies category and source filters", async () => {
    const [a, b, c] = [uniqueSource("fa"), uniqueSource("fb"), uniqueSource("fc")];
    const critical = await raw({ categories: "critical", sources: [a, b, c].join(",") });
    const onlyA = await raw({ sources: a });
    const systemB = await raw({ categories: "system", sources: b });
    for (const source of [a, b, c]) {
      await produce(info(), [
        ...events(source, 1, 3, { category: "critical", event_type: "app.error" }),
        ...events(source, 4, 6, { category: "system" }),
      ]);
    }
    await until(() =>
      critical.delivered.length >= 9 && onlyA.delivered.length >= 6 &&
      systemB.delivered.length >= 3, "filtered deliveries");
    await new Promise((r) => setTimeout(r, 300));
    const keys = (c: RawConnection) =>
      c.delivered.map((d) =>
        `${d.event.source.slice(0, 2)}:${d.event.category}:${d.event.sequence_id}`
      );
    expect(keys(critical).sort()).toEqual(
      ["fa", "fb", "fc"].flatMap((s) => [1, 2, 3].map((n) => `${s}:critical:${n}`)).sort(),
    );
    expect(seqs(onlyA.delivered)).toEqual(range(1, 6));
    expect(onlyA.delivered.every((d) => d.event.source === a)).toBe(true);
    expect(keys(systemB)).toEqual([4, 5, 6].map((n) => `fb:system:${n}`));
  });

  it("resumes with since across a close: no gap and no duplicate at the seam (raw protocol)", async () => {
    const source = uniqueSource("seam");
    const first = await raw({ sources: source });
    let producing = true;
    const producer = (async () => {
      for (let i = 0; producing || i < 30; i++) {
        await produce(info(), events(source, i * 5 + 1, i * 5 + 5));
        await new Promise((r) => setTimeout(r, 10));
        if (i >= 60) break;
      }
    })();
    await until(() => first.delivered.length >= 40, "first connection's events");
    first.close();
    await first.closed;
    const last = first.cursors.at(-1)!;
    // Events keep flowing while nobody listens; the resume must replay them and join live.
    await new Promise((r) => setTimeout(r, 200));
    const second = await raw({ sources: source, since: last });
    producing = false;
    await producer;
    const total = (await sql<{ n: number }[]>`
      select count(*)::int as n from public.monitoring_events where source = ${source}`)[0]!.n;
    await until(() => first.delivered.length + second.delivered.length >= total, "all events");
    await new Promise((r) => setTimeout(r, 300));
    const all = [...seqs(first.delivered), ...seqs(second.delivered)];
    expect(all).toEqual(range(1, total));
    expect(second.cursors[0]!).toBeGreaterThan(last);
  });

  it("the client library resumes after its socket is cut and delivers each event once, in order", async () => {
    const source = uniqueSource("client");
    const { Ctor, sockets } = trackedWebSocket();
    const got: WireEvent[] = [];
    const client = connectFanout({
      url: functionUrl("ws-fanout"),
      token: info().anonKey,
      sources: [source],
      WebSocket: Ctor,
      backoff: { initialMs: 50, maxMs: 200 },
      onEvents: (list) => got.push(...list),
    });
    open.push(client);
    await until(() => client.state.status === "open", "client open");
    for (let i = 0; i < 40; i++) {
      await produce(info(), events(source, i * 5 + 1, i * 5 + 5));
      if (i % 10 === 5) sockets.at(-1)!.terminate(); // an abrupt drop, no close frame
    }
    await until(() => got.length >= 200, "200 events via the client");
    await new Promise((r) => setTimeout(r, 300));
    expect(got.map((e) => e.sequence_id)).toEqual(range(1, 200));
    expect(sockets.length).toBeGreaterThanOrEqual(5);
    client.close();
  });
});

describe("ws-fanout: two instances", () => {
  it("serves clients on both instances, and every client gets every event once, in per-source order", async () => {
    const sources = [
      uniqueSource("m0"),
      uniqueSource("m1"),
      uniqueSource("m2"),
      uniqueSource("m3"),
    ];
    const conns: RawConnection[] = [];
    for (let i = 0; i < 20; i++) {
      const conn = await raw({ sources: sources.join(",") });
      conns.push(conn);
      const per = (label: string) => conns.filter((c) => c.instance === label).length;
      if (per("ws-fanout") >= 2 && per("ws-fanout#1") >= 2) break;
    }
    const instances = new Set(conns.map((c) => c.instance));
    expect(instances).toEqual(new Set(["ws-fanout", "ws-fanout#1"]));
    for (const c of conns) {
      const hello = c.messages[0]!;
      expect(hello).toMatchObject({
        type: "hello",
        instance: c.instance,
        heartbeat_ms: expect.any(Number),
      });
    }
    // Four producers at once, each sending its source in order: relays land
    // on both instances, and appends race.
    await Promise.all(sources.map(async (source) => {
      for (let i = 0; i < 10; i++) await produce(info(), events(source, i * 10 + 1, i * 10 + 10));
    }));
    await until(() => conns.every((c) => c.delivered.length >= 400), "400 events on every client");
    await new Promise((r) => setTimeout(r, 300));
    for (const c of conns) {
      expect(c.delivered.length).toBe(400);
      for (const s of sources) expect(seqs(c.delivered, s)).toEqual(range(1, 100));
      for (let i = 1; i < c.cursors.length; i++) {
        expect(c.cursors[i]!).toBeGreaterThan(c.cursors[i - 1]!);
      }
    }
    // Both instances saw the same stream: same events under the same cursors.
    const key = (c: RawConnection) => c.delivered.map((d) => d.event.id).join(",");
    expect(new Set(conns.map(key)).size).toBe(1);
  });
});

describe("ws-fanout: slow consumers", () => {
  it(
    "cuts off a client that stopped reading while the others keep receiving",
    { timeout: 90_000 },
    async () => {
      const source = uniqueSource("stall");
      const healthy = await raw({ sources: source });
      const stalled = await raw({ sources: source });
      // Stop reading: the TCP window closes, then the server's send queue grows.
      (stalled.socket as unknown as { _socket: { pause(): void } })._socket.pause();
      // Open connections on the stalled client's instance (round-robin reaches both).
      const connectionsOn = async (label: string): Promise<number> => {
        for (let i = 0; i < 6; i++) {
          const res = await fetchJson<{ instance: string; connections: number }>(
            functionUrl("ws-fanout", "/status"),
            { headers: { authorization: `Bearer ${info().serviceRoleKey}` } },
          );
          if (res.body.instance === label) return res.body.connections;
        }
        throw new Error(`status never reached ${label}`);
      };
      const before = await connectionsOn(stalled.instance!);
      const pad = "x".repeat(30_000);
      const perRequest = 30;
      let sent = 0;
      // The kernel's socket buffers absorb several MB before the server's own
      // queue grows; keep sending (up to ~100 MB) until the server cuts it off.
      // The healthy client is checked after every request, so at most one request's worth
      // (~0.9 MB) is ever in flight to it: far under the 4 MB cut-off even when this process
      // is slow to read on a loaded machine.
      let healthyClosed: { code: number; reason: string } | null = null;
      void healthy.closed.then((c) => (healthyClosed = c));
      for (let i = 0; i < 110; i++) {
        await produce(info(), events(source, sent + 1, sent + perRequest, { data: { pad } }));
        sent += perRequest;
        await until(
          () => healthy.delivered.length >= sent,
          () =>
            `the healthy client keeping up (${healthy.delivered.length}/${sent} delivered${
              healthyClosed ? `, closed ${healthyClosed.code} ${healthyClosed.reason}` : ""
            })`,
          20_000,
        );
        if (i % 5 === 4 && (await connectionsOn(stalled.instance!)) < before) break;
      }
      await until(() => healthy.delivered.length >= sent, "the healthy client", 30_000);
      expect(seqs(healthy.delivered)).toEqual(range(1, sent));
      // Now read what the stalled client was sent: a prefix, then the error and 1008.
      (stalled.socket as unknown as { _socket: { resume(): void } })._socket.resume();
      const closed = await stalled.closed;
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/slow consumer/);
      const error = stalled.messages.find((m) => m.type === "error") as ErrorMessage | undefined;
      expect(error?.code).toBe("slow_consumer");
      const got = seqs(stalled.delivered);
      expect(got.length).toBeLessThan(sent);
      expect(got).toEqual(range(1, got.length));
    },
  );
});

describe("ws-fanout: crash of every instance", () => {
  it("loses nothing: the outbox drains after restart and a resuming client gets every event once", {
    timeout: 90_000,
  }, async () => {
    const source = uniqueSource("kill");
    const got: WireEvent[] = [];
    const client = connectFanout({
      url: functionUrl("ws-fanout"),
      token: info().anonKey,
      sources: [source],
      WebSocket: WS,
      backoff: { initialMs: 100, maxMs: 1000 },
      onEvents: (list) => got.push(...list),
    });
    open.push(client);
    await until(() => client.state.status === "open", "client open");
    let n = 0;
    const send = async (count: number) => {
      for (let i = 0; i < count; i++, n += 5) await produce(info(), events(source, n + 1, n + 5));
    };
    try {
      await send(10);
      await control("kill");
      await send(10); // acknowledged while no ws-fanout runs: only the outbox has them
      const [pending] = await sql<{ n: number }[]>`
        select count(*)::int as n from cutover.relay_outbox where source = ${source} and status = 'pending'`;
      // The 50 acknowledged during the outage, plus any whose relay was in flight at the kill.
      expect(pending!.n).toBeGreaterThanOrEqual(50);
    } finally {
      await control("start");
    }
    await send(10);
    await until(() => got.length >= n, `${n} events after the restart`, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(got.map((e) => e.sequence_id)).toEqual(range(1, n));
    client.close();
  });
});
