/**
 * Reconciliation as the metrics show it: consistency and mismatch rate per
 * category, summed over the runs of a window. Each run's per-category outcome
 * counts come from its report (`cutover.reconcile_runs.report -> 'categories'`,
 * written by shared/reconcile/report.ts); a run without them contributes its
 * flat `counts` under the category `all`. Pure.
 *
 * The same definitions as the reconcile report: the verdicts are matched,
 * late, checksum_mismatch, missing_on_websocket, missing_on_realtime and
 * duplicate; consistency = matched / judged (a late event is a finding, not
 * consistent); mismatch rate = 1 − consistency. Anything else in the counts
 * (pending, single_route, producer_gap, the report's own ratios) is not a
 * verdict and is left out.
 */

/** The outcomes that are verdicts (shared/reconcile/match.ts JUDGED_OUTCOMES). */
export const VERDICTS: readonly string[] = [
  "matched",
  "late",
  "checksum_mismatch",
  "missing_on_websocket",
  "missing_on_realtime",
  "duplicate",
];
const VERDICT_SET = new Set(VERDICTS);

/** One category's verdicts over a window. */
export interface CategoryConsistency {
  judged: number;
  matched: number;
  mismatched: number;
  /** matched / judged; null when nothing was judged. */
  consistency: number | null;
  /** mismatched / judged; null when nothing was judged. */
  mismatch_rate: number | null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Sums the runs' verdicts per category and judges them (rates rounded to
 * 1e-6). Each run is `{ "<category>": { "<outcome>": n, ... } }`; non-verdict
 * keys and non-numbers are ignored.
 */
export function consistencyByCategory(
  runs: readonly unknown[],
): Record<string, CategoryConsistency> {
  const totals: Record<string, { judged: number; matched: number }> = {};
  for (const run of runs) {
    if (!isRecord(run)) continue;
    for (const [category, outcomes] of Object.entries(run)) {
      if (!isRecord(outcomes)) continue;
      const t = (totals[category] ??= { judged: 0, matched: 0 });
      for (const [outcome, n] of Object.entries(outcomes)) {
        if (!VERDICT_SET.has(outcome) || typeof n !== "number" || !Number.isFinite(n)) continue;
        t.judged += n;
        if (outcome === "matched") t.matched += n;
      }
    }
  }
  const round = (n: number) => Math.round(n * 1e6) / 1e6;
  return Object.fromEntries(
    Object.entries(totals).sort(([a], [b]) => (a < b ? -1 : 1)).map(([category, t]) => [
      category,
      {
        judged: t.judged,
        matched: t.matched,
        mismatched: t.judged - t.matched,
        consistency: t.judged > 0 ? round(t.matched / t.judged) : null,
        mismatch_rate: t.judged > 0 ? round((t.judged - t.matched) / t.judged) : null,
      },
    ]),
  );
}
