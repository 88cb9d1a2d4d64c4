/**
 * The monitoring event: one zod schema (DESIGN §3) from which the TypeScript
 * types are inferred. Producers send `EventInput`; ingest stores
 * `StoredEvent`s; both delivery paths carry `WireEvent`s.
 */
import { z } from "zod";

import { type Adapter, ADAPTERS, CATEGORIES, type Category } from "./constants.ts";

export { type Adapter, ADAPTERS, CATEGORIES, type Category };

/** Longest accepted `source` and `event_type`, in characters. */
export const MAX_NAME_LENGTH = 200;

const name = (field: string) =>
  z.string({
    error: (i) => i.input === undefined ? `${field} is required` : `${field} must be a string`,
  })
    .min(1, `${field} must not be empty`)
    .max(MAX_NAME_LENGTH, `${field} must be at most ${MAX_NAME_LENGTH} characters`);

/** What a producer sends for one event. Unknown top-level fields are refused (typos must not pass silently). */
export const eventInputSchema = z.strictObject({
  id: z.uuid({ error: "id must be a UUID" }).optional(),
  source: name("source"),
  sequence_id: z.number({
    error: (i) =>
      i.input === undefined ? "sequence_id is required" : "sequence_id must be an integer",
  }).int("sequence_id must be an integer").min(0, "sequence_id must be >= 0").max(
    Number.MAX_SAFE_INTEGER,
    "sequence_id must be at most 2^53-1",
  ),
  event_type: name("event_type"),
  category: z.enum(CATEGORIES, {
    error: (i) =>
      typeof i.input === "string"
        ? `unknown category "${i.input}" (expected one of ${CATEGORIES.join(", ")})`
        : "category must be a string",
  }).optional(),
  timestamp: z.iso.datetime({
    offset: true,
    local: false,
    error: (i) =>
      i.input === undefined
        ? "timestamp is required"
        : "timestamp must be an ISO-8601 date-time with a timezone",
  }),
  data: z.record(z.string(), z.unknown(), {
    error: (i) => i.input === undefined ? "data is required" : "data must be a JSON object",
  }),
}, {
  error: (i) =>
    i.code === "unrecognized_keys"
      ? `unknown field(s): ${i.keys.join(", ")}`
      : "an event must be a JSON object",
});

export type EventInput = z.infer<typeof eventInputSchema>;

/** An event as delivered on both paths and checksummed: every field resolved. */
export interface WireEvent {
  id: string;
  source: string;
  sequence_id: number;
  event_type: string;
  category: Category;
  /** ISO-8601 UTC with milliseconds (`Date#toISOString`), the one normal form. */
  timestamp: string;
  data: Record<string, unknown>;
}

/** An event as stored: the wire event plus what ingest decided. */
export interface StoredEvent extends WireEvent {
  checksum: string;
  checksum_alg: ChecksumAlg;
  routes: Adapter[];
  legacy: boolean;
}

export type ChecksumAlg = "crc32" | "sha256";

/** The first issue of a zod error as `path: message` (or the message alone at the root). */
export function describeZodError(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid";
  const path = issue.path.join(".");
  return path && !issue.message.startsWith(path) ? `${path}: ${issue.message}` : issue.message;
}
