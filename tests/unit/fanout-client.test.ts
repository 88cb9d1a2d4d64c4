/**
 * The client library over real sockets, against a scripted local WebSocket
 * server (127.0.0.1, ephemeral port) that plays the server's side of the
 * protocol: resume, dedupe, rotation, backoff, watchdog, cursor errors.
 */
import { type AddressInfo, createServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WS, { WebSocketServer } from "ws";
import type { WireEvent } from "../../shared/events/schema.ts";
import {
  type ClientState,
  connectFanout,
  type FanoutClient,
  type FanoutClientOptions,
} from "../../shared/fanout-client/client.ts";
import type { ErrorMessage } from "../../shared/fanout/protocol.ts";

interface Script {
  url: string;
  /** The URL of every connection made, in order. */
  connections: URL[];
  /** When each connection arrived (ms). */
  times: number[];
  close(): Promise<void>;
}

/** A server that runs `script(socket, index)` for the index-th connection. */
async function scriptedServer(script: (socket: WS, index: number) => void): Promise<Script> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => server.once("listening", () => r()));
  const connections: URL[] = [];
  const times: number[] = [];
  server.on("connection", (socket, req) => {
    connections.push(new URL(req.url ?? "/", "ws://x"));
    times.push(Date.now());
    script(socket, connections.length - 1);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/functions/v1/ws-fanout`,
    connections,
    times,
    close: () =>
      new Promise((r) => {
        for (const c of server.clients) c.terminate();
        server.close(() => r());
      }),
  };
}

const ev = (n: number): WireEvent => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
  source: "s",
  sequence_id: n,
  event_type: "t",
  category: "system",
  timestamp: new Date(0).toISOString(),
  data: { n },
});

const hello = (cursor: number, heartbeat_ms = 30_000) =>
  JSON.stringify({ type: "hello", instance: "test", cursor, heartbeat_ms, max_connection_ms: 1e6 });
const event = (cursor: number, n = cursor) =>
  JSON.stringify({ type: "event", cursor, event: ev(n) });
const batch = (cursor: number, ns: number[]) =>
  JSON.stringify({ type: "batch", cursor, events: ns.map(ev) });

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function connect(
  server: Script,
  extra: Partial<FanoutClientOptions> = {},
): { client: FanoutClient; got: number[]; states: ClientState[]; errors: ErrorMessage[] } {
  const got: number[] = [];
  const states: ClientState[] = [];
  const errors: ErrorMessage[] = [];
  const client = connectFanout({
    url: server.url,
    token: "tok",
    WebSocket: WS,
    onEvents: (events) => got.push(...events.map((e) => e.sequence_id)),
    onState: (s) => states.push(s),
    onError: (e) => errors.push(e),
    backoff: { initialMs: 50, maxMs: 400 },
    ...extra,
  });
  cleanups.push(() => client.close());
  return { client, got, states, errors };
}

describe("fanout client", () => {
  it("resumes from the last cursor after a rotation, at once, and drops what it already delivered", async () => {
    const server = await scriptedServer((socket, i) => {
      if (i === 0) {
        socket.send(hello(0));
        socket.send(event(1));
        socket.send(batch(3, [2, 3]));
        socket.close(1012, "rotation");
      } else {
        socket.send(hello(3));
        socket.send(event(3)); // a duplicate of what was delivered: dropped
        socket.send(batch(5, [4, 5]));
      }
    });
    cleanups.push(() => server.close());
    const { client, got, states } = connect(server, {
      categories: ["system"],
      sources: ["s"],
      backoff: { initialMs: 300, maxMs: 300, random: () => 0.999 },
    });
    await until(() => got.length >= 5);
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect(client.cursor).toBe(5);
    expect(server.connections[0]!.searchParams.get("since")).toBeNull();
    expect(server.connections[1]!.searchParams.get("since")).toBe("3");
    expect(server.connections[1]!.searchParams.get("categories")).toBe("system");
    expect(server.connections[1]!.searchParams.get("sources")).toBe("s");
    // 1012 after an open connection: no backoff wait.
    expect(server.times[1]! - server.times[0]!).toBeLessThan(150); // backoff would wait ~300 ms
    expect(states.map((s) => s.status)).toEqual([
      "connecting",
      "open",
      "reconnecting",
      "connecting",
      "open",
    ]);
  });

  it("keeps the live start from hello as its resume point even when no event came", async () => {
    const server = await scriptedServer((socket, i) => {
      socket.send(hello(i === 0 ? 41 : 41));
      if (i === 0) socket.close(1012, "rotation");
    });
    cleanups.push(() => server.close());
    connect(server);
    await until(() => server.connections.length >= 2);
    expect(server.connections[1]!.searchParams.get("since")).toBe("41");
  });

  it("backs off with full jitter after failures and reports the next attempt time", async () => {
    const server = await scriptedServer((socket) => socket.close(1011, "boom"));
    cleanups.push(() => server.close());
    const { states } = connect(server, {
      backoff: { initialMs: 100, maxMs: 400, random: () => 0.999 },
    });
    await until(() => server.connections.length >= 4, 5000);
    const gaps = server.times.slice(1).map((t, i) => t - server.times[i]!);
    // Ceilings 100, 200, 400 with random ≈ 1.
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeGreaterThanOrEqual(190);
    expect(gaps[2]).toBeGreaterThanOrEqual(390);
    const waiting = states.find((s) => s.status === "reconnecting");
    expect(waiting).toMatchObject({
      status: "reconnecting",
      lastClose: { code: 1011, reason: "boom" },
    });
  });

  it("reconnects when heartbeats stop (watchdog: two intervals)", async () => {
    const server = await scriptedServer((socket, i) => {
      socket.send(hello(0, 100)); // then silence
      if (i > 0) socket.send(event(1));
    });
    cleanups.push(() => server.close());
    const { got, states } = connect(server, { backoff: { initialMs: 1, maxMs: 1 } });
    await until(() => got.length === 1, 3000);
    const gap = server.times[1]! - server.times[0]!;
    expect(gap).toBeGreaterThanOrEqual(190);
    expect(gap).toBeLessThan(1000);
    expect(states.find((s) => s.status === "reconnecting")).toMatchObject({
      lastClose: { code: 4000 },
    });
  });

  it("pings keep a quiet connection alive", async () => {
    const server = await scriptedServer((socket) => {
      socket.send(hello(0, 250)); // watchdog at 500 ms; pings every 100 ms leave margin under load
      const t = setInterval(() => socket.send('{"type":"ping"}'), 100);
      socket.on("close", () => clearInterval(t));
    });
    cleanups.push(() => server.close());
    connect(server);
    await new Promise((r) => setTimeout(r, 1200));
    expect(server.connections.length).toBe(1);
  });

  it("reports an expired cursor and joins live instead of retrying it forever", async () => {
    const server = await scriptedServer((socket, i) => {
      if (i === 0) {
        socket.send(
          JSON.stringify({
            type: "error",
            code: "cursor_expired",
            message: "too old",
            oldest_cursor: 100,
          }),
        );
        socket.close(4410, "cursor_expired");
      } else {
        socket.send(hello(150));
        socket.send(event(151));
      }
    });
    cleanups.push(() => server.close());
    const { got, errors, client } = connect(server, { since: 7 });
    await until(() => got.length === 1);
    expect(server.connections[0]!.searchParams.get("since")).toBe("7");
    expect(server.connections[1]!.searchParams.get("since")).toBeNull();
    expect(errors).toEqual([
      expect.objectContaining({ code: "cursor_expired", oldest_cursor: 100 }),
    ]);
    expect(client.cursor).toBe(151);
  });

  it("close() ends the stream: no reconnect, no further events", async () => {
    const server = await scriptedServer((socket) => {
      socket.send(hello(0));
      const t = setInterval(
        () => socket.readyState === WS.OPEN && socket.send(event(Date.now())),
        20,
      );
      socket.on("close", () => clearInterval(t));
    });
    cleanups.push(() => server.close());
    const { client, got, states } = connect(server);
    await until(() => got.length > 0);
    client.close();
    const count = got.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(count);
    expect(server.connections.length).toBe(1);
    expect(states.at(-1)).toEqual({ status: "closed" });
  });

  it("asks a token function again on every connect", async () => {
    const server = await scriptedServer((socket, i) => {
      socket.send(hello(0));
      if (i === 0) socket.close(1012, "rotation");
    });
    cleanups.push(() => server.close());
    let n = 0;
    connect(server, { token: () => `tok-${++n}` });
    await until(() => server.connections.length >= 2);
    expect(server.connections.map((u) => u.searchParams.get("token"))).toEqual(["tok-1", "tok-2"]);
  });

  it("closing while a connection attempt is still in flight raises nothing", async () => {
    // A TCP server that accepts and never answers the upgrade: the socket stays CONNECTING.
    const accepted: Socket[] = [];
    const tcp = createServer((c) => accepted.push(c));
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() =>
      new Promise<void>((r) => {
        for (const c of accepted) c.destroy();
        tcp.close(() => r());
      })
    );
    const uncaught: unknown[] = [];
    const record = (e: unknown) => uncaught.push(e);
    process.on("uncaughtException", record);
    cleanups.push(() => process.off("uncaughtException", record));
    const client = connectFanout({
      url: `http://127.0.0.1:${(tcp.address() as AddressInfo).port}/functions/v1/ws-fanout`,
      token: "tok",
      WebSocket: WS,
      onEvents: () => {},
    });
    await until(() => accepted.length === 1);
    expect(client.state.status).toBe("connecting");
    client.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(uncaught).toEqual([]);
    expect(client.state.status).toBe("closed");
  });
});
