/**
 * The metrics function (DESIGN §3): the pipeline's health for scrapers and
 * the dashboard, read from the persisted stats (never from one instance's
 * memory) and the pipeline's tables.
 *
 *   GET /metrics                      Prometheus text format 0.0.4
 *   GET /metrics/summary?window=15m   JSON for the dashboard (1m | 15m | 1h | 24h)
 *
 * Counters in the text format are cumulative since the database began
 * (cutover.*_totals), so they only go up; the summary sums the 10-second
 * buckets of its window (cutover.*_stats).
 *
 * Access: the gateway verifies the JWT (verify_jwt = true); this app then
 * accepts the service-role key (Prometheus scrapes with it) and JWTs whose
 * role is `authenticated` (a signed-in dashboard viewer) or `service_role`.
 * The anon key is refused with 403: it ships in every browser bundle, and
 * traffic figures, error rates and breaker states are operational
 * information for the team, not for the public.
 *
 * Status codes: 200; 400 invalid query (unknown window or parameter); 401
 * without a valid token; 403 for an anon (or other-role) token; 404 unknown
 * path; 405 wrong method; 503 database unavailable (Retry-After); 500 for a bug.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { decodeJwt } from "jose";
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import { describeZodError } from "../events/schema.ts";
import { bearerToken, safeEqual, verifySupabaseJwt } from "../http/auth.ts";
import { errorResponse } from "../http/errors.ts";
import { answerFallbacks } from "../http/fallbacks.ts";
import { buildFamilies, RECONCILE_GAUGE_WINDOW_S } from "./exposition.ts";
import { EXPOSITION_CONTENT_TYPE, formatExposition } from "./prometheus.ts";
import { readPipelineState } from "./state.ts";
import { readAdapterTotals, readIngestTotals, readStepRows } from "./store.ts";
import { buildSummary, SUMMARY_WINDOWS, type SummaryWindow, windowRange } from "./summary.ts";

export interface MetricsDeps {
  sql: Sql;
  /** The project's service-role key (accepted as is). */
  serviceRoleKey: string;
  /** HS256 secret to verify JWTs; when absent, the platform's verify_jwt is trusted and claims are decoded. */
  jwtSecret?: string;
  now?: () => number;
  log?: (line: string) => void;
}

/** Roles allowed to read metrics (besides the service-role key itself). */
export const METRICS_READER_ROLES: readonly string[] = ["authenticated", "service_role"];

const summaryQuerySchema = z.strictObject({
  window: z.enum(Object.keys(SUMMARY_WINDOWS) as [SummaryWindow, ...SummaryWindow[]], {
    error: `window must be one of ${Object.keys(SUMMARY_WINDOWS).join(", ")}`,
  }).default("15m"),
});

/** Builds the app mounted at `/metrics`. Throws when `serviceRoleKey` is empty. */
export function createMetricsApp(deps: MetricsDeps): Hono {
  if (!deps.serviceRoleKey) throw new Error("createMetricsApp: serviceRoleKey is required");
  const now = deps.now ?? Date.now;
  const log = deps.log ?? ((line: string) => console.error(line));
  const app = new Hono().basePath("/metrics");

  app.use(
    "*",
    cors({
      origin: "*",
      allowMethods: ["GET", "OPTIONS"],
      allowHeaders: ["authorization", "apikey", "x-client-info"],
      maxAge: 86400,
    }),
  );

  app.use("*", async (c, next) => {
    if (c.req.method === "OPTIONS") return await next();
    const refusal = await refuse(c.req.raw);
    if (refusal) return refusal;
    await next();
  });

  app.get("/", async () => {
    const [adapterTotals, ingestTotals, state] = await Promise.all([
      readAdapterTotals(deps.sql),
      readIngestTotals(deps.sql),
      readPipelineState(deps.sql, { reconcileWindowS: RECONCILE_GAUGE_WINDOW_S }),
    ]);
    const text = formatExposition(buildFamilies({ adapterTotals, ingestTotals, state }));
    return new Response(text, {
      headers: { "content-type": EXPOSITION_CONTENT_TYPE, "cache-control": "no-store" },
    });
  });

  app.get("/summary", async (c) => {
    const parsed = summaryQuerySchema.safeParse(
      Object.fromEntries(new URL(c.req.url).searchParams),
    );
    if (!parsed.success) return errorResponse(400, "invalid_query", describeZodError(parsed.error));
    const window = parsed.data.window;
    const nowMs = now();
    const range = windowRange(window, nowMs);
    const [rows, state] = await Promise.all([
      readStepRows(deps.sql, range.fromMs, range.toMs, range.stepMs),
      readPipelineState(deps.sql, { reconcileWindowS: SUMMARY_WINDOWS[window].seconds }),
    ]);
    return c.json(buildSummary({ window, nowMs, ...rows, state }), 200, {
      "cache-control": "no-store",
    });
  });

  for (const path of ["/", "/summary"]) {
    app.all(
      path,
      () => errorResponse(405, "method_not_allowed", "Use GET", {}, { allow: "GET, OPTIONS" }),
    );
  }

  answerFallbacks(app, { name: "metrics", log });

  /** Null when the caller may read metrics, else the 401/403 answer. */
  async function refuse(req: Request): Promise<Response | null> {
    const token = bearerToken(req);
    if (!token) {
      return errorResponse(
        401,
        "unauthorized",
        "Metrics need the service-role key or a signed-in user's JWT (Authorization: Bearer <token>)",
      );
    }
    if (safeEqual(token, deps.serviceRoleKey)) return null;
    let role: unknown;
    if (deps.jwtSecret) role = (await verifySupabaseJwt(token, deps.jwtSecret))?.role;
    else {
      try {
        role = decodeJwt(token).role;
      } catch {
        role = undefined;
      }
    }
    if (typeof role !== "string") {
      return errorResponse(401, "unauthorized", "The token is not a valid project JWT");
    }
    if (!METRICS_READER_ROLES.includes(role)) {
      return errorResponse(
        403,
        "forbidden",
        `Metrics are for signed-in users and the service role; a "${role}" token may not read them`,
      );
    }
    return null;
  }

  return app;
}
