/**
 * The history read API's query: what a caller may ask for, validated (zod),
 * with published limits. Pure: parses URL search params into a typed query.
 */
import { z } from "zod";
import { CATEGORIES } from "../events/schema.ts";

export const MAX_HISTORY_LIMIT = 1000;
const MAX_LIST = 50;

const list = (name: string, item: z.ZodType<string>) =>
  z.string().optional().transform((v, ctx) => {
    if (v === undefined || v === "") return undefined;
    const items = v.split(",").map((s) => s.trim()).filter(Boolean);
    if (items.length > MAX_LIST) {
      ctx.addIssue({ code: "custom", message: `${name} takes at most ${MAX_LIST} values` });
      return z.NEVER;
    }
    for (const it of items) {
      const r = item.safeParse(it);
      if (!r.success) {
        ctx.addIssue({ code: "custom", message: `${name}: "${it}" is not valid` });
        return z.NEVER;
      }
    }
    return items;
  });

const cursor = (name: string) =>
  z.string().regex(/^\d{1,18}$/, `${name} must be a non-negative integer cursor`).transform(Number)
    .optional();
const time = (name: string) =>
  z.iso.datetime({ offset: true, error: `${name} must be an ISO-8601 date-time with a timezone` })
    .optional();

export const historyQuerySchema = z.strictObject({
  after: cursor("after"),
  before: cursor("before"),
  since: time("since"),
  until: time("until"),
  received_since: time("received_since"),
  category: list("category", z.enum(CATEGORIES)),
  source: list("source", z.string().min(1).max(200)),
  event_type: list("event_type", z.string().min(1).max(200)),
  order: z.enum(["asc", "desc"], { error: "order must be asc or desc" }).optional(),
  limit: z.string().regex(/^\d+$/, "limit must be an integer").transform(Number)
    .refine(
      (n) => n >= 1 && n <= MAX_HISTORY_LIMIT,
      `limit must be between 1 and ${MAX_HISTORY_LIMIT}`,
    ).optional(),
}, {
  error: (i) =>
    i.code === "unrecognized_keys" ? `unknown parameter(s): ${i.keys.join(", ")}` : undefined,
})
  .refine(
    (q) => !(q.after !== undefined && q.before !== undefined),
    "after and before cannot be combined",
  )
  .refine(
    (q) => !(q.since && q.until && Date.parse(q.since) > Date.parse(q.until)),
    "since is after until",
  );

export type HistoryQuery = z.infer<typeof historyQuerySchema>;

/**
 * The effective order: `after` pages forward (ascending), `before` pages
 * backward (descending); otherwise `order`, newest first by default.
 */
export function historyOrder(q: HistoryQuery): "asc" | "desc" {
  if (q.after !== undefined) return "asc";
  if (q.before !== undefined) return "desc";
  return q.order ?? "desc";
}
