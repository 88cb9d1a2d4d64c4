import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults } from "../../shared/config/settings.ts";
import {
  connectionFailuresFire,
  judgeErrorRate,
  judgeLatency,
  planRollback,
  stepStreak,
  type Streak,
  type Verdict,
} from "../../shared/resilience/rollback.ts";

const R = builtInDefaults().settings.rollback;
const T0 = 1_700_000_000_000;

describe("rollback judgements", () => {
  it("error rate: over 5 % is a breach, at or under is clear, too few calls unknown", () => {
    expect(judgeErrorRate({ calls: 100, failures: 6 }, "closed", R, 20).verdict).toBe("breach");
    expect(judgeErrorRate({ calls: 100, failures: 5 }, "closed", R, 20).verdict).toBe("clear");
    expect(judgeErrorRate({ calls: 19, failures: 19 }, "closed", R, 20).verdict).toBe("unknown");
    expect(judgeErrorRate({ calls: 100, failures: 6 }, "closed", R, 20).detail).toMatch(
      /error rate 6% > 5% over 100 calls/,
    );
  });

  it("error rate: an open breaker is a breach whatever the counts; half-open is unknown", () => {
    expect(judgeErrorRate({ calls: 0, failures: 0 }, "open", R, 20)).toEqual({
      verdict: "breach",
      detail: "the circuit breaker is open",
    });
    expect(judgeErrorRate({ calls: 100, failures: 100 }, "half_open", R, 20).verdict).toBe(
      "unknown",
    );
  });

  it("latency: over 2× the baseline median is a breach", () => {
    expect(judgeLatency(21, 10, R).verdict).toBe("breach");
    expect(judgeLatency(20, 10, R).verdict).toBe("clear");
    expect(judgeLatency(null, 10, R).verdict).toBe("unknown");
    expect(judgeLatency(50, null, R).verdict).toBe("unknown");
  });

  it("connection failures: 3 in a row within a minute, the last one recent", () => {
    const f = (count: number, first: number, last: number) => ({
      count,
      firstAt: first,
      lastAt: last,
    });
    expect(connectionFailuresFire(f(3, T0, T0 + 59_000), T0 + 59_000, R)).toBe(true);
    expect(connectionFailuresFire(f(2, T0, T0 + 1_000), T0 + 1_000, R)).toBe(false);
    expect(connectionFailuresFire(f(3, T0, T0 + 61_000), T0 + 61_000, R)).toBe(false);
    expect(connectionFailuresFire(f(5, T0, T0 + 10_000), T0 + 100_000, R)).toBe(false);
    expect(connectionFailuresFire({ count: 3, firstAt: null, lastAt: null }, T0, R)).toBe(false);
  });
});

describe("streaks: 'for N minutes'", () => {
  const D = 300_000;
  const run = (verdicts: [number, Verdict][]) => {
    let streak: Streak = { breachedSince: null, lastBreachAt: null, lastEvaluatedAt: null };
    const fired: number[] = [];
    for (const [t, v] of verdicts) {
      const step = stepStreak(streak, v, T0 + t, D);
      streak = step.streak;
      if (step.fire) fired.push(t);
    }
    return fired;
  };

  it("fires once a breach has lasted the duration", () => {
    const every10s = (from: number, to: number, v: Verdict) =>
      Array.from(
        { length: (to - from) / 10_000 + 1 },
        (_, i) => [from + i * 10_000, v] as [number, Verdict],
      );
    expect(run(every10s(0, 300_000, "breach"))).toEqual([300_000]);
    expect(run(every10s(0, 290_000, "breach"))).toEqual([]);
  });

  it("a clear run ends the streak; unknown does not", () => {
    expect(run([[0, "breach"], [150_000, "clear"], [160_000, "breach"], [300_000, "breach"]]))
      .toEqual([]);
    expect(
      run([
        [0, "breach"],
        [50_000, "unknown"],
        [100_000, "breach"],
        [150_000, "unknown"],
        [200_000, "breach"],
        [250_000, "unknown"],
        [300_000, "breach"],
      ]),
    ).toEqual([300_000]);
  });

  it("a long gap between runs restarts the streak", () => {
    expect(run([[0, "breach"], [200_000, "breach"], [300_000, "breach"]])).toEqual([]);
  });

  it("a breach long after unknowns starts a new streak (a stale breach does not fire)", () => {
    const unknowns = Array.from({ length: 60 }, (_, i) =>
      [10_000 * (i + 1), "unknown"] as [
        number,
        Verdict,
      ]);
    expect(run([[0, "breach"], ...unknowns, [610_000, "breach"]])).toEqual([]);
  });

  it("never fires before the duration, nor on a clear run, and restarts after firing", () => {
    fc.assert(fc.property(
      fc.array(
        fc.tuple(
          fc.integer({ min: 1_000, max: 60_000 }),
          fc.constantFrom<Verdict>("breach", "clear", "unknown"),
        ),
        { maxLength: 100 },
      ),
      (steps) => {
        let streak: Streak = { breachedSince: null, lastBreachAt: null, lastEvaluatedAt: null };
        let now = T0;
        for (const [dt, v] of steps) {
          now += dt;
          const before = streak;
          const step = stepStreak(streak, v, now, D);
          streak = step.streak;
          if (step.fire) {
            expect(v).toBe("breach");
            expect(before.breachedSince).not.toBeNull();
            expect(now - before.breachedSince!).toBeGreaterThanOrEqual(D);
            expect(streak.breachedSince).toBeNull();
          }
          if (v === "clear") expect(streak.breachedSince).toBeNull();
          expect(streak.lastEvaluatedAt).toBe(now);
        }
      },
    ));
  });
});

describe("planRollback", () => {
  const base = () => {
    const d = builtInDefaults();
    return {
      categories: d.categories,
      primary: "websocket" as const,
      globalOverride: null,
      onPrimaryFailure: "global_override" as const,
    };
  };

  it("a failing secondary: every category writing to it falls back to the primary", () => {
    const plan = planRollback("realtime", base(), true);
    expect(plan.action).toBe("fallback_to_primary");
    // critical, user_activity and system list realtime in the seed's defaults
    expect(plan.categories).toEqual(["critical", "user_activity", "system"]);
    expect(plan.changes).toEqual([
      { type: "category", category: "critical", changes: { adapters: ["websocket"] } },
      { type: "category", category: "user_activity", changes: { adapters: [] } },
      { type: "category", category: "system", changes: { adapters: ["websocket"] } },
    ]);
  });

  it("a failing primary: the global override goes to the other adapter, if it is healthy", () => {
    expect(planRollback("websocket", base(), true)).toMatchObject({
      action: "global_override",
      changes: [{ type: "setting", key: "global_override", value: "realtime_only" }],
    });
    expect(planRollback("websocket", base(), false).action).toBe("none");
    expect(planRollback("websocket", { ...base(), onPrimaryFailure: "none" }, true).action).toBe(
      "none",
    );
  });

  it("nothing to do under an override or when no category uses the adapter", () => {
    expect(
      planRollback("realtime", { ...base(), globalOverride: "websocket_only" as never }, true)
        .action,
    )
      .toBe("none");
    const c = base();
    for (const k of Object.keys(c.categories) as (keyof typeof c.categories)[]) {
      c.categories[k] = { ...c.categories[k], adapters: ["websocket"] };
    }
    expect(planRollback("realtime", c, true).action).toBe("none");
  });
});
