import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  backoffCeilingMs,
  fullJitterDelayMs,
  retryWithBackoff,
} from "../../shared/resilience/backoff.ts";

const settings = { base_ms: 200, cap_ms: 2_000, max_attempts: 3 };
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const knobs = fc.record({
  base_ms: fc.integer({ min: 1, max: 10_000 }),
  cap_ms: fc.integer({ min: 1, max: 1_000_000 }),
}).map((k) => ({ ...k, cap_ms: Math.max(k.cap_ms, k.base_ms) }));

describe("full-jitter backoff", () => {
  it("doubles the ceiling from base up to the cap", () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffCeilingMs(n, settings))).toEqual([
      0,
      200,
      400,
      800,
      1600,
      2000,
      2000,
    ]);
  });

  it("is uniform below the ceiling: random r gives floor(r × ceiling)", () => {
    expect(fullJitterDelayMs(1, settings, () => 0)).toBe(0);
    expect(fullJitterDelayMs(3, settings, () => 0.5)).toBe(400);
    expect(fullJitterDelayMs(9, settings, () => 0.9999999)).toBe(1999);
  });

  it("stays within [0, min(cap, base · 2^(n-1))) for every retry and random", () => {
    fc.assert(fc.property(knobs, fc.integer({ min: 1, max: 80 }), unit, (k, n, r) => {
      const d = fullJitterDelayMs(n, k, () => r);
      const ceiling = Math.min(k.cap_ms, k.base_ms * 2 ** (n - 1));
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(Math.max(0, ceiling - 0));
      if (ceiling >= 1) expect(d).toBeLessThan(ceiling);
      expect(Number.isInteger(d)).toBe(true);
    }));
  });

  it("the ceiling never decreases with the retry number and never passes the cap", () => {
    fc.assert(fc.property(knobs, fc.integer({ min: 1, max: 80 }), (k, n) => {
      expect(backoffCeilingMs(n + 1, k)).toBeGreaterThanOrEqual(backoffCeilingMs(n, k));
      expect(backoffCeilingMs(n, k)).toBeLessThanOrEqual(k.cap_ms);
    }));
  });
});

describe("retryWithBackoff (cockatiel's retry policy)", () => {
  it("stops at the first good result", async () => {
    const seen: number[] = [];
    const { result, attempts } = await retryWithBackoff(async (n) => {
      seen.push(n);
      return await Promise.resolve(n >= 1 ? "ok" : "fail");
    }, { settings: { base_ms: 1, cap_ms: 2, max_attempts: 5 }, shouldRetry: (r) => r === "fail" });
    expect(result).toBe("ok");
    expect(attempts).toBe(2);
    expect(seen).toEqual([0, 1]);
  });

  it("makes max_attempts attempts in all and returns the last result, waiting full-jitter delays", async () => {
    const delays: number[] = [];
    const { result, attempts } = await retryWithBackoff(
      async (n) => await Promise.resolve(`fail ${n}`),
      {
        settings: { base_ms: 4, cap_ms: 10, max_attempts: 4 },
        shouldRetry: () => true,
        random: () => 0.75,
        onRetry: (_attempt, delay) => delays.push(delay),
      },
    );
    expect(result).toBe("fail 3");
    expect(attempts).toBe(4);
    expect(delays).toEqual([3, 6, 7]); // 0.75 × 4, 8, 10
  });

  it("max_attempts 1 means no retry", async () => {
    const { attempts } = await retryWithBackoff(async () => await Promise.resolve(1), {
      settings: { base_ms: 1, cap_ms: 1, max_attempts: 1 },
      shouldRetry: () => true,
    });
    expect(attempts).toBe(1);
  });

  it("gives up early when aborted", async () => {
    const controller = new AbortController();
    const { attempts } = await retryWithBackoff(async (n) => {
      if (n === 1) controller.abort();
      return await Promise.resolve("fail");
    }, {
      settings: { base_ms: 1, cap_ms: 1, max_attempts: 10 },
      shouldRetry: () => true,
      signal: controller.signal,
    });
    expect(attempts).toBe(2);
  });
});
