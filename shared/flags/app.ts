/**
 * The flags function (DESIGN §3): operators read and change category flags
 * and global settings, read the audit log, and ask how an event would be
 * routed. Service role only.
 *
 *   GET    /flags                          the whole configuration and its version
 *   PATCH  /flags/categories/:category     { expected_version, reason, changes }
 *   PUT    /flags/settings/:key            { expected_version, reason, value }
 *   POST   /flags/batch                    { expected_version, reason, changes: [...] }, all or nothing
 *   GET    /flags/audit?table&key&actor&since&until&limit&before_id
 *   POST   /flags/explain                  one event as a producer sends it
 *
 * Status codes: 200; 400 invalid input (`issues` names every field); 401
 * without a bearer token; 403 for a token that is not the service-role key;
 * 404 unknown category, setting or path; 405 wrong method; 409
 * `version_conflict` (with `current_version`) when `expected_version` is
 * stale — nothing changed; 413 body too large; 415 not JSON; 503 database
 * unavailable (Retry-After); 500 for a bug. Bad input changes nothing.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import type { ConfigSource } from "../config/source.ts";
import { CATEGORIES } from "../events/schema.ts";
import { readJson } from "../http/body.ts";
import { errorResponse } from "../http/errors.ts";
import { answerFallbacks } from "../http/fallbacks.ts";
import type { IngestLimits } from "../ingest/limits.ts";
import { parseAuditQuery } from "./audit-query.ts";
import {
  actorFrom,
  type Invalid,
  isCategory,
  isSettingKey,
  parseBatch,
  parseCategoryPatch,
  type Parsed,
  parseSettingPut,
  SETTING_KEYS,
  type WriteRequest,
} from "./changes.ts";
import { explainEvent } from "./explain.ts";
import type { FlagStore, WriteOutcome } from "./store.ts";
import { serviceRoleOnly } from "../http/service-role.ts";

export interface FlagsDeps {
  store: FlagStore;
  /** The cached config ingest also uses: `explain` answers with what ingest would do now. */
  config: ConfigSource;
  /** Ingest's limits, so `explain` refuses what ingest would refuse. */
  limits: IngestLimits;
  /** The project's service-role key; the only credential this API accepts. */
  serviceRoleKey: string;
  now?: () => number;
  log?: (line: string) => void;
}

/** Largest write body, in bytes (a batch of every setting fits many times over). */
const MAX_WRITE_BYTES = 64 * 1024;

/** Builds the app mounted at `/flags`. Throws when `serviceRoleKey` is empty. */
export function createFlagsApp(deps: FlagsDeps): Hono {
  if (!deps.serviceRoleKey) throw new Error("createFlagsApp: serviceRoleKey is required");
  const now = deps.now ?? Date.now;
  const log = deps.log ?? ((line: string) => console.error(line));
  const app = new Hono().basePath("/flags");

  app.use(
    "*",
    cors({
      origin: "*",
      allowMethods: ["GET", "PATCH", "PUT", "POST", "OPTIONS"],
      allowHeaders: ["authorization", "content-type", "apikey", "x-client-info", "x-cutover-actor"],
      maxAge: 86400,
    }),
  );

  app.use("*", serviceRoleOnly(deps.serviceRoleKey, "The flags API"));

  app.get("/", async () => Response.json(await deps.store.read()));

  app.patch("/categories/:category", async (c) => {
    const category = c.req.param("category");
    if (!isCategory(category)) {
      return errorResponse(404, "unknown_category", `Unknown category "${category}"`, {
        categories: CATEGORIES,
      });
    }
    return await write(c.req.raw, (body) => parseCategoryPatch(category, body), (outcome) => ({
      changed: outcome.changed,
      version: outcome.version,
      category,
      flags: outcome.categories[category]!.flags,
      changed_fields: outcome.categories[category]!.changed_fields,
    }));
  });

  app.put("/settings/:key", async (c) => {
    const key = c.req.param("key");
    if (!isSettingKey(key)) {
      return errorResponse(404, "unknown_setting", `Unknown setting "${key}"`, {
        settings: SETTING_KEYS,
      });
    }
    return await write(c.req.raw, (body) => parseSettingPut(key, body), (outcome) => ({
      changed: outcome.changed,
      version: outcome.version,
      key,
      value: outcome.settings[key]!.value,
    }));
  });

  app.post("/batch", async (c) =>
    await write(c.req.raw, parseBatch, (outcome) => ({
      changed: outcome.changed,
      version: outcome.version,
      categories: outcome.categories,
      settings: outcome.settings,
    })));

  app.get("/audit", async (c) => {
    const query = parseAuditQuery(new URL(c.req.url).searchParams);
    if (!query.ok) return invalid("invalid_query", query.error);
    return Response.json(await deps.store.audit(query.value));
  });

  app.post("/explain", async (c) => {
    const body = await readJson(c.req.raw, deps.limits.maxRequestBytes, { requireJsonType: true });
    if (!body.ok) return body.response;
    const outcome = await explainEvent(body.json, await deps.config.get(), deps.limits, now());
    if (!outcome.ok) {
      return errorResponse(
        outcome.code === "event_too_large" ? 413 : 400,
        outcome.code,
        `ingest would reject this event: ${outcome.message}`,
      );
    }
    return Response.json(outcome.explanation);
  });

  const allow: [string, string][] = [
    ["/", "GET"],
    ["/categories/:category", "PATCH"],
    ["/settings/:key", "PUT"],
    ["/batch", "POST"],
    ["/audit", "GET"],
    ["/explain", "POST"],
  ];
  for (const [path, method] of allow) {
    app.all(
      path,
      () =>
        errorResponse(
          405,
          "method_not_allowed",
          `Use ${method} on /flags${path === "/" ? "" : path}`,
          {},
          {
            allow: `${method}, OPTIONS`,
          },
        ),
    );
  }

  answerFallbacks(app, { name: "flags", log, outcome: "Nothing was changed." });

  async function write(
    req: Request,
    parse: (body: unknown) => Parsed<WriteRequest>,
    answer: (outcome: Extract<WriteOutcome, { ok: true }>) => unknown,
  ): Promise<Response> {
    const actor = actorFrom(req.headers.get("x-cutover-actor"));
    if (!actor.ok) return invalid("invalid_actor", actor.error);
    const body = await readJson(req, MAX_WRITE_BYTES, { requireJsonType: true });
    if (!body.ok) return body.response;
    const request = parse(body.json);
    if (!request.ok) return invalid("invalid_body", request.error);
    const outcome = await deps.store.apply(request.value, actor.value);
    if (!outcome.ok) {
      if (outcome.code === "version_conflict") {
        return errorResponse(
          409,
          "version_conflict",
          `The configuration is at version ${outcome.currentVersion}, not ${request.value.expectedVersion}; nothing was changed. Read it again and reapply your change.`,
          { current_version: outcome.currentVersion },
        );
      }
      return errorResponse(409, outcome.code, outcome.message);
    }
    if (outcome.changed) {
      // This instance's explain answers from the new version at once; other
      // functions see it at their next version check (≤ 2 s).
      deps.config.invalidate();
      log(
        `flags: ${actor.value} changed config to version ${outcome.version}: ${request.value.reason}`,
      );
    }
    return Response.json(answer(outcome));
  }

  return app;
}

function invalid(code: string, error: Invalid): Response {
  return errorResponse(400, code, error.message, { issues: error.issues });
}
