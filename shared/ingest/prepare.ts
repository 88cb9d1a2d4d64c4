/**
 * Turning what a producer sent into events ready to store: validation against
 * the one event schema and the published limits, classification, identity,
 * canonical checksum and route. No I/O: fed the request's JSON and the current
 * config, returns a decision per event.
 */
import type { LoadedConfig } from "../config/source.ts";
import { checksumEvent } from "../events/checksum.ts";
import { deriveEventId } from "../events/event-id.ts";
import { describeZodError, eventInputSchema, type StoredEvent } from "../events/schema.ts";
import { type RouteDecision, routeEvent } from "../routing/route.ts";
import type { IngestLimits } from "./limits.ts";

export type RejectionCode =
  | "invalid_event"
  | "event_too_large"
  | "timestamp_in_future"
  | "timestamp_too_old";

export type PreparedItem =
  | { index: number; ok: true; event: StoredEvent; route: RouteDecision; duplicateOf?: number }
  | { index: number; ok: false; id?: string; code: RejectionCode; message: string };

export type BodyShape =
  | { ok: true; items: unknown[] }
  | { ok: false; code: "malformed_body" | "too_many_events" | "no_events"; message: string };

/** Accepts one event object or `{ "events": [...] }`; anything else is malformed. */
export function unpackBody(body: unknown, limits: IngestLimits): BodyShape {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return {
      ok: false,
      code: "malformed_body",
      message: 'The body must be one event object or {"events": [...]}',
    };
  }
  if ("events" in body) {
    const events = (body as { events: unknown }).events;
    if (!Array.isArray(events)) {
      return { ok: false, code: "malformed_body", message: '"events" must be an array' };
    }
    if (Object.keys(body).length > 1) {
      return {
        ok: false,
        code: "malformed_body",
        message: 'A batch body has only the "events" field',
      };
    }
    if (events.length === 0) return { ok: false, code: "no_events", message: '"events" is empty' };
    if (events.length > limits.maxEvents) {
      return {
        ok: false,
        code: "too_many_events",
        message:
          `A request carries at most ${limits.maxEvents} events; this one has ${events.length}`,
      };
    }
    return { ok: true, items: events };
  }
  return { ok: true, items: [body] };
}

const encoder = new TextEncoder();

/**
 * The oldest event time ingest accepts: UTC midnight of `nowMs`'s day minus
 * `retentionDays`, so that whole days expire together with their partitions.
 */
export function retentionHorizonMs(nowMs: number, retentionDays: number): number {
  const now = new Date(nowMs);
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) -
    retentionDays * 86_400_000;
}

/**
 * Validates, classifies, identifies, checksums and routes each item. Within
 * one request a repeated id is marked `duplicateOf` the first occurrence.
 */
export async function prepareEvents(
  items: unknown[],
  config: LoadedConfig,
  limits: IngestLimits,
  nowMs: number,
  retentionHorizonMs: number,
): Promise<PreparedItem[]> {
  const seen = new Map<string, number>();
  const out: PreparedItem[] = [];
  for (let index = 0; index < items.length; index++) {
    const raw = items[index];
    const size = encoder.encode(JSON.stringify(raw) ?? "").byteLength;
    if (size > limits.maxEventBytes) {
      out.push({
        index,
        ok: false,
        code: "event_too_large",
        message: `The event is ${size} bytes; the limit is ${limits.maxEventBytes} bytes`,
      });
      continue;
    }
    const parsed = eventInputSchema.safeParse(raw);
    if (!parsed.success) {
      out.push({
        index,
        ok: false,
        code: "invalid_event",
        message: describeZodError(parsed.error),
      });
      continue;
    }
    const input = parsed.data;
    const time = Date.parse(input.timestamp);
    const id = input.id?.toLowerCase() ?? await deriveEventId(input.source, input.sequence_id);
    if (time > nowMs + limits.maxFutureSkewMs) {
      out.push({
        index,
        ok: false,
        id,
        code: "timestamp_in_future",
        message: `timestamp ${input.timestamp} is more than ${
          Math.round(limits.maxFutureSkewMs / 1000)
        } s ahead of the server clock`,
      });
      continue;
    }
    if (time < retentionHorizonMs) {
      out.push({
        index,
        ok: false,
        id,
        code: "timestamp_too_old",
        message:
          `timestamp ${input.timestamp} is older than the retention period (${config.settings.retention_days} days)`,
      });
      continue;
    }
    const classification = config.classifier.classify(input.event_type);
    const category = input.category ?? classification.category;
    const legacy = classification.legacy;
    const wire = {
      id,
      source: input.source,
      sequence_id: input.sequence_id,
      event_type: input.event_type,
      category,
      timestamp: new Date(time).toISOString(),
      data: input.data,
    };
    const alg = config.categories[category].checksum_alg;
    const route = routeEvent({ id, source: input.source, category, legacy }, config.routing);
    const event: StoredEvent = {
      ...wire,
      checksum: await checksumEvent(wire, alg),
      checksum_alg: alg,
      routes: route.adapters,
      legacy,
    };
    const key = `${id}|${wire.timestamp}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    out.push({
      index,
      ok: true,
      event,
      route,
      ...(first === undefined ? {} : { duplicateOf: first }),
    });
  }
  return out;
}
