/**
 * The reconcile function (DESIGN §3): runs a reconciliation pass of the two
 * delivery paths when pg_cron (through pg_net) or an operator asks, and
 * serves what runs found to the dashboard. Service role only.
 *
 *   POST /reconcile                  { trigger?: "schedule" | "manual", dry_run?: boolean }
 *        → 200 the run's report (shared/reconcile/run.ts ReconcileReport)
 *   GET  /reconcile/runs?limit&before_id
 *        → 200 { runs: [...], next_before_id }
 *   GET  /reconcile/findings?run_id&type&category&source&limit&before_id
 *        → 200 { findings: [...], next_before_id }
 *   GET  /reconcile/alerts?category&limit&before_id
 *        → 200 { alerts: [...], next_before_id }
 *   GET  /reconcile/status
 *        → 200 { last_seq, last_cursor, watermark, lag_ms, last_run_id, updated_at, pending }
 *
 * Lists are newest first; page with `before_id` = the previous answer's
 * `next_before_id` (null at the end). Status codes: 400 invalid body or
 * query (nothing done); 401 without a bearer token; 403 for a token that is
 * not the service-role key; 404 unknown path; 405 wrong method; 409
 * `run_in_progress` when another run holds the lock; 413 body too large; 415
 * a body that is not JSON; 503 database unavailable (Retry-After); 500 a bug.
 *
 * @example
 * curl -X POST "$SUPABASE_URL/functions/v1/reconcile" \
 *   -H "Authorization: Bearer $SUPABASE_SERVICE_ROLE_KEY" \
 *   -H "Content-Type: application/json" -d '{"trigger":"manual","dry_run":true}'
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import { CATEGORIES, describeZodError } from "../events/schema.ts";
import { readJson } from "../http/body.ts";
import { errorResponse } from "../http/errors.ts";
import { answerFallbacks } from "../http/fallbacks.ts";
import { FINDING_TYPES } from "./findings.ts";
import { type ReconcileDeps, runReconcile } from "./run.ts";
import { listAlerts, listFindings, listRuns, readStatus } from "./store.ts";
import { serviceRoleOnly } from "../http/service-role.ts";

export interface ReconcileAppDeps extends ReconcileDeps {
  sql: Sql;
  /** The project's service-role key; the only credential this API accepts. */
  serviceRoleKey: string;
}

/** Largest run request body: it carries two optional fields. */
const MAX_BODY_BYTES = 4 * 1024;
const MAX_LIMIT = 500;

export const runRequestSchema = z.strictObject({
  trigger: z.enum(["schedule", "manual"], { error: "trigger must be schedule or manual" })
    .default("manual"),
  dry_run: z.boolean({ error: "dry_run must be a boolean" }).default(false),
}, {
  error: (i) =>
    i.code === "unrecognized_keys"
      ? `unknown field(s): ${i.keys.join(", ")}`
      : "the body must be a JSON object",
});

const id = (name: string) =>
  z.string().regex(/^[1-9]\d{0,17}$/, `${name} must be a positive integer`).transform(Number)
    .optional();
const limit = (fallback: number) =>
  z.string().regex(/^\d+$/, "limit must be an integer").transform(Number)
    .refine((n) => n >= 1 && n <= MAX_LIMIT, `limit must be between 1 and ${MAX_LIMIT}`)
    .default(fallback);
const unknownParams = {
  error: (i: { code: string; keys?: string[] }) =>
    i.code === "unrecognized_keys" ? `unknown parameter(s): ${i.keys?.join(", ")}` : undefined,
};

export const runsQuerySchema = z.strictObject(
  { limit: limit(20), before_id: id("before_id") },
  unknownParams,
);
export const findingsQuerySchema = z.strictObject({
  run_id: id("run_id"),
  type: z.enum(FINDING_TYPES, { error: `type must be one of ${FINDING_TYPES.join(", ")}` })
    .optional(),
  category: z.enum(CATEGORIES, { error: `category must be one of ${CATEGORIES.join(", ")}` })
    .optional(),
  source: z.string().min(1).max(200).optional(),
  limit: limit(100),
  before_id: id("before_id"),
}, unknownParams);
export const alertsQuerySchema = z.strictObject({
  category: z.enum(CATEGORIES, { error: `category must be one of ${CATEGORIES.join(", ")}` })
    .optional(),
  limit: limit(50),
  before_id: id("before_id"),
}, unknownParams);

/** Builds the app mounted at `/reconcile`. Throws when `serviceRoleKey` is empty. */
export function createReconcileApp(deps: ReconcileAppDeps): Hono {
  if (!deps.serviceRoleKey) throw new Error("createReconcileApp: serviceRoleKey is required");
  const log = deps.log ?? ((line: string) => console.error(line));
  const app = new Hono().basePath("/reconcile");

  app.use(
    "*",
    cors({
      origin: "*",
      allowMethods: ["GET", "POST", "OPTIONS"],
      allowHeaders: ["authorization", "content-type", "apikey", "x-client-info"],
      maxAge: 86400,
    }),
  );

  app.use("*", serviceRoleOnly(deps.serviceRoleKey, "reconcile"));

  app.post("/", async (c) => {
    // An empty body means {}: pg_net and curl callers may send none.
    const body = await readJson(c.req.raw, MAX_BODY_BYTES, { requireJsonType: true, empty: {} });
    if (!body.ok) return body.response;
    const parsed = runRequestSchema.safeParse(body.json);
    if (!parsed.success) {
      return errorResponse(400, "invalid_body", describeZodError(parsed.error));
    }
    const outcome = await runReconcile(deps, {
      trigger: parsed.data.trigger,
      dryRun: parsed.data.dry_run,
    });
    if (!outcome.ok) {
      return errorResponse(
        409,
        "run_in_progress",
        "Another reconcile run is in progress; nothing was done. Try again when it has finished.",
      );
    }
    return c.json(outcome.report);
  });

  app.get("/runs", async (c) => {
    const q = parseQuery(c.req.url, runsQuerySchema);
    if (!q.ok) return q.response;
    const runs = await listRuns(deps.sql, { limit: q.value.limit, beforeId: q.value.before_id });
    return c.json({ runs, next_before_id: nextBefore(runs, q.value.limit) });
  });

  app.get("/findings", async (c) => {
    const q = parseQuery(c.req.url, findingsQuerySchema);
    if (!q.ok) return q.response;
    const findings = await listFindings(deps.sql, {
      limit: q.value.limit,
      beforeId: q.value.before_id,
      runId: q.value.run_id,
      type: q.value.type,
      category: q.value.category,
      source: q.value.source,
    });
    return c.json({ findings, next_before_id: nextBefore(findings, q.value.limit) });
  });

  app.get("/alerts", async (c) => {
    const q = parseQuery(c.req.url, alertsQuerySchema);
    if (!q.ok) return q.response;
    const alerts = await listAlerts(deps.sql, {
      limit: q.value.limit,
      beforeId: q.value.before_id,
      category: q.value.category,
    });
    return c.json({ alerts, next_before_id: nextBefore(alerts, q.value.limit) });
  });

  app.get("/status", async (c) => c.json(await readStatus(deps.sql)));

  const allow: [string, string][] = [
    ["/", "POST"],
    ["/runs", "GET"],
    ["/findings", "GET"],
    ["/alerts", "GET"],
    ["/status", "GET"],
  ];
  for (const [path, method] of allow) {
    app.all(path, () =>
      errorResponse(
        405,
        "method_not_allowed",
        `Use ${method} on /reconcile${path === "/" ? "" : path}`,
        {},
        { allow: `${method}, OPTIONS` },
      ));
  }

  answerFallbacks(app, { name: "reconcile", log, outcome: "Nothing was done.", retryAfterS: 10 });

  return app;
}

/** The next page's `before_id`: the last id of a full page, else null (the end). */
function nextBefore(rows: { id: number }[], limit: number): number | null {
  return rows.length === limit ? rows[rows.length - 1]!.id : null;
}

function parseQuery<T extends z.ZodType>(
  url: string,
  schema: T,
): { ok: true; value: z.output<T> } | { ok: false; response: Response } {
  const parsed = schema.safeParse(Object.fromEntries(new URL(url).searchParams));
  if (parsed.success) return { ok: true, value: parsed.data };
  return {
    ok: false,
    response: errorResponse(400, "invalid_query", describeZodError(parsed.error)),
  };
}
