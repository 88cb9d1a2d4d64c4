import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  backoffCeilingMs,
  DEFAULT_BACKOFF,
  reconnectBackoff,
} from "../../shared/fanout-client/backoff.ts";
import { isNewDelivery, streamUrl } from "../../shared/fanout-client/client.ts";

function delays(count: number, options: Parameters<typeof reconnectBackoff>[0]): number[] {
  const out: number[] = [];
  let b = reconnectBackoff(options);
  for (let i = 0; i < count; i++) {
    out.push(b.duration);
    b = b.next(undefined);
  }
  return out;
}

describe("reconnect backoff (full jitter)", () => {
  it("defaults to 1 s doubling up to 30 s", () => {
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 1000, maxMs: 30000 });
    expect(Array.from({ length: 8 }, (_, n) => backoffCeilingMs(n, 1000, 30000))).toEqual([
      1000,
      2000,
      4000,
      8000,
      16000,
      30000,
      30000,
      30000,
    ]);
    expect(delays(8, { random: () => 0.9999999 }).map(Math.round)).toEqual([
      1000,
      2000,
      4000,
      8000,
      16000,
      30000,
      30000,
      30000,
    ]);
  });

  it("waits a uniform share of the ceiling: random r gives r × ceiling", () => {
    fc.assert(fc.property(
      fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
        minLength: 1,
        maxLength: 40,
      }),
      fc.integer({ min: 1, max: 5000 }),
      fc.integer({ min: 1, max: 120_000 }),
      (randoms, initialMs, maxMs) => {
        let i = 0;
        const got = delays(randoms.length, { initialMs, maxMs, random: () => randoms[i++]! });
        got.forEach((d, n) => {
          const ceiling = Math.min(maxMs, initialMs * 2 ** n);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThan(Math.max(ceiling, Number.MIN_VALUE));
          expect(d).toBeCloseTo(randoms[n]! * ceiling, 6);
        });
      },
    ));
  });

  it("with the real random, never waits longer than 30 s nor less than 0", () => {
    for (const d of delays(200, {})) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(30_000);
    }
  });
});

describe("client cursor bookkeeping", () => {
  it("accepts a delivery only when its cursor is above the last one", () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 100 }),
      (cursors) => {
        let last: number | null = null;
        const accepted: number[] = [];
        for (const c of cursors) {
          if (isNewDelivery(last, c)) {
            accepted.push(c);
            last = c;
          }
        }
        // Strictly increasing, and every cursor that beat the running max got through.
        for (let i = 1; i < accepted.length; i++) {
          expect(accepted[i]!).toBeGreaterThan(accepted[i - 1]!);
        }
        let max = -1;
        const expected = cursors.filter((c) => (c > max ? ((max = c), true) : false));
        expect(accepted).toEqual(expected);
      },
    ));
  });

  it("builds the connect URL from the cursor and filters", () => {
    expect(streamUrl("http://h:1/functions/v1/ws-fanout", "tok", null)).toBe(
      "ws://h:1/functions/v1/ws-fanout?token=tok",
    );
    const url = new URL(
      streamUrl("https://h/functions/v1/ws-fanout", "a.b.c", 12, ["critical", "system"], ["x y"]),
    );
    expect(url.protocol).toBe("wss:");
    expect(url.searchParams.get("since")).toBe("12");
    expect(url.searchParams.get("categories")).toBe("critical,system");
    expect(url.searchParams.get("sources")).toBe("x y");
  });
});
