import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DeliveredIds } from "../../shared/realtime-consumer/dedupe.ts";

describe("DeliveredIds", () => {
  it("accepts each id once within the window", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.nat(1000))), (offers) => {
        const d = new DeliveredIds(10_000);
        const seen = new Set<number>();
        for (const [id, t] of offers) {
          expect(d.offer(String(id), t)).toBe(!seen.has(id) && (seen.add(id), true));
        }
      }),
    );
  });

  it("prune forgets only ids older than the window", () => {
    const d = new DeliveredIds(1000);
    d.offer("old", 0);
    d.offer("recent", 5000);
    d.prune(5500);
    expect(d.offer("recent", 5600)).toBe(false);
    expect(d.offer("old", 5600)).toBe(true);
  });

  it("stays bounded", () => {
    const d = new DeliveredIds(1_000_000, 100);
    for (let i = 0; i < 1000; i++) d.offer(`id${i}`, i);
    expect(d.size).toBeLessThanOrEqual(100);
    expect(d.offer("id999", 999)).toBe(false);
  });
});
