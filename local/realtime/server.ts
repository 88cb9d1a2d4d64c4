/**
 * The local Supabase Realtime endpoint (dev and tests only — production uses
 * Supabase Realtime): a WebSocket server at `/realtime/v1/websocket` on the
 * gateway that the real `@supabase/supabase-js` client subscribes to, fed by
 * logical replication of the `supabase_realtime` publication and of
 * `realtime.messages`. What it emulates and what not: ./README.md.
 *
 * @example
 * ```ts
 * await applyRealtimeBootstrap(sql); // before the project's migrations
 * const realtime = await startLocalRealtime({ dbUrl, jwtSecret, log });
 * await startGateway({ ..., mounts: [realtime.mount] });
 * // ...
 * await realtime.stop(); // before PostgreSQL stops
 * ```
 */
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import type { Duplex } from "node:stream";
import postgres from "postgres";
import { WebSocketServer } from "ws";
import type { GatewayMount } from "../gateway.ts";
import { repoRoot } from "../toolchain.ts";
import { databaseBroadcastOf, fanOutBroadcast, isMessagesChange } from "./broadcast.ts";
import { createChangesEngine, formatCommitTimestamp, type TimedChange } from "./changes.ts";
import type { RealtimeContext } from "./channel.ts";
import { Connection } from "./connection.ts";
import { upgradeRefusal, verifyToken } from "./jwt.ts";
import { encodeMessage, SUPPORTED_VSNS, type Vsn } from "./protocol.ts";
import { broadcastTopicOf, ChannelRegistry } from "./registry.ts";
import { startReplicationFeed, type Transaction } from "./replication.ts";

export interface LocalRealtimeOptions {
  /** A superuser connection string (the server sets roles and reads the catalog). */
  dbUrl: string;
  /** The HS256 secret the project's JWTs (API keys and user tokens) are signed with. */
  jwtSecret: string;
  log: (line: string) => void;
}

export interface LocalRealtime {
  /** Mount on the gateway: serves `/realtime/v1/websocket`; other `/realtime/v1/` paths get an error. */
  mount: GatewayMount;
  /** Closes every client socket, then the replication stream and database connections. */
  stop(): Promise<void>;
}

const PREFIX = "/realtime/v1/";
const WEBSOCKET_PATH = "/realtime/v1/websocket";
/** Publications streamed: the project's tables, and realtime.messages (Broadcast from the database). */
const PUBLICATIONS = ["supabase_realtime", "supabase_realtime_messages_publication"];
/** Hosted drops realtime.messages partitions after a few days; the emulator deletes old rows. */
const MESSAGE_RETENTION = "3 days";

/**
 * Creates (idempotently) the `realtime` schema pieces hosted Supabase has —
 * `realtime.messages`, `realtime.topic()`, `realtime.send()`,
 * `realtime.send_binary()`, `realtime.broadcast_changes()` — and the
 * publication for `realtime.messages`. Run it before the project's migrations,
 * which may write policies on `realtime.messages`.
 */
export async function applyRealtimeBootstrap(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(
    await readFile(path.join(repoRoot, "local", "realtime", "bootstrap.sql"), "utf8"),
  );
}

function rejectUpgrade(socket: Duplex, status: number, error: string): void {
  const body = JSON.stringify({ error });
  const reason = { 400: "Bad Request", 401: "Unauthorized", 404: "Not Found" }[status] ?? "Error";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Only `x-*` headers reach policies (`request.headers`), as on hosted Realtime. */
function forwardedHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (key.startsWith("x-") && typeof value === "string") out[key] = value;
  }
  return out;
}

/**
 * Starts the server: connects to the database, opens the replication stream
 * (changes committed from the moment this resolves are delivered), and returns
 * the gateway mount. Throws when the bootstrap has not been applied or the
 * database cannot be reached.
 */
export async function startLocalRealtime(options: LocalRealtimeOptions): Promise<LocalRealtime> {
  const { log } = options;
  const secret = new TextEncoder().encode(options.jwtSecret);
  const sql = postgres(options.dbUrl, {
    max: 6,
    onnotice: () => {},
    connection: { application_name: "local-realtime", TimeZone: "UTC" },
  });
  const registry = new ChannelRegistry();
  const context: RealtimeContext = { sql, secret, registry, log };
  const engine = createChangesEngine({ sql, log });
  const connections = new Set<Connection>();

  try {
    const [ready] = await sql<{ ok: boolean }[]>`
      select exists (select 1 from pg_publication where pubname = 'supabase_realtime_messages_publication')
         and exists (select 1 from pg_publication where pubname = 'supabase_realtime') as ok`;
    if (!ready?.ok) {
      throw new Error(
        "local Realtime: the supabase_realtime publications are missing; apply local/bootstrap.sql and applyRealtimeBootstrap() first",
      );
    }
    await sql`delete from realtime.messages where inserted_at < now() - ${MESSAGE_RETENTION}::interval`;
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw error;
  }

  async function deliver(transactions: Transaction[]): Promise<void> {
    const timed: TimedChange[] = transactions.flatMap((tx) =>
      tx.changes.map((change) => ({
        change,
        commitTimestamp: formatCommitTimestamp(tx.commitTimeMicros),
        commitLsn: tx.commitLsn,
      }))
    );
    const pgChanges = timed.filter((t) => !isMessagesChange(t.change));
    const pgSubscribers = registry.pgSubscribers();
    const pgDeliveries = pgChanges.length > 0 && pgSubscribers.length > 0
      ? await engine.deliveriesFor(pgChanges, pgSubscribers)
      : new Map();
    // Deliver in commit order, broadcasts and row changes interleaved as committed.
    for (const t of timed) {
      if (isMessagesChange(t.change)) {
        const broadcast = databaseBroadcastOf(t.change, broadcastTopicOf);
        if (broadcast === null) continue;
        if ("error" in broadcast) {
          log(`[realtime] UnableToBroadcastChanges: ${broadcast.error}`);
          continue;
        }
        fanOutBroadcast(registry, broadcast.broadcastTopic, broadcast.message, null, t.commitLsn);
        continue;
      }
      for (const { subscriber, payload } of pgDeliveries.get(t) ?? []) {
        // A fastlane message, like hosted's: no join_ref, no ref.
        subscriber.sendFrame(encodeMessage(subscriber.vsn, {
          joinRef: null,
          ref: null,
          topic: subscriber.topic,
          event: "postgres_changes",
          payload,
        }));
      }
    }
  }

  let feed: Awaited<ReturnType<typeof startReplicationFeed>>;
  try {
    feed = await startReplicationFeed({
      dbUrl: options.dbUrl,
      publications: PUBLICATIONS,
      onTransactions: deliver,
      log,
    });
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw new Error(
      `local Realtime: could not start logical replication: ${(error as Error).message}`,
    );
  }

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://local");
    if (url.pathname.replace(/\/$/, "") !== WEBSOCKET_PATH) {
      return rejectUpgrade(socket, 404, `No route for ${url.pathname}`);
    }
    const vsn = url.searchParams.get("vsn") ?? "1.0.0";
    if (!SUPPORTED_VSNS.includes(vsn as Vsn)) {
      return rejectUpgrade(
        socket,
        400,
        `The client's requested transport version "${vsn}" is not supported (1.0.0, 2.0.0)`,
      );
    }
    const headerKey = req.headers["x-api-key"];
    const token = typeof headerKey === "string" ? headerKey : url.searchParams.get("apikey");
    const check = await verifyToken(token, secret);
    if (!check.ok) {
      log(`[realtime] connection refused: ${check.code}: ${check.message}`);
      const { status, error } = upgradeRefusal(check);
      return rejectUpgrade(socket, status, error);
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection = new Connection(context, ws, vsn as Vsn, token!, forwardedHeaders(req));
      connections.add(connection);
      ws.on("close", () => connections.delete(connection));
    });
  }

  function request(req: IncomingMessage, res: ServerResponse): void {
    const pathname = new URL(req.url ?? "/", "http://local").pathname;
    const [status, error] = pathname.replace(/\/$/, "") === WEBSOCKET_PATH
      ? [400, "Expected a WebSocket upgrade"]
      : pathname.startsWith(`${PREFIX}api/`)
      ? [
        501,
        "The local Realtime emulator does not serve Realtime's REST API (REST broadcast, httpSend); send over a joined channel or with realtime.send() in the database",
      ]
      : [404, `No route for ${pathname}`];
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify({ error }));
  }

  return {
    mount: {
      prefix: PREFIX,
      request,
      upgrade: (req, socket, head) => {
        upgrade(req, socket, head).catch((error) => {
          log(`[realtime] upgrade failed: ${(error as Error).message}`);
          socket.destroy();
        });
      },
    },
    async stop() {
      for (const connection of connections) connection.close(1001, "server stopping");
      connections.clear();
      wss.close();
      await feed.stop();
      await sql.end({ timeout: 2 });
    },
  };
}
