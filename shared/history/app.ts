/**
 * The `events` function: the history read API (DESIGN §2.8). Consumers
 * backfill through it after every (re)subscribe, so a reconnect never leaves
 * a hole. Reads run under the caller's RLS — the query switches to the
 * caller's role with its JWT claims for the transaction, as PostgREST does —
 * so a caller sees exactly the rows Realtime would deliver to it.
 *
 * GET /events?after=&before=&since=&until=&received_since=&category=&source=&event_type=&order=&limit=
 * → 200 { events: [...], next: { after } | { before } | null }
 *   (`seq` is the cursor; `after` pages forward, `before` backward.)
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { decodeJwt } from "jose";
import type { Sql } from "../db/client.ts";
import { isTransientDbError } from "../db/client.ts";
import { describeZodError } from "../events/schema.ts";
import { bearerToken, safeEqual, verifySupabaseJwt } from "../http/auth.ts";
import { errorResponse } from "../http/errors.ts";
import { historyOrder, type HistoryQuery, historyQuerySchema } from "./query.ts";

export interface HistoryDeps {
  sql: Sql;
  serviceRoleKey: string;
  /** HS256 secret to verify user JWTs; when absent, the platform's verify_jwt is trusted and claims are decoded. */
  jwtSecret?: string;
  log?: (line: string) => void;
}

export interface HistoryEvent {
  seq: number;
  id: string;
  source: string;
  sequence_id: number;
  event_type: string;
  category: string;
  timestamp: string;
  data: Record<string, unknown>;
  checksum: string;
  checksum_alg: string;
  routes: string[];
  received_at: string;
}

const CLIENT_ROLES = new Set(["anon", "authenticated", "service_role"]);

/** Builds the app mounted at `/events`. */
export function createHistoryApp(deps: HistoryDeps): Hono {
  const log = deps.log ?? ((line: string) => console.error(line));
  const app = new Hono().basePath("/events");
  app.use(
    "*",
    cors({
      origin: "*",
      allowHeaders: ["authorization", "apikey", "x-client-info", "content-type"],
    }),
  );

  app.get("/", async (c) => {
    const claims = await principal(c.req.raw);
    if (!claims) {
      return errorResponse(
        401,
        "unauthorized",
        "A valid JWT (anon, authenticated or service_role) is required",
      );
    }
    const parsed = historyQuerySchema.safeParse(
      Object.fromEntries(new URL(c.req.url).searchParams),
    );
    if (!parsed.success) return errorResponse(400, "invalid_query", describeZodError(parsed.error));
    try {
      return c.json(await readHistory(deps.sql, parsed.data, claims));
    } catch (error) {
      if (isTransientDbError(error)) {
        return errorResponse(
          503,
          "database_unavailable",
          "The database is unavailable; retry later",
          {},
          { "retry-after": "5" },
        );
      }
      log(`events: query failed: ${(error as Error).stack ?? error}`);
      return errorResponse(500, "internal_error", "Reading the history failed unexpectedly");
    }
  });
  app.all(
    "/",
    () => errorResponse(405, "method_not_allowed", "Use GET", {}, { allow: "GET, OPTIONS" }),
  );

  async function principal(req: Request): Promise<Record<string, unknown> | null> {
    const token = bearerToken(req);
    if (!token) return null;
    if (deps.serviceRoleKey && safeEqual(token, deps.serviceRoleKey)) {
      return { role: "service_role" };
    }
    let claims: Record<string, unknown> | null;
    if (deps.jwtSecret) claims = await verifySupabaseJwt(token, deps.jwtSecret);
    else {
      try {
        claims = decodeJwt(token);
      } catch {
        claims = null;
      }
    }
    return claims && typeof claims.role === "string" && CLIENT_ROLES.has(claims.role)
      ? claims
      : null;
  }

  return app;
}

/** Runs the query under the caller's role and claims; returns a page and the next cursor. */
export async function readHistory(
  sql: Sql,
  q: HistoryQuery,
  claims: Record<string, unknown>,
): Promise<{ events: HistoryEvent[]; next: { after: number } | { before: number } | null }> {
  const order = historyOrder(q);
  const limit = q.limit ?? 100;
  const rows = await sql.begin(async (tx) => {
    await tx`select set_config('role', ${String(claims.role)}, true),
                    set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    const where = [tx`true`];
    if (q.after !== undefined) where.push(tx`seq > ${q.after}`);
    if (q.before !== undefined) where.push(tx`seq < ${q.before}`);
    if (q.since) where.push(tx`"timestamp" >= ${q.since}`);
    if (q.until) where.push(tx`"timestamp" <= ${q.until}`);
    if (q.received_since) where.push(tx`received_at >= ${q.received_since}`);
    if (q.category) where.push(tx`category = any(${q.category})`);
    if (q.source) where.push(tx`source = any(${q.source})`);
    if (q.event_type) where.push(tx`event_type = any(${q.event_type})`);
    const condition = where.reduce((acc, w) => tx`${acc} and ${w}`);
    return await tx<(Omit<HistoryEvent, "timestamp" | "received_at" | "seq" | "sequence_id"> & {
      seq: string;
      sequence_id: string;
      ts: Date;
      received: Date;
    })[]>`
      select seq, id::text, source, sequence_id, event_type, category, "timestamp" as ts, data, checksum,
             checksum_alg, routes, received_at as received
      from public.monitoring_events
      where ${condition}
      order by seq ${order === "asc" ? tx`asc` : tx`desc`}
      limit ${limit + 1}`;
  });
  const more = rows.length > limit;
  const page = rows.slice(0, limit).map((r) => ({
    seq: Number(r.seq),
    id: r.id,
    source: r.source,
    sequence_id: Number(r.sequence_id),
    event_type: r.event_type,
    category: r.category,
    timestamp: r.ts.toISOString(),
    data: r.data,
    checksum: r.checksum,
    checksum_alg: r.checksum_alg,
    routes: r.routes,
    received_at: r.received.toISOString(),
  }));
  const last = page.at(-1);
  return {
    events: page,
    next: more && last ? (order === "asc" ? { after: last.seq } : { before: last.seq }) : null,
  };
}
