/**
 * Producer-side loss: a source's sequence ids that reached neither path.
 * Pure.
 *
 * A source numbers its events; a hole between two ids seen on either path
 * (monitoring_events or the ledger, any route) is an event the producer
 * numbered but that never reached ingest — unless it is merely out of order
 * and still arrives. So a hole is a candidate first, and judged a
 * `producer_gap` only once the id after it arrived more than the max delay
 * ago and the hole is still (partly) empty. What a source sent before the
 * first id reconcile ever saw is not judged: a new source may start anywhere.
 */

/** One sequence id seen on either path. */
export interface SequencePoint {
  source: string;
  sequence_id: number;
  /** When it arrived (event receipt or ledger delivery), epoch ms. */
  arrivedAt: number;
  /** Read by this run (rather than loaded as context): only such ids open candidates. */
  owned: boolean;
}

/** A hole strictly between `after` and `before` waiting to be judged. */
export interface GapCandidate {
  source: string;
  after: number;
  before: number;
  /** When `before` arrived: the hole is judged once this is older than the max delay. */
  since: number;
}

/** A run of consecutive missing ids, inclusive. */
export interface Hole {
  from: number;
  to: number;
}

/**
 * The holes just below each owned id: per source, the distinct ids of
 * `points` plus the source's `predecessors` entry (the highest id below them
 * already stored), consecutive pairs more than 1 apart whose upper id is
 * owned. `since` is the earliest arrival of the upper id. Sorted by source,
 * then `after`. Order of `points` does not matter.
 */
export function candidateGaps(
  points: readonly SequencePoint[],
  predecessors: ReadonlyMap<string, number>,
): GapCandidate[] {
  const bySource = new Map<string, Map<number, { arrivedAt: number; owned: boolean }>>();
  for (const p of points) {
    let ids = bySource.get(p.source);
    if (!ids) bySource.set(p.source, ids = new Map());
    const seen = ids.get(p.sequence_id);
    ids.set(p.sequence_id, {
      arrivedAt: Math.min(seen?.arrivedAt ?? Infinity, p.arrivedAt),
      owned: (seen?.owned ?? false) || p.owned,
    });
  }
  const out: GapCandidate[] = [];
  for (const source of [...bySource.keys()].sort()) {
    const ids = bySource.get(source)!;
    const sorted = [...ids.keys()].sort((a, b) => a - b);
    const before = predecessors.get(source);
    const chain = before !== undefined && before < sorted[0]! ? [before, ...sorted] : sorted;
    for (let i = 1; i < chain.length; i++) {
      const a = chain[i - 1]!, b = chain[i]!;
      const upper = ids.get(b)!;
      if (b - a > 1 && upper.owned) {
        out.push({ source, after: a, before: b, since: upper.arrivedAt });
      }
    }
  }
  return out;
}

/**
 * The runs of ids strictly between `after` and `before` not in `present`.
 * `present` may hold ids outside the range and repeats. Ascending.
 */
export function holesBetween(after: number, before: number, present: readonly number[]): Hole[] {
  const inside = [...new Set(present)].filter((n) => n > after && n < before).sort((a, b) => a - b);
  const holes: Hole[] = [];
  let next = after + 1;
  for (const n of inside) {
    if (n > next) holes.push({ from: next, to: n - 1 });
    next = n + 1;
  }
  if (next < before) holes.push({ from: next, to: before - 1 });
  return holes;
}

/** The stable key of a producer-gap finding. */
export function gapKey(source: string, hole: Hole): string {
  return `${source}#${hole.from}-${hole.to}`;
}
