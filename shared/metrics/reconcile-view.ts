/**
 * Reconciliation as the metrics show it: consistency and mismatch rate per
 * category, summed over the runs of a window, from each run's `counts`
 * (cutover.reconcile_runs.counts: units judged, by outcome). Pure.
 *
 * `counts` is read in any of these shapes, so that the metrics do not break
 * when the reconcile job changes how it nests them:
 *   { "<category>": { "<outcome>": n } }     per category (preferred)
 *   { "<outcome>": { "<category>": n } }     per outcome
 *   { "<outcome>": n }                       no categories: filed under "all"
 * Outcomes `matched`, `late` and `presence` count as consistent (a late event
 * did arrive on both paths); `pending`, `deferred`, `waiting` and `skipped`
 * were not judged and are left out; every other outcome (missing_*,
 * checksum_mismatch, duplicate, ...) counts as a mismatch.
 */
import { CATEGORIES } from "../events/schema.ts";

const CONSISTENT = new Set(["matched", "match", "late", "presence", "ok"]);
const NOT_JUDGED = new Set(["pending", "deferred", "waiting", "skipped", "not_judged"]);
const CATEGORY_SET = new Set<string>(CATEGORIES);

/** One category's judgement over a window. */
export interface CategoryConsistency {
  judged: number;
  consistent: number;
  mismatched: number;
  /** consistent / judged; null when nothing was judged. */
  consistency: number | null;
  /** mismatched / judged; null when nothing was judged. */
  mismatch_rate: number | null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Outcome counts per category from one run's `counts`, in any shape listed above. */
export function outcomesByCategory(counts: unknown): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  if (!isRecord(counts)) return out;
  const add = (category: string, outcome: string, n: unknown) => {
    if (typeof n !== "number" || !Number.isFinite(n)) return;
    const bucket = (out[category] ??= {});
    bucket[outcome] = (bucket[outcome] ?? 0) + n;
  };
  for (const [key, value] of Object.entries(counts)) {
    if (CATEGORY_SET.has(key) && isRecord(value)) {
      for (const [outcome, n] of Object.entries(value)) add(key, outcome, n);
    } else if (isRecord(value)) {
      for (const [category, n] of Object.entries(value)) {
        if (CATEGORY_SET.has(category)) add(category, key, n);
      }
    } else {
      add("all", key, value);
    }
  }
  return out;
}

/** Sums the runs' `counts` and judges them per category (rates rounded to 1e-6). */
export function consistencyByCategory(runs: unknown[]): Record<string, CategoryConsistency> {
  const totals: Record<string, { consistent: number; mismatched: number }> = {};
  for (const counts of runs) {
    for (const [category, outcomes] of Object.entries(outcomesByCategory(counts))) {
      const t = (totals[category] ??= { consistent: 0, mismatched: 0 });
      for (const [outcome, n] of Object.entries(outcomes)) {
        if (NOT_JUDGED.has(outcome)) continue;
        if (CONSISTENT.has(outcome)) t.consistent += n;
        else t.mismatched += n;
      }
    }
  }
  const round = (n: number) => Math.round(n * 1e6) / 1e6;
  return Object.fromEntries(
    Object.entries(totals).sort(([a], [b]) => (a < b ? -1 : 1)).map(([category, t]) => {
      const judged = t.consistent + t.mismatched;
      return [category, {
        judged,
        consistent: t.consistent,
        mismatched: t.mismatched,
        consistency: judged > 0 ? round(t.consistent / judged) : null,
        mismatch_rate: judged > 0 ? round(t.mismatched / judged) : null,
      }];
    }),
  );
}
