/**
 * A run's figures: outcomes counted per category, the consistency ratio
 * (matched / judged), the mismatch rate (1 − consistency) against the
 * category's alert threshold, and the worst sources. Pure.
 *
 * `judged` counts verdicts only: matched, late, checksum_mismatch,
 * missing_on_websocket, missing_on_realtime, duplicate. `pending` (not
 * judged yet) and `single_route` (not sent both ways, nothing to compare)
 * are counted but are not part of either ratio. A late event is not
 * matched: it is a finding, and a category whose events come late is not
 * consistent.
 */
import { CATEGORIES, type Category } from "../events/schema.ts";
import { JUDGED_OUTCOMES, type JudgedUnit, type Outcome } from "./match.ts";

export type OutcomeCounts = Record<Outcome, number>;

export interface CategoryStats extends OutcomeCounts {
  judged: number;
  /** matched / judged; null when nothing was judged. */
  consistency: number | null;
  /** (judged − matched) / judged; null when nothing was judged. */
  mismatch_rate: number | null;
  threshold: number;
  /** mismatch_rate > threshold. */
  alert: boolean;
  /** Receive times (ISO) of the judged units: the window the rates cover. */
  window: { from: string; to: string } | null;
}

export interface SourceStats {
  source: string;
  judged: number;
  matched: number;
  consistency: number | null;
}

export interface RunSummary {
  /** Every unit by outcome. */
  outcomes: OutcomeCounts;
  judged: number;
  matched: number;
  consistency: number | null;
  categories: Record<Category, CategoryStats>;
  /** Sources with judged units, least consistent first, then busiest; at most `maxSources`. */
  sources: SourceStats[];
  sources_truncated: boolean;
}

const JUDGED: ReadonlySet<Outcome> = new Set(JUDGED_OUTCOMES);

const emptyCounts = (): OutcomeCounts => ({
  matched: 0,
  late: 0,
  checksum_mismatch: 0,
  missing_on_websocket: 0,
  missing_on_realtime: 0,
  duplicate: 0,
  pending: 0,
  single_route: 0,
});

const ratio = (n: number, d: number) => (d === 0 ? null : n / d);

/** When a unit was received on the first path it reached (its place in the window). */
function receivedAt(unit: JudgedUnit): number {
  return unit.event ? unit.event.receivedAt : unit.ledger!.deliveredAt;
}

/** Summarizes judged units. Does not depend on their order. */
export function summarizeRun(
  units: readonly JudgedUnit[],
  thresholds: Record<Category, number>,
  maxSources = 50,
): RunSummary {
  const outcomes = emptyCounts();
  const perCategory = new Map<Category, { counts: OutcomeCounts; min: number; max: number }>();
  const perSource = new Map<string, { judged: number; matched: number }>();
  for (const c of CATEGORIES) {
    perCategory.set(c, { counts: emptyCounts(), min: Infinity, max: -Infinity });
  }

  for (const u of units) {
    outcomes[u.outcome]++;
    const c = perCategory.get(u.category)!;
    c.counts[u.outcome]++;
    if (!JUDGED.has(u.outcome)) continue;
    const t = receivedAt(u);
    c.min = Math.min(c.min, t);
    c.max = Math.max(c.max, t);
    const source = u.event?.source ?? u.ledger!.source;
    const s = perSource.get(source) ?? { judged: 0, matched: 0 };
    s.judged++;
    if (u.outcome === "matched") s.matched++;
    perSource.set(source, s);
  }

  const categories = {} as Record<Category, CategoryStats>;
  let judged = 0;
  for (const category of CATEGORIES) {
    const { counts, min, max } = perCategory.get(category)!;
    const j = JUDGED_OUTCOMES.reduce((n, o) => n + counts[o], 0);
    judged += j;
    const mismatchRate = ratio(j - counts.matched, j);
    categories[category] = {
      ...counts,
      judged: j,
      consistency: ratio(counts.matched, j),
      mismatch_rate: mismatchRate,
      threshold: thresholds[category],
      alert: mismatchRate !== null && mismatchRate > thresholds[category],
      window: j === 0
        ? null
        : { from: new Date(min).toISOString(), to: new Date(max).toISOString() },
    };
  }

  const sources = [...perSource.entries()]
    .map(([source, s]) => ({ source, ...s, consistency: ratio(s.matched, s.judged) }))
    .sort((a, b) =>
      (b.judged - b.matched) - (a.judged - a.matched) || b.judged - a.judged ||
      (a.source < b.source ? -1 : a.source > b.source ? 1 : 0)
    );

  return {
    outcomes,
    judged,
    matched: outcomes.matched,
    consistency: ratio(outcomes.matched, judged),
    categories,
    sources: sources.slice(0, maxSources),
    sources_truncated: sources.length > maxSources,
  };
}
