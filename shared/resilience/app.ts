/**
 * The dlq-retry function (DESIGN §3): the scheduled retry of dead letters,
 * the resilience watch, and the operators' API over both. Service role only.
 *
 *   POST /dlq-retry                           one retry run → its report (also recorded)
 *   POST /dlq-retry/watch                     breakers + rollback triggers → the watch report
 *   GET  /dlq-retry/status                    breakers, recent transitions, DLQ depth, rollbacks, last runs
 *   GET  /dlq-retry/dead-letters?status&adapter&limit&before_id
 *   POST /dlq-retry/dead-letters/replay       { ids? , status?: "dead", adapter?, older_than? } dead → pending
 *   POST /dlq-retry/dead-letters/purge        { ids?, status?: "dead"|"delivered", adapter?, older_than? }
 *   POST /dlq-retry/prune                     retention and size limits now
 *   GET  /dlq-retry/runs?kind&limit           recent run reports
 *   POST /dlq-retry/breakers/:adapter         { state: "closed"|"open", reason } an operator's override
 *
 * Scheduled POST bodies are `{"trigger": "schedule"}` (small: pg_net stalls
 * on large bodies). Status codes: 200; 400 invalid input (bad input changes
 * nothing); 401 without a bearer token; 403 not the service-role key; 404
 * unknown path; 503 (Retry-After) when the database is unavailable.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { ConfigSource } from "../config/source.ts";
import type { Sql } from "../db/client.ts";
import { ADAPTERS } from "../events/schema.ts";
import type { FanoutRelay } from "../fanout/relay.ts";
import type { FlagStore } from "../flags/store.ts";
import { readJson } from "../http/body.ts";
import { errorResponse } from "../http/errors.ts";
import { answerFallbacks } from "../http/fallbacks.ts";
import { breakerPolicy } from "./breaker.ts";
import type { BreakerBoard } from "./board.ts";
import { applyBreakerInput, readBreakers, readTransitions } from "./breaker-store.ts";
import {
  deadLetterDepth,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
} from "./dead-letter-store.ts";
import { runDeadLetterRetry } from "./dlq-run.ts";
import { runResilienceWatch } from "./watch.ts";
import { serviceRoleOnly } from "../http/service-role.ts";

export interface DlqRetryDeps {
  sql: Sql;
  relay: FanoutRelay;
  board: BreakerBoard;
  config: ConfigSource;
  flags: FlagStore;
  serviceRoleKey: string;
  instance?: string;
  log?: (line: string) => void;
}

const adapterSchema = z.enum(ADAPTERS);
const triggerSchema = z.strictObject({
  trigger: z.string().min(1).max(64).regex(/^[a-z0-9_-]+$/).optional(),
});
const selectionShape = {
  ids: z.array(z.number().int().positive()).min(1).max(10_000).optional(),
  adapter: adapterSchema.optional(),
  older_than: z.iso.datetime({ offset: true }).optional(),
};
const replaySchema = z.strictObject({ ...selectionShape, status: z.literal("dead").optional() })
  .refine((s) => s.ids || s.status || s.adapter || s.older_than, {
    message: "name the rows to replay: ids, status, adapter or older_than",
  });
const purgeSchema = z.strictObject({
  ...selectionShape,
  status: z.enum(["dead", "delivered"]).optional(),
}).refine((s) => s.ids || s.status || s.older_than, {
  message: "name the rows to purge: ids, status or older_than",
});
const listSchema = z.strictObject({
  status: z.enum(["pending", "delivered", "dead"]).optional(),
  adapter: adapterSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before_id: z.coerce.number().int().positive().optional(),
});
const runsSchema = z.strictObject({
  kind: z.enum(["dlq-retry", "watch"]).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(20),
});
const forceSchema = z.strictObject({
  state: z.enum(["closed", "open"]),
  reason: z.string().trim().min(3).max(500),
});

type Parsed<T> = { ok: true; value: T } | { ok: false; response: Response };

function invalid(error: z.ZodError): Response {
  const issues = error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
  const first = issues[0]!;
  return errorResponse(
    400,
    "invalid_request",
    first.path ? `${first.path}: ${first.message}` : first.message,
    { issues },
  );
}

async function jsonBody<T>(req: Request, schema: z.ZodType<T>, empty: unknown): Promise<Parsed<T>> {
  const body = await readJson(req, 64 * 1024, { empty });
  if (!body.ok) return { ok: false, response: body.response };
  const parsed = schema.safeParse(body.json);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, response: invalid(parsed.error) };
}

/** Builds the app mounted at `/dlq-retry`. Throws when `serviceRoleKey` is empty. */
export function createDlqRetryApp(deps: DlqRetryDeps): Hono {
  if (!deps.serviceRoleKey) throw new Error("createDlqRetryApp: serviceRoleKey is required");
  const log = deps.log ?? ((line: string) => console.error(line));
  const app = new Hono().basePath("/dlq-retry");

  app.use("*", serviceRoleOnly(deps.serviceRoleKey, "dlq-retry"));

  app.post("/", async (c) => {
    const body = await jsonBody(c.req.raw, triggerSchema, {});
    if (!body.ok) return body.response;
    return c.json(await runDeadLetterRetry(deps, body.value.trigger ?? "manual"));
  });

  app.post("/watch", async (c) => {
    const body = await jsonBody(c.req.raw, triggerSchema, {});
    if (!body.ok) return body.response;
    return c.json(await runResilienceWatch(deps, body.value.trigger ?? "manual"));
  });

  app.get("/status", async (c) => {
    const [{ now, breakers }, transitions, depth, rollbacks, runs] = await Promise.all([
      readBreakers(deps.sql),
      readTransitions(deps.sql, { limit: 20 }),
      deadLetterDepth(deps.sql),
      deps.sql`
        select id, at, adapter, trigger, reason, action, changes, config_version
        from cutover.rollbacks order by id desc limit 20`,
      deps.sql`
        select distinct on (kind) kind, id, started_at, finished_at, ok, report
        from cutover.resilience_runs order by kind, started_at desc`,
    ]);
    const snap = await deps.board.snapshot();
    return c.json({
      at: new Date(now).toISOString(),
      breakers: Object.fromEntries(ADAPTERS.map((a) => {
        const b = breakers[a];
        return [a, {
          state: b.state,
          since: new Date(b.since).toISOString(),
          open_until: b.openUntil === null ? null : new Date(b.openUntil).toISOString(),
          closed_at: b.closedAt === null ? null : new Date(b.closedAt).toISOString(),
          reason: b.reason,
          probes_admitted: b.probesAdmitted,
          probe_successes: b.probeSuccesses,
          probe_failures: b.probeFailures,
          probe_slow: b.probeSlow,
          restore_share: snap.breakers[a].restoreShare,
          connection_failures: b.connectionFailures.count,
        }];
      })),
      transitions,
      dead_letters: depth,
      rollbacks,
      last_runs: runs,
    });
  });

  app.get("/dead-letters", async (c) => {
    const parsed = listSchema.safeParse(Object.fromEntries(new URL(c.req.url).searchParams));
    if (!parsed.success) return invalid(parsed.error);
    const q = parsed.data;
    const rows = await listDeadLetters(deps.sql, {
      limit: q.limit,
      ...(q.status ? { status: q.status } : {}),
      ...(q.adapter ? { adapter: q.adapter } : {}),
      ...(q.before_id ? { beforeId: q.before_id } : {}),
    });
    return c.json({
      dead_letters: rows,
      next_before_id: rows.length === q.limit ? rows[rows.length - 1]!.id : null,
    });
  });

  app.post("/dead-letters/replay", async (c) => {
    const body = await jsonBody(c.req.raw, replaySchema, null);
    if (!body.ok) return body.response;
    const s = body.value;
    const ids = await replayDeadLetters(deps.sql, {
      ...(s.ids ? { ids: s.ids } : {}),
      ...(s.adapter ? { adapter: s.adapter } : {}),
      ...(s.older_than ? { olderThan: s.older_than } : {}),
    });
    log(`dlq-retry: replayed ${ids.length} dead letter(s)`);
    return c.json({ replayed: ids.length, ids });
  });

  app.post("/dead-letters/purge", async (c) => {
    const body = await jsonBody(c.req.raw, purgeSchema, null);
    if (!body.ok) return body.response;
    const s = body.value;
    const ids = await purgeDeadLetters(deps.sql, {
      ...(s.ids ? { ids: s.ids } : {}),
      ...(s.status ? { status: s.status } : {}),
      ...(s.adapter ? { adapter: s.adapter } : {}),
      ...(s.older_than ? { olderThan: s.older_than } : {}),
    });
    log(`dlq-retry: purged ${ids.length} dead letter(s)`);
    return c.json({ purged: ids.length, ids });
  });

  app.post("/prune", async (c) => {
    const [row] = await deps.sql<
      { report: unknown }[]
    >`select cutover.prune_dead_letters() as report`;
    return c.json(row!.report);
  });

  app.get("/runs", async (c) => {
    const parsed = runsSchema.safeParse(Object.fromEntries(new URL(c.req.url).searchParams));
    if (!parsed.success) return invalid(parsed.error);
    const rows = await deps.sql`
      select id, kind, trigger, instance, started_at, finished_at, ok, report
      from cutover.resilience_runs
      where ${parsed.data.kind ?? null}::text is null or kind = ${parsed.data.kind ?? null}
      order by started_at desc limit ${parsed.data.limit}`;
    return c.json({ runs: rows });
  });

  app.post("/breakers/:adapter", async (c) => {
    const adapter = adapterSchema.safeParse(c.req.param("adapter"));
    if (!adapter.success) {
      return errorResponse(404, "unknown_adapter", `Unknown adapter "${c.req.param("adapter")}"`, {
        adapters: ADAPTERS,
      });
    }
    const body = await jsonBody(c.req.raw, forceSchema, null);
    if (!body.ok) return body.response;
    const config = await deps.config.get();
    const applied = await applyBreakerInput(
      deps.sql,
      adapter.data,
      (_b, now) => ({
        type: "force",
        now,
        to: body.value.state,
        reason: `operator: ${body.value.reason}`,
      }),
      breakerPolicy(adapter.data, config.settings),
      { instance: deps.instance, details: { operator: true } },
    );
    deps.board.invalidate();
    return c.json({
      adapter: adapter.data,
      changed: applied?.step.changed ?? false,
      state: applied?.step.record.state,
    });
  });

  answerFallbacks(app, { name: "dlq-retry", log });

  return app;
}
