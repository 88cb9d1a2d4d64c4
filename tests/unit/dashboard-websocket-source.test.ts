/**
 * The dashboard's WebSocket source over real sockets, against a scripted
 * local server playing ws-fanout: it resumes from its cursor after a close,
 * and when the server says the cursor has expired it closes the hole from
 * the history API — keeping only events routed to the WebSocket path, marked
 * as recovered — while the indicator goes reconnecting → catching up →
 * connected.
 */
import type { AddressInfo } from "node:net";
import { afterEach, expect, it } from "vitest";
import WS, { WebSocketServer } from "ws";
import type { LinkState } from "../../dashboard/src/core/connection.ts";
import type { DashboardEvent, Delivery, Path } from "../../dashboard/src/core/events.ts";
import type { HistoryReader, LiveSource } from "../../dashboard/src/sources/types.ts";
import { startWebSocketSource } from "../../dashboard/src/sources/websocket.ts";
import type { WebSocketConstructorLike } from "../../shared/fanout-client/client.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ev = (n: number, routes?: string[]): DashboardEvent => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
  source: "s",
  sequence_id: n,
  event_type: "system.tick",
  category: "system",
  timestamp: new Date(1_800_000_000_000 + n).toISOString(),
  data: { n },
  ...(routes ? { routes, seq: n, checksum: "x", checksum_alg: "crc32", received_at: "" } : {}),
});

it("resumes from its cursor, and backfills from history when the cursor has expired", async () => {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => server.once("listening", () => r()));
  const urls: URL[] = [];
  server.on("connection", (socket: WS, req) => {
    const index = urls.push(new URL(req.url ?? "/", "ws://x")) - 1;
    const send = (m: unknown) => socket.send(JSON.stringify(m));
    const hello = (cursor: number) =>
      send({
        type: "hello",
        instance: `i${index}`,
        cursor,
        heartbeat_ms: 30_000,
        max_connection_ms: 60_000,
      });
    if (index === 0) {
      hello(5);
      send({ type: "event", cursor: 6, event: ev(1) });
      setTimeout(() => socket.close(1011, "database unavailable"), 50);
    } else if (index === 1) {
      send({
        type: "error",
        code: "cursor_expired",
        message: "cursor 6 is older than the ledger's retention",
      });
      socket.close(4410, "cursor expired");
    } else {
      hello(40);
      send({ type: "event", cursor: 41, event: ev(5) });
    }
  });
  cleanups.push(() =>
    new Promise((r) => {
      for (const c of server.clients) c.terminate();
      server.close(r);
    })
  );
  const { port } = server.address() as AddressInfo;

  const historyCalls: Parameters<HistoryReader>[0][] = [];
  const history: HistoryReader = (q) => {
    historyCalls.push(q);
    return Promise.resolve({
      events: [ev(2, ["websocket", "realtime"]), ev(3, ["realtime"]), ev(4, ["websocket"])],
      next: null,
    });
  };
  const delivered: { n: number; path: Path; delivery: Delivery }[] = [];
  const links: LinkState[] = [];
  const notices: string[] = [];
  let firstLiveAt = 0;
  const source: LiveSource = startWebSocketSource({
    apiUrl: `http://127.0.0.1:${port}`,
    token: () => "anon-token",
    history,
    WebSocket: WS as unknown as WebSocketConstructorLike,
    sink: {
      events: (events, path, delivery) => {
        firstLiveAt ||= Date.now();
        for (const e of events) delivered.push({ n: e.sequence_id, path, delivery });
      },
      link: (s) => links.push(s),
      notice: (_p, m) => notices.push(m),
    },
  });
  cleanups.push(() => source.close());

  const deadline = Date.now() + 10_000;
  while (!delivered.some((d) => d.n === 5) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(urls[0]!.searchParams.get("token")).toBe("anon-token");
  expect(urls[0]!.searchParams.has("since")).toBe(false);
  expect(urls[1]!.searchParams.get("since")).toBe("6");
  expect(urls[2]!.searchParams.has("since")).toBe(false);
  // Events routed to Realtime only are not the WebSocket path's to deliver.
  expect(delivered).toEqual([
    { n: 1, path: "websocket", delivery: "live" },
    { n: 2, path: "websocket", delivery: "backfill" },
    { n: 4, path: "websocket", delivery: "backfill" },
    { n: 5, path: "websocket", delivery: "live" },
  ]);
  expect(historyCalls).toHaveLength(1);
  const since = Date.parse(historyCalls[0]!.receivedSince!);
  expect(firstLiveAt - since).toBeGreaterThanOrEqual(10_000);
  expect(firstLiveAt - since).toBeLessThan(11_000);
  const statuses = links.map((l) => l.status);
  expect(statuses).toEqual(expect.arrayContaining(["connected", "reconnecting", "catching_up"]));
  expect(statuses.at(-1)).toBe("connected");
  expect(links.find((l) => l.status === "reconnecting")?.detail).toBe(
    "database unavailable (1011)",
  );
  expect(notices.join("\n")).toContain("Recovered 2 event(s) from history");
});
