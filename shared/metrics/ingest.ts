/**
 * Ingest's per-request stats: how many events of each category a request
 * brought and what became of them. Pure.
 */
import type { Classifier } from "../events/classify.ts";
import { CATEGORIES, type Category } from "../events/schema.ts";
import type { PreparedItem } from "../ingest/prepare.ts";
import { emptyIngestCounts, type IngestCounts, type StatsCategory } from "./stats.ts";

const encoder = new TextEncoder();
const CATEGORY_SET = new Set<string>(CATEGORIES);

/**
 * The category stats file an event under: the prepared event's own; for a
 * rejected one, a valid `category` field, else its `event_type` classified,
 * else `unknown`.
 */
export function statsCategoryOf(
  raw: unknown,
  prepared: PreparedItem | undefined,
  classifier: Pick<Classifier, "classify">,
): StatsCategory {
  if (prepared?.ok) return prepared.event.category;
  if (raw === null || typeof raw !== "object") return "unknown";
  const { category, event_type } = raw as { category?: unknown; event_type?: unknown };
  if (typeof category === "string" && CATEGORY_SET.has(category)) return category as Category;
  if (typeof event_type === "string" && event_type.length > 0) {
    return classifier.classify(event_type).category;
  }
  return "unknown";
}

/**
 * Counts per category for a request ingest decided about: every result is
 * one received event (its JSON size in bytes) that was stored, a duplicate
 * or rejected. `prepared[i]` must be the item at index i.
 */
export function tallyIngest(
  items: readonly unknown[],
  prepared: readonly PreparedItem[],
  results: readonly { index: number; status: "stored" | "duplicate" | "rejected" }[],
  classifier: Pick<Classifier, "classify">,
): Partial<Record<StatsCategory, IngestCounts>> {
  const out: Partial<Record<StatsCategory, IngestCounts>> = {};
  for (const r of results) {
    const raw = items[r.index];
    const category = statsCategoryOf(raw, prepared[r.index], classifier);
    const c = (out[category] ??= emptyIngestCounts());
    c.received++;
    if (r.status === "stored") c.stored++;
    else if (r.status === "duplicate") c.duplicates++;
    else c.rejected++;
    c.bytes += encoder.encode(JSON.stringify(raw) ?? "").byteLength;
  }
  return out;
}
