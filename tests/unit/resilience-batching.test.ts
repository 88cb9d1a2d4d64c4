import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type BatchingSettings,
  chooseTier,
  createBatcher,
  currentRate,
  flushDueAt,
  MAX_FLUSHES_IN_FLIGHT,
  observeRate,
} from "../../shared/resilience/batching.ts";
import { resilienceDefaults } from "../../shared/resilience/settings.ts";

const SEED = resilienceDefaults().batching;

describe("the batching policy (seed 003)", () => {
  it("defaults to the seed's tiers: 100 / 0.1 s, 50 / 0.5 s, 10 / 2 s", () => {
    expect(SEED.high).toMatchObject({ max_events: 100, max_wait_ms: 100 });
    expect(SEED.medium).toMatchObject({ max_events: 50, max_wait_ms: 500 });
    expect(SEED.low).toMatchObject({ max_events: 10, max_wait_ms: 2000 });
  });

  const tiers: [number, string][] = [[0, "low"], [9.99, "low"], [10, "medium"], [99, "medium"], [
    100,
    "high",
  ], [5000, "high"]];
  for (const [rate, tier] of tiers) {
    it(`${rate} events/s → ${tier}`, () => expect(chooseTier(rate, SEED)).toBe(tier));
  }

  it("flushes a full batch now, else when the oldest entry has waited the tier's wait", () => {
    expect(flushDueAt(0, 1000, SEED.low)).toBe(Infinity);
    expect(flushDueAt(1, 1000, SEED.low, false)).toBe(-Infinity);
    expect(flushDueAt(10, 1000, SEED.low)).toBe(-Infinity);
    expect(flushDueAt(9, 1000, SEED.low)).toBe(3000);
    expect(flushDueAt(99, 1000, SEED.high)).toBe(1100);
  });

  it("the rate estimate converges to a steady rate and decays when the stream stops", () => {
    let e = undefined as ReturnType<typeof observeRate> | undefined;
    for (let t = 0; t < 20_000; t += 10) e = observeRate(e, 1, t); // 100 events/s
    expect(currentRate(e, 20_000)).toBeGreaterThan(90);
    expect(currentRate(e, 20_000)).toBeLessThan(110);
    expect(currentRate(e, 40_000)).toBeLessThan(1);
  });

  it("a higher rate never picks a lower tier", () => {
    const order = { low: 0, medium: 1, high: 2 };
    fc.assert(fc.property(
      fc.double({ min: 0, max: 1e5, noNaN: true }),
      fc.double({ min: 0, max: 1e5, noNaN: true }),
      (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(order[chooseTier(hi, SEED)]).toBeGreaterThanOrEqual(order[chooseTier(lo, SEED)]);
      },
    ));
  });
});

describe("the batcher", () => {
  beforeEach(() => void vi.useFakeTimers({ now: 0 }));
  afterEach(() => void vi.useRealTimers());

  function make(settings: BatchingSettings = SEED, flushMs = 0) {
    const flushed: { stream: string; items: number[]; at: number }[] = [];
    const overflow: number[] = [];
    const batcher = createBatcher<number>({
      settings: () => settings,
      flush: async (stream, items) => {
        flushed.push({ stream, items, at: Date.now() });
        if (flushMs) await new Promise((r) => setTimeout(r, flushMs));
      },
      onOverflow: (_s, items) => overflow.push(...items),
      now: () => Date.now(),
    });
    return { batcher, flushed, overflow };
  }

  it("an idle stream is flushed at once: batching adds no latency to a lone event", async () => {
    const { batcher, flushed } = make();
    await batcher.add("system", [1]);
    expect(flushed).toEqual([{ stream: "system", items: [1], at: 0 }]);
  });

  it("behind a flush in flight, a quiet stream accumulates until it settles, 10 entries or 2 s", async () => {
    const { batcher, flushed } = make(SEED, 5_000); // each flush takes 5 s
    for (let i = 0; i < MAX_FLUSHES_IN_FLIGHT; i++) void batcher.add("system", [-1]); // in flight until 5 s
    flushed.length = 0;
    void batcher.add("system", [0]);
    void batcher.add("system", [1]);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(flushed.map((f) => f.items)).toEqual([]);
    await vi.advanceTimersByTimeAsync(1); // the low tier's 2 s bound
    expect(flushed.map((f) => [f.items, f.at])).toEqual([[[0, 1], 2_000]]);
    void batcher.add("system", [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]); // full: out at once
    expect(flushed.at(-1)).toEqual({
      stream: "system",
      items: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
      at: 2_000,
    });
    const all = batcher.flushAll();
    await vi.advanceTimersByTimeAsync(20_000);
    await all;
  });

  it("what accumulated behind a flush goes out as soon as it settles", async () => {
    const { batcher, flushed } = make(SEED, 100);
    for (let i = 0; i < MAX_FLUSHES_IN_FLIGHT; i++) void batcher.add("system", [i]);
    void batcher.add("system", [10]);
    void batcher.add("system", [11]);
    expect(flushed.map((f) => f.items)).toEqual([[0], [1], [2], [3]]);
    await vi.advanceTimersByTimeAsync(100);
    expect(flushed.slice(4).map((f) => [f.items, f.at])).toEqual([[[10, 11], 100]]);
    const all = batcher.flushAll();
    await vi.advanceTimersByTimeAsync(1_000);
    await all;
  });

  it("a busy stream moves to the high tier: batches flushed every 0.1 s", async () => {
    const { batcher, flushed } = make();
    // 500 events/s for 3 s, one at a time.
    for (let t = 0; t < 3_000; t += 2) {
      void batcher.add("performance", [t]);
      await vi.advanceTimersByTimeAsync(2);
    }
    const late = flushed.filter((f) => f.at > 2_000);
    expect(batcher.status().streams.performance!.tier).toBe("high");
    for (const f of late) expect(f.items.length).toBeLessThanOrEqual(100);
    const gaps = late.slice(1).map((f, i) => f.at - late[i]!.at);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(102);
    // every entry flushed exactly once, in order
    await batcher.flushAll();
    expect(flushed.flatMap((f) => f.items)).toEqual(Array.from({ length: 1500 }, (_, i) => i * 2));
  });

  it("keeps streams apart", async () => {
    const { batcher, flushed } = make();
    void batcher.add("a", [1]);
    void batcher.add("b", [2]);
    await batcher.flushAll();
    expect(flushed.map((f) => [f.stream, f.items])).toEqual([["a", [1]], ["b", [2]]]);
  });

  it("flushAll flushes everything and waits for flushes in flight (shutdown)", async () => {
    const { batcher, flushed } = make(SEED, 500);
    const a = batcher.add("x", [1, 2]);
    const b = batcher.add("y", [3]);
    const all = batcher.flushAll();
    let finished = false;
    void all.then(() => (finished = true));
    await vi.advanceTimersByTimeAsync(499);
    expect(finished).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await all;
    await Promise.all([a, b]);
    expect(flushed.flatMap((f) => f.items).sort()).toEqual([1, 2, 3]);
    expect(batcher.status()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it("holds at most max_pending entries: the rest overflow, nothing is held twice or lost", async () => {
    const settings = { ...SEED, max_pending: 100 };
    const { batcher, flushed, overflow } = make(settings, 10_000); // flushes hang for 10 s
    const n = 1_000;
    for (let i = 0; i < n; i += 7) {
      void batcher.add("s", Array.from({ length: Math.min(7, n - i) }, (_, k) => i + k));
      const s = batcher.status();
      expect(s.pending + s.inFlight).toBeLessThanOrEqual(100);
    }
    await vi.advanceTimersByTimeAsync(20_000);
    await batcher.flushAll();
    const seen = [...flushed.flatMap((f) => f.items), ...overflow].sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(overflow.length).toBeGreaterThan(0);
  });

  it("with batching disabled every add is flushed at once", async () => {
    const { batcher, flushed } = make({ ...SEED, enabled: false });
    await batcher.add("s", [1]);
    await batcher.add("s", [2]);
    expect(flushed.map((f) => f.items)).toEqual([[1], [2]]);
  });

  it("any sequence of adds flushes every entry exactly once, in order per stream", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.constantFrom("a", "b", "c"),
            fc.integer({ min: 1, max: 30 }),
            fc.integer({ min: 0, max: 300 }),
          ),
          { maxLength: 60 },
        ),
        async (ops) => {
          const { batcher, flushed, overflow } = make();
          const sent: Record<string, number[]> = { a: [], b: [], c: [] };
          let id = 0;
          for (const [stream, count, wait] of ops) {
            const items = Array.from({ length: count }, () => id++);
            sent[stream]!.push(...items);
            void batcher.add(stream, items);
            await vi.advanceTimersByTimeAsync(wait);
          }
          await batcher.flushAll();
          expect(overflow).toEqual([]);
          for (const stream of ["a", "b", "c"]) {
            expect(flushed.filter((f) => f.stream === stream).flatMap((f) => f.items)).toEqual(
              sent[stream],
            );
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
