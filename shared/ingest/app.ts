/**
 * The ingest function (DESIGN §3): authenticate, read the body within the
 * published limits, validate/classify/checksum/route each event, store them
 * all in one transaction, answer only after commit, and hand the stored
 * events to `afterCommit` (the relay) without delaying the answer.
 *
 * Status codes: 200 when at least one event was well-formed (per-event
 * results in request order); 400 malformed body or every event invalid;
 * 401 bad credentials; 413 over a size limit; 415 wrong content type or
 * encoding; 429 (Retry-After) when this instance sheds load; 503 (Retry-After)
 * when the database is unavailable — nothing half-written; 500 for a bug.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import type { ConfigSource } from "../config/source.ts";
import { isTransientDbError, type Sql } from "../db/client.ts";
import type { Adapter, StoredEvent } from "../events/schema.ts";
import { bearerToken, type ProducerAuth } from "../http/auth.ts";
import { readJson } from "../http/body.ts";
import { errorResponse } from "../http/errors.ts";
import { tallyIngest } from "../metrics/ingest.ts";
import type { StatsRecorder } from "../metrics/recorder.ts";
import type { IngestLimits } from "./limits.ts";
import { type PreparedItem, prepareEvents, retentionHorizonMs, unpackBody } from "./prepare.ts";
import { type RealtimeDelivery, storeEvents } from "./store.ts";

export interface IngestResult {
  index: number;
  id?: string;
  status: "stored" | "duplicate" | "rejected";
  routes?: Adapter[];
  error?: { code: string; message: string };
}

export interface IngestResponse {
  stored: number;
  duplicates: number;
  rejected: number;
  results: IngestResult[];
}

/** A newly stored event with its position in the global order. */
export interface CommittedEvent {
  event: StoredEvent;
  seq: number;
}

export interface IngestDeps {
  sql: Sql;
  config: ConfigSource;
  auth: ProducerAuth;
  limits: IngestLimits;
  /** Called after commit with the newly stored events (e.g. to relay them). Must not throw. */
  afterCommit?: (events: CommittedEvent[]) => void;
  /** Persisted stats: outcomes per category, and the store statement as the realtime adapter's write. */
  stats?: Pick<StatsRecorder, "recordAdapterCall" | "recordIngest">;
  now?: () => number;
  log?: (line: string) => void;
}

const RETRY_AFTER_S = "5";

/** Builds the app mounted at `/ingest`. */
export function createIngestApp(deps: IngestDeps): Hono {
  const now = deps.now ?? Date.now;
  const log = deps.log ?? ((line: string) => console.error(line));
  let inFlight = 0;
  const app = new Hono().basePath("/ingest");

  app.use(
    "*",
    cors({
      origin: "*",
      allowMethods: ["GET", "POST", "OPTIONS"],
      allowHeaders: [
        "authorization",
        "content-type",
        "content-encoding",
        "apikey",
        "x-client-info",
      ],
      maxAge: 86400,
    }),
  );

  // The published limits, so a producer can size its batches.
  app.get("/", (c) =>
    c.json({
      limits: {
        max_request_bytes: deps.limits.maxRequestBytes,
        max_event_bytes: deps.limits.maxEventBytes,
        max_events: deps.limits.maxEvents,
        max_future_skew_ms: deps.limits.maxFutureSkewMs,
      },
      content_types: ["application/json"],
      content_encodings: ["identity", "gzip"],
    }));

  app.post("/", async (c) => {
    if (inFlight >= deps.limits.maxInFlight) {
      return errorResponse(429, "overloaded", "Too many concurrent requests; retry shortly", {}, {
        "retry-after": "1",
      });
    }
    inFlight++;
    try {
      return await ingest(c.req.raw);
    } finally {
      inFlight--;
    }
  });

  app.all(
    "/",
    () =>
      errorResponse(
        405,
        "method_not_allowed",
        "Use POST to send events, GET to read the limits",
        {},
        {
          allow: "GET, POST, OPTIONS",
        },
      ),
  );

  async function ingest(req: Request): Promise<Response> {
    const contentType = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (contentType !== "application/json") {
      return errorResponse(
        415,
        "unsupported_media_type",
        `Content-Type must be application/json, got "${contentType || "(none)"}"`,
      );
    }

    let principal;
    try {
      principal = await deps.auth.authenticate(bearerToken(req));
    } catch (error) {
      return unavailable(error);
    }
    if (!principal) {
      return errorResponse(
        401,
        "unauthorized",
        "A valid producer key or the service-role key is required (Authorization: Bearer <key>)",
      );
    }

    const body = await readJson(req, deps.limits.maxRequestBytes);
    if (!body.ok) return body.response;
    const shape = unpackBody(body.json, deps.limits);
    if (!shape.ok) {
      const status = shape.code === "too_many_events" ? 413 : 400;
      return errorResponse(
        status,
        shape.code,
        shape.message,
        shape.code === "too_many_events" ? { limit_events: deps.limits.maxEvents } : {},
      );
    }

    let config;
    try {
      config = await deps.config.get();
    } catch (error) {
      return unavailable(error);
    }
    const nowMs = now();
    const horizon = retentionHorizonMs(nowMs, config.settings.retention_days);
    const prepared = await prepareEvents(shape.items, config, deps.limits, nowMs, horizon);

    const toStore = prepared.filter((p): p is Extract<PreparedItem, { ok: true }> =>
      p.ok && p.duplicateOf === undefined
    );
    if (toStore.length === 0) {
      const results = prepared.map((p) => ({
        index: p.index,
        status: p.ok ? "duplicate" as const : "rejected" as const,
      }));
      deps.stats?.recordIngest(tallyIngest(shape.items, prepared, results, config.classifier));
      return allRejected(prepared);
    }

    let seqs: (number | null)[];
    const toRealtime = toStore.filter((p) => p.event.routes.includes("realtime"));
    const storeStarted = performance.now();
    try {
      ({ seqs } = await storeEvents(deps.sql, toStore.map((p) => p.event), {
        modes: Object.fromEntries(
          Object.entries(config.categories).map(([c, f]) => [c, f.delivery_mode]),
        ) as RealtimeDelivery["modes"],
        broadcastPrivate: config.settings.broadcast_private,
        // Leave room for one more event and the envelope past the cut.
        chunkBytes: config.settings.broadcast_max_payload_bytes - deps.limits.maxEventBytes - 1024,
        deferred: new Set(
          toStore.filter((p) => p.route.deferred?.includes("realtime")).map((p) => p.event.id),
        ),
      }));
    } catch (error) {
      if (toRealtime.length) {
        const ms = performance.now() - storeStarted;
        deps.stats?.recordAdapterCall("realtime", "write", false, ms, toRealtime.length);
      }
      return unavailable(error);
    }

    const seqByIndex = new Map<number, number | null>();
    toStore.forEach((p, i) => seqByIndex.set(p.index, seqs[i] ?? null));
    if (toRealtime.length) {
      const delivered = toRealtime.filter((p) => seqByIndex.get(p.index) != null).length;
      const ms = performance.now() - storeStarted;
      deps.stats?.recordAdapterCall("realtime", "write", true, ms, delivered);
    }
    const response: IngestResponse = { stored: 0, duplicates: 0, rejected: 0, results: [] };
    const committed: CommittedEvent[] = [];
    for (const item of prepared) {
      if (!item.ok) {
        response.rejected++;
        response.results.push({
          index: item.index,
          ...(item.id ? { id: item.id } : {}),
          status: "rejected",
          error: { code: item.code, message: item.message },
        });
        continue;
      }
      const seq = item.duplicateOf === undefined ? seqByIndex.get(item.index) ?? null : null;
      if (seq === null) {
        response.duplicates++;
        response.results.push({ index: item.index, id: item.event.id, status: "duplicate" });
      } else {
        response.stored++;
        response.results.push({
          index: item.index,
          id: item.event.id,
          status: "stored",
          routes: item.event.routes,
        });
        committed.push({ event: item.event, seq });
      }
    }
    if (committed.length > 0 && deps.afterCommit) {
      try {
        deps.afterCommit(committed);
      } catch (error) {
        log(`ingest: afterCommit failed (events stay in the outbox): ${(error as Error).message}`);
      }
    }
    deps.stats?.recordIngest(
      tallyIngest(shape.items, prepared, response.results, config.classifier),
    );
    return Response.json(response);
  }

  function allRejected(prepared: PreparedItem[]): Response {
    const results = prepared.map((p) =>
      p.ok ? { index: p.index, id: p.event.id, status: "duplicate" } : {
        index: p.index,
        ...(p.id ? { id: p.id } : {}),
        status: "rejected",
        error: { code: p.code, message: p.message },
      }
    );
    const tooLarge = prepared.some((p) => !p.ok && p.code === "event_too_large");
    return errorResponse(
      tooLarge ? 413 : 400,
      tooLarge ? "event_too_large" : "no_valid_events",
      tooLarge
        ? "No event was accepted; at least one exceeds the per-event size limit"
        : "No event in the request is valid",
      { results },
    );
  }

  function unavailable(error: unknown): Response {
    if (isTransientDbError(error)) {
      log(`ingest: database unavailable: ${(error as Error).message}`);
      return errorResponse(
        503,
        "database_unavailable",
        "The database is unavailable; nothing was stored. Retry later.",
        {},
        {
          "retry-after": RETRY_AFTER_S,
        },
      );
    }
    log(`ingest: storing failed: ${(error as Error).stack ?? error}`);
    return errorResponse(
      500,
      "internal_error",
      "Storing the events failed unexpectedly; nothing was stored.",
    );
  }

  return app;
}
