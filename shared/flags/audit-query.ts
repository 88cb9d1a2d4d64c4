/**
 * The audit log's query string, validated: which changes an operator asks
 * for, newest first, one page at a time (keyset paging on the audit id, so a
 * page never skips or repeats an entry while new changes arrive).
 */
import { z } from "zod";
import type { Parsed } from "./changes.ts";
import { invalidFrom } from "./changes.ts";

/** The tables whose changes are audited. */
export const AUDITED_TABLES = ["category_flags", "settings"] as const;

export const DEFAULT_AUDIT_LIMIT = 100;
export const MAX_AUDIT_LIMIT = 500;

export interface AuditQuery {
  table?: (typeof AUDITED_TABLES)[number];
  key?: string;
  actor?: string;
  /** Inclusive lower bound of `changed_at`. */
  since?: Date;
  /** Exclusive upper bound of `changed_at`. */
  until?: Date;
  limit: number;
  /** Only entries with a smaller id: the previous page's `next_before_id`. */
  beforeId?: number;
}

const positiveInt = (field: string, max: number) =>
  z.string().regex(/^\d+$/, `${field} must be a positive integer`).transform(Number).pipe(
    z.number().int().min(1, `${field} must be at least 1`).max(
      max,
      `${field} must be at most ${max}`,
    ),
  );

const instant = (field: string) =>
  z.iso.datetime({ offset: true, error: `${field} must be an ISO-8601 date-time with a timezone` })
    .transform((s) => new Date(s));

const auditQuerySchema = z.strictObject({
  table: z.enum(AUDITED_TABLES, { error: `table must be one of ${AUDITED_TABLES.join(", ")}` })
    .optional(),
  key: z.string().min(1, "key must not be empty").max(100, "key must be at most 100 characters")
    .optional(),
  actor: z.string().min(1, "actor must not be empty").max(
    200,
    "actor must be at most 200 characters",
  ).optional(),
  since: instant("since").optional(),
  until: instant("until").optional(),
  limit: positiveInt("limit", MAX_AUDIT_LIMIT).optional(),
  before_id: positiveInt("before_id", Number.MAX_SAFE_INTEGER).optional(),
}, {
  error: (i) =>
    i.code === "unrecognized_keys"
      ? `unknown parameter(s): ${
        i.keys.join(", ")
      } (use table, key, actor, since, until, limit, before_id)`
      : "invalid query",
}).refine((q) => !(q.since && q.until) || q.since < q.until, {
  message: "since must be before until",
  path: ["since"],
});

/**
 * Parses `GET /flags/audit`'s parameters (each at most once):
 * `table`, `key`, `actor` (exact matches), `since` (inclusive) and `until`
 * (exclusive) ISO-8601 instants, `limit` 1–500 (default 100), `before_id`.
 */
export function parseAuditQuery(params: URLSearchParams): Parsed<AuditQuery> {
  const raw: Record<string, string> = {};
  for (const [name, value] of params) {
    if (name in raw) {
      const message = `${name} is given more than once`;
      return { ok: false, error: { message, issues: [{ path: name, message }] } };
    }
    raw[name] = value;
  }
  const result = auditQuerySchema.safeParse(raw);
  if (!result.success) return { ok: false, error: invalidFrom(result.error) };
  const q = result.data;
  return {
    ok: true,
    value: {
      ...(q.table ? { table: q.table } : {}),
      ...(q.key ? { key: q.key } : {}),
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.since ? { since: q.since } : {}),
      ...(q.until ? { until: q.until } : {}),
      limit: q.limit ?? DEFAULT_AUDIT_LIMIT,
      ...(q.before_id ? { beforeId: q.before_id } : {}),
    },
  };
}
