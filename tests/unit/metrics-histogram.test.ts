import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bucketIndex,
  bucketRange,
  emptyHistogram,
  estimatePercentile,
  HISTOGRAM_SIZE,
  histogramCount,
  LATENCY_BOUNDS_MS,
  mergeHistograms,
  observe,
} from "../../shared/metrics/histogram.ts";

/** Latencies as adapters produce them: sub-millisecond to past the last bound. */
const latency = fc.oneof(
  fc.double({ min: 0, max: 5, noNaN: true }),
  fc.double({ min: 0, max: 2_000, noNaN: true }),
  fc.double({ min: 0, max: 70_000, noNaN: true }),
  fc.constantFrom(...LATENCY_BOUNDS_MS),
);
const samples = fc.array(latency, { minLength: 1, maxLength: 300 });
const histogram = fc.array(fc.nat({ max: 1_000_000 }), {
  minLength: HISTOGRAM_SIZE,
  maxLength: HISTOGRAM_SIZE,
});

function histogramOf(values: number[]): number[] {
  const h = emptyHistogram();
  for (const v of values) observe(h, v);
  return h;
}

/** The nearest-rank quantile of the samples themselves. */
function exactPercentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length - 1e-9)) - 1]!;
}

describe("histogram layout", () => {
  it("has strictly increasing bounds from 1 ms to past a minute, at most ~19 % apart", () => {
    expect(LATENCY_BOUNDS_MS[0]).toBe(1);
    expect(LATENCY_BOUNDS_MS.at(-1)).toBeGreaterThan(60_000);
    expect(HISTOGRAM_SIZE).toBe(LATENCY_BOUNDS_MS.length + 1);
    for (let i = 1; i < LATENCY_BOUNDS_MS.length; i++) {
      const ratio = LATENCY_BOUNDS_MS[i]! / LATENCY_BOUNDS_MS[i - 1]!;
      expect(ratio).toBeGreaterThan(1.15);
      expect(ratio).toBeLessThan(1.22);
    }
  });

  it("puts a value in the bucket whose range holds it (le semantics)", () => {
    fc.assert(fc.property(latency, (v) => {
      const i = bucketIndex(v);
      const [lower, upper] = bucketRange(i);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(HISTOGRAM_SIZE);
      expect(v <= upper).toBe(true);
      if (i > 0) expect(v > lower).toBe(true);
    }));
  });

  it("counts a value equal to a bound in that bound's bucket", () => {
    LATENCY_BOUNDS_MS.forEach((bound, i) => expect(bucketIndex(bound)).toBe(i));
    expect(bucketIndex(0)).toBe(0);
    expect(bucketIndex(-3)).toBe(0);
    expect(bucketIndex(NaN)).toBe(0);
    expect(bucketIndex(1e9)).toBe(HISTOGRAM_SIZE - 1);
  });
});

describe("merging", () => {
  it("is commutative and associative, with the empty histogram as identity", () => {
    fc.assert(fc.property(histogram, histogram, histogram, (a, b, c) => {
      expect(mergeHistograms(a, b)).toEqual(mergeHistograms(b, a));
      expect(mergeHistograms(mergeHistograms(a, b), c)).toEqual(
        mergeHistograms(a, mergeHistograms(b, c)),
      );
      expect(mergeHistograms(a, emptyHistogram())).toEqual(a);
    }));
  });

  it("of two instances' histograms equals the histogram of all their samples", () => {
    fc.assert(fc.property(samples, samples, (x, y) => {
      expect(mergeHistograms(histogramOf(x), histogramOf(y))).toEqual(histogramOf([...x, ...y]));
      expect(histogramCount(histogramOf(x))).toBe(x.length);
    }));
  });

  it("pads a shorter (older) layout with zeros instead of dropping counts", () => {
    expect(mergeHistograms([1, 2], [3, 4, 5])).toEqual([4, 6, 5]);
  });
});

describe("percentile estimation", () => {
  const quantile = fc.oneof(
    fc.constantFrom(0.5, 0.9, 0.95, 0.99, 1),
    fc.double({
      min: 0.001,
      max: 1,
      noNaN: true,
    }),
  );

  it("is within the width of the bucket holding the exact percentile", () => {
    fc.assert(
      fc.property(samples, quantile, (values, q) => {
        const exact = exactPercentile(values, q);
        const max = Math.max(...values);
        const estimate = estimatePercentile(histogramOf(values), q, max)!;
        const [lower, upper] = bucketRange(bucketIndex(exact));
        const width = (Number.isFinite(upper) ? upper : max) - lower;
        expect(Math.abs(estimate - exact)).toBeLessThanOrEqual(width + 1e-9);
        expect(estimate).toBeGreaterThanOrEqual(lower);
      }),
      { numRuns: 500 },
    );
  });

  it("keeps the relative error under one bucket ratio above 1 ms", () => {
    fc.assert(fc.property(
      fc.array(fc.double({ min: 1.01, max: 60_000, noNaN: true }), {
        minLength: 1,
        maxLength: 200,
      }),
      quantile,
      (values, q) => {
        const exact = exactPercentile(values, q);
        const estimate = estimatePercentile(histogramOf(values), q)!;
        expect(estimate / exact).toBeLessThan(1.22);
        expect(exact / estimate).toBeLessThan(1.22);
      },
    ));
  });

  it("is monotonic in q", () => {
    fc.assert(fc.property(samples, (values) => {
      const h = histogramOf(values);
      const qs = [0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1];
      const est = qs.map((q) => estimatePercentile(h, q)!);
      for (let i = 1; i < est.length; i++) expect(est[i]).toBeGreaterThanOrEqual(est[i - 1]!);
    }));
  });

  it("answers null for no observations and refuses a quantile outside (0, 1]", () => {
    expect(estimatePercentile(emptyHistogram(), 0.5)).toBeNull();
    expect(() => estimatePercentile(emptyHistogram(), 0)).toThrow(RangeError);
    expect(() => estimatePercentile(emptyHistogram(), 1.5)).toThrow(RangeError);
  });

  it("interpolates inside a bucket: 100 samples spread over one bucket", () => {
    // 100 observations in (8, 9.51]: the median lands halfway through.
    const h = emptyHistogram();
    h[bucketIndex(9)] = 100;
    expect(estimatePercentile(h, 0.5)).toBeCloseTo(8 + (9.51 - 8) * 0.5, 9);
    expect(estimatePercentile(h, 1)).toBeCloseTo(9.51, 9);
  });

  it("uses the known maximum as the overflow bucket's upper end", () => {
    const h = emptyHistogram();
    h[HISTOGRAM_SIZE - 1] = 2;
    const lower = LATENCY_BOUNDS_MS.at(-1)!;
    expect(estimatePercentile(h, 1, 90_000)).toBe(90_000);
    expect(estimatePercentile(h, 0.5, 90_000)).toBe(lower + (90_000 - lower) / 2);
    expect(estimatePercentile(h, 1)).toBe(lower);
  });
});
