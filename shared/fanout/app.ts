/**
 * The ws-fanout function (DESIGN §3): the WebSocket path's live stream.
 *
 * Routes (mounted at `/ws-fanout`):
 * - `GET /?token=…[&since=][&categories=][&sources=]` — WebSocket upgrade
 *   (protocol: protocol.ts). 401 for a missing or invalid token and 400 for
 *   bad parameters, both before the upgrade; 426 without an upgrade request;
 *   503 (Retry-After) while the instance is starting, stopping or full. The
 *   upgrade response carries `x-cutover-instance`.
 * - `POST /relay` — service-role only; body `{ "events": [{ "id", "event_time" }] }`
 *   (at most 1,000): append those outbox rows to the delivery ledger now and
 *   answer after commit: 200 `{ appended, skipped, missing }`; 400 bad body;
 *   401; 503 when the database is unavailable or too many relays wait on
 *   this instance (the rows stay pending either way).
 * - `GET /status` — service-role only: instance, open connections, tail head.
 *
 * Every instance tails the ledger (backplane.ts) and drains the outbox
 * (appender.ts); `shutdown()` (wired to `beforeunload`) closes every socket
 * with 1012 so clients resume elsewhere.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import { isTransientDbError } from "../db/client.ts";
import { bearerToken, safeEqual, verifySupabaseJwt } from "../http/auth.ts";
import { readJson } from "../http/body.ts";
import { errorResponse } from "../http/errors.ts";
import { createOutboxAppender, type OutboxAppender, RelayQueueFull } from "./appender.ts";
import { createLedgerTail, type LedgerTail } from "./backplane.ts";
import { type Connection, serveConnection, type ServerSocket } from "./connection.ts";
import { readReplayPage } from "./ledger.ts";
import { CLOSE_CODES } from "./protocol.ts";
import { parseStreamQuery } from "./query.ts";
import { MAX_RELAY_KEYS } from "./relay.ts";
import type { FanoutSettings } from "./settings.ts";

/** Roles whose JWT may open a stream. */
const STREAM_ROLES = new Set(["anon", "authenticated", "service_role"]);

const relayBodySchema = z.strictObject({
  events: z.array(
    z.strictObject({
      id: z.uuid({ error: "id must be a UUID" }),
      event_time: z.iso.datetime({
        offset: true,
        error: "event_time must be an ISO-8601 date-time with a timezone",
      }),
    }),
  ).min(1, "events must not be empty").max(
    MAX_RELAY_KEYS,
    `at most ${MAX_RELAY_KEYS} events per relay`,
  ),
});

export interface FanoutDeps {
  sql: Sql;
  settings: FanoutSettings;
  serviceRoleKey: string;
  /** Verifies anon/authenticated JWTs (CUTOVER_JWT_SECRET). */
  jwtSecret: string;
  /** The instance label (CUTOVER_FUNCTION_INSTANCE). */
  instance: string;
  /** The runtime's upgrade (`Deno.upgradeWebSocket`). */
  upgrade: (req: Request) => { socket: ServerSocket; response: Response };
  log?: (line: string) => void;
}

export interface FanoutService {
  app: Hono;
  /** Starts the tail and the outbox drain; connections wait for it. */
  start(): Promise<void>;
  /** Closes every connection with 1012 and stops the background work. */
  shutdown(): Promise<void>;
  readonly tail: LedgerTail;
  readonly appender: OutboxAppender;
}

/** Builds the service; call `start()` once. */
export function createFanoutService(deps: FanoutDeps): FanoutService {
  const log = deps.log ?? ((line: string) => console.error(line));
  const { settings } = deps;
  const connections = new Set<Connection>();
  let stopping = false;
  let ready: Promise<void> | undefined;

  const tail = createLedgerTail({
    sql: deps.sql,
    pollMs: settings.pollMs,
    pageSize: settings.pageSize,
    log,
  });
  const appender = createOutboxAppender({
    sql: deps.sql,
    instance: deps.instance,
    drainMs: settings.drainMs,
    onAppended: () => tail.poke(),
    log,
  });

  async function streamTokenValid(token: string): Promise<boolean> {
    if (deps.serviceRoleKey && safeEqual(token, deps.serviceRoleKey)) return true;
    if (!deps.jwtSecret) return false;
    const claims = await verifySupabaseJwt(token, deps.jwtSecret);
    return claims !== null && STREAM_ROLES.has(claims.role);
  }

  function isServiceRole(req: Request): boolean {
    const token = bearerToken(req);
    return token !== null && deps.serviceRoleKey !== "" && safeEqual(token, deps.serviceRoleKey);
  }

  const app = new Hono().basePath("/ws-fanout");

  app.get("/", async (c) => {
    const req = c.req.raw;
    const parsed = parseStreamQuery(new URL(req.url).searchParams);
    const token = parsed.ok ? parsed.request.token : new URL(req.url).searchParams.get("token");
    if (!token || !(await streamTokenValid(token))) {
      return errorResponse(
        401,
        "unauthorized",
        "A valid token query parameter is required: an anon or authenticated JWT, or the service-role key",
      );
    }
    if (!parsed.ok) return errorResponse(400, parsed.code, parsed.message);
    if ((req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") {
      return errorResponse(
        426,
        "upgrade_required",
        "This endpoint speaks WebSocket: connect with a WebSocket client",
        {},
        { upgrade: "websocket" },
      );
    }
    if (stopping) {
      return errorResponse(503, "shutting_down", "This instance is shutting down; reconnect", {}, {
        "retry-after": "1",
      });
    }
    if (connections.size >= settings.maxConnections) {
      return errorResponse(
        503,
        "too_many_connections",
        `This instance serves at most ${settings.maxConnections} connections; retry shortly`,
        {},
        { "retry-after": "5" },
      );
    }
    try {
      await service.start();
    } catch {
      return errorResponse(503, "starting", "The stream is not ready yet; retry shortly", {}, {
        "retry-after": "1",
      });
    }
    const { socket, response } = deps.upgrade(req);
    const connection = serveConnection({
      socket,
      tail,
      readPage: (after, limit, filter) => readReplayPage(deps.sql, after, limit, filter),
      settings,
      instance: deps.instance,
      since: parsed.request.since,
      filter: parsed.request.filter,
      log,
      onEnded: () => connections.delete(connection),
    });
    connections.add(connection);
    response.headers.set("x-cutover-instance", deps.instance);
    return response;
  });

  app.post("/relay", async (c) => {
    const req = c.req.raw;
    if (!isServiceRole(req)) {
      return errorResponse(401, "unauthorized", "The relay requires the service-role key");
    }
    const body = await readJson(req, 256 * 1024);
    if (!body.ok) return body.response;
    const parsed = relayBodySchema.safeParse(body.json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return errorResponse(
        400,
        "invalid_relay",
        issue ? `${issue.path.join(".") || "body"}: ${issue.message}` : "invalid relay body",
      );
    }
    try {
      const summary = await appender.append(parsed.data.events);
      return c.json(summary);
    } catch (error) {
      if (error instanceof RelayQueueFull) {
        return errorResponse(
          503,
          "busy",
          "Too many relays waiting on this instance; the events stay pending in the outbox",
          {},
          { "retry-after": "1" },
        );
      }
      const transient = isTransientDbError(error);
      log(`ws-fanout: relay append failed: ${(error as Error).message}`);
      return errorResponse(
        transient ? 503 : 500,
        transient ? "database_unavailable" : "internal_error",
        "Appending to the delivery ledger failed; the events stay pending in the outbox",
        {},
        transient ? { "retry-after": "5" } : {},
      );
    }
  });

  app.get("/status", (c) => {
    if (!isServiceRole(c.req.raw)) {
      return errorResponse(401, "unauthorized", "Status requires the service-role key");
    }
    return c.json({
      instance: deps.instance,
      connections: connections.size,
      head: tail.head,
      last_read_at: new Date(tail.lastReadAt).toISOString(),
      stopping,
    });
  });

  const service: FanoutService = {
    app,
    tail,
    appender,
    start() {
      ready ??= (async () => {
        await tail.start();
        appender.start();
      })();
      ready.catch((error) => {
        log(
          `ws-fanout: start failed (retrying on the next connection): ${(error as Error).message}`,
        );
        ready = undefined;
      });
      return ready;
    },
    async shutdown() {
      stopping = true;
      for (const connection of [...connections]) {
        connection.close(CLOSE_CODES.SERVICE_RESTART, "instance shutting down; resume with since");
      }
      appender.stop();
      await tail.stop();
    },
  };
  return service;
}
