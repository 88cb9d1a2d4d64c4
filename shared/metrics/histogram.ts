/**
 * The latency histogram every adapter call is recorded in: a FIXED log-scale
 * bucket layout, so histograms from any number of function instances and
 * time buckets merge by adding counts element by element (associative and
 * commutative), and percentiles are estimated from the merged counts with an
 * error no larger than the width of the bucket the percentile falls in.
 *
 * Layout (the one source of truth; the database stores only the counts):
 * finite upper bounds `LATENCY_BOUNDS_MS[i] = 2^(i/4)` ms rounded to three
 * significant figures, i = 0..64 — 1 ms to 65.5 s, four buckets per
 * doubling, so a bucket is at most ~19 % wider than its lower bound. Bucket 0
 * holds [0, 1] ms, bucket i holds (bound[i-1], bound[i]] (Prometheus `le`
 * semantics), and the last bucket, index 65, holds everything above 65.5 s.
 * A histogram is an array of `HISTOGRAM_SIZE` non-negative integer counts.
 */

/** Finite bucket upper bounds, in milliseconds, strictly increasing. */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze(
  Array.from({ length: 65 }, (_, i) => Number(Math.pow(2, i / 4).toPrecision(3))),
);

/** Counts per histogram: one per finite bound plus the overflow bucket. */
export const HISTOGRAM_SIZE = LATENCY_BOUNDS_MS.length + 1;

/** A fresh histogram with every count zero. */
export function emptyHistogram(): number[] {
  return new Array(HISTOGRAM_SIZE).fill(0);
}

/**
 * The bucket a latency falls in: the smallest i with `ms <= bound[i]`, or
 * the overflow bucket. Negative and NaN latencies count as 0 ms.
 */
export function bucketIndex(ms: number): number {
  if (!(ms > 1)) return 0;
  const last = HISTOGRAM_SIZE - 1;
  let i = Math.min(last, Math.max(0, Math.ceil(4 * Math.log2(ms))));
  // The bounds are rounded, so the logarithm can be one bucket off either way.
  while (i > 0 && ms <= LATENCY_BOUNDS_MS[i - 1]!) i--;
  while (i < last && ms > LATENCY_BOUNDS_MS[i]!) i++;
  return i;
}

/** The value range of bucket `i`: [lower, upper]; the overflow bucket's upper is Infinity. */
export function bucketRange(i: number): [number, number] {
  const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
  const upper = i < LATENCY_BOUNDS_MS.length ? LATENCY_BOUNDS_MS[i]! : Infinity;
  return [lower, upper];
}

/** Adds one observation to `histogram` in place. */
export function observe(histogram: number[], ms: number): void {
  const i = bucketIndex(ms);
  histogram[i] = (histogram[i] ?? 0) + 1;
}

/**
 * Element-wise sum. Arrays of different lengths (a layout that grew) are
 * padded with zeros, so merging never loses a count. Pure.
 */
export function mergeHistograms(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array(Math.max(a.length, b.length));
  for (let i = 0; i < out.length; i++) out[i] = (a[i] ?? 0) + (b[i] ?? 0);
  return out;
}

/** Total number of observations. */
export function histogramCount(histogram: readonly number[]): number {
  let n = 0;
  for (const c of histogram) n += c;
  return n;
}

/**
 * Estimates the nearest-rank `q`-quantile (0 < q <= 1: the smallest
 * observation with at least q·n observations at or below it) from the counts:
 * finds the bucket holding that rank and interpolates linearly inside it.
 * The true value lies in the same bucket, so the error is at most that
 * bucket's width. `maxMs`, the largest observation when known, caps the
 * bucket that holds it and is the overflow bucket's upper end (without it,
 * an estimate in the overflow bucket is that bucket's lower bound). Null for an empty
 * histogram. Throws RangeError for q outside (0, 1].
 */
export function estimatePercentile(
  histogram: readonly number[],
  q: number,
  maxMs?: number,
): number | null {
  if (!(q > 0 && q <= 1)) throw new RangeError(`quantile must be in (0, 1], got ${q}`);
  const n = histogramCount(histogram);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil(q * n - 1e-9));
  let before = 0;
  for (let i = 0; i < histogram.length; i++) {
    const count = histogram[i] ?? 0;
    if (count > 0 && before + count >= rank) {
      const [lower, bound] = bucketRange(Math.min(i, HISTOGRAM_SIZE - 1));
      // The largest observation caps the bucket holding it (and bounds the overflow bucket).
      const knownMax = maxMs !== undefined && maxMs > lower ? maxMs : undefined;
      const upper = Number.isFinite(bound)
        ? Math.min(bound, knownMax ?? bound)
        : (knownMax ?? lower);
      return lower + (upper - lower) * ((rank - before) / count);
    }
    before += count;
  }
  return null;
}
