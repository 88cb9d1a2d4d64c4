import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults } from "../../shared/config/settings.ts";
import { emptyHistogram, observe } from "../../shared/metrics/histogram.ts";
import {
  baselineMedianMs,
  BREAKER_EDGES,
  type BreakerInput,
  type BreakerPolicy,
  breakerPolicy,
  type BreakerRecord,
  type BreakerState,
  countAbove,
  initialBreakerRecord,
  judgeWindow,
  slowLimitMs,
  stepBreaker,
  windowStart,
} from "../../shared/resilience/breaker.ts";

const POLICY: BreakerPolicy = {
  enabled: true,
  failureRateThreshold: 0.05,
  slowCallRateThreshold: 0.5,
  slowCallMs: 200,
  latencyMultiplier: 2,
  minimumCalls: 20,
  windowMs: 60_000,
  recoveryMs: 30_000,
  halfOpenProbes: 5,
  probeTimeoutMs: 30_000,
};

const T0 = 1_700_000_000_000;

function record(over: Partial<BreakerRecord> = {}): BreakerRecord {
  return { ...initialBreakerRecord(T0), ...over };
}

function hist(latencies: number[]): number[] {
  const h = emptyHistogram();
  for (const l of latencies) observe(h, l);
  return h;
}

function window(calls: number, failures: number, latencies: number[] = [], slow = 0) {
  return { calls, failures, slow_calls: slow, histogram: hist(latencies) };
}

const trip = judgeWindow(window(20, 20), null, POLICY);

describe("breakerPolicy", () => {
  it("reads the adapter's thresholds and the breaker settings", () => {
    const s = builtInDefaults().settings;
    expect(breakerPolicy("websocket", s)).toEqual({
      enabled: true,
      failureRateThreshold: 0.05,
      slowCallRateThreshold: 0.5,
      slowCallMs: 200,
      latencyMultiplier: 2,
      minimumCalls: 20,
      windowMs: 60_000,
      recoveryMs: 30_000,
      halfOpenProbes: 5,
      probeTimeoutMs: 30_000,
    });
    expect(breakerPolicy("realtime", s).slowCallMs).toBe(150);
  });
});

describe("judgeWindow", () => {
  const cases: {
    name: string;
    w: ReturnType<typeof window>;
    baseline: number | null;
    trip: boolean;
    judged: boolean;
    reason: RegExp;
  }[] = [
    {
      name: "below the minimum number of calls: not judged even at 100 % failures",
      w: window(19, 19),
      baseline: null,
      trip: false,
      judged: false,
      reason: /fewer than the minimum 20/,
    },
    {
      name: "no calls at all",
      w: window(0, 0),
      baseline: null,
      trip: false,
      judged: false,
      reason: /0 call/,
    },
    {
      name: "failure rate exactly at the threshold opens (>=, as resilience4j)",
      w: window(20, 1),
      baseline: null,
      trip: true,
      judged: true,
      reason: /failure rate 5% >= 5% over 20 calls/,
    },
    {
      name: "failure rate just under the threshold stays closed",
      w: window(21, 1),
      baseline: null,
      trip: false,
      judged: true,
      reason: /failure rate 4.8%/,
    },
    {
      name: "half the calls over the absolute threshold opens",
      w: window(20, 0, [], 10),
      baseline: null,
      trip: true,
      judged: true,
      reason: /slow-call rate 50% >= 50%.*slower than 200 ms/,
    },
    {
      name: "slow calls under the rate threshold stay closed",
      w: window(20, 0, [], 9),
      baseline: null,
      trip: false,
      judged: true,
      reason: /slow-call rate 45%/,
    },
    {
      name: "the multiplier rule: most calls over 2× a 10 ms baseline opens, under 200 ms",
      w: window(20, 0, Array(20).fill(60)),
      baseline: 10,
      trip: true,
      judged: true,
      reason: /slower than 20 ms/,
    },
    {
      name: "the multiplier rule does not fire without a baseline",
      w: window(20, 0, Array(20).fill(60)),
      baseline: null,
      trip: false,
      judged: true,
      reason: /slow-call rate 0%/,
    },
    {
      name: "calls near the baseline are not slow",
      w: window(20, 0, Array(20).fill(12)),
      baseline: 10,
      trip: false,
      judged: true,
      reason: /slow-call rate 0%/,
    },
    {
      name: "a baseline so high that 2× is over the threshold leaves the threshold in charge",
      w: window(20, 0, Array(20).fill(150), 0),
      baseline: 500,
      trip: false,
      judged: true,
      reason: /slow-call rate 0%/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const v = judgeWindow(c.w, c.baseline, POLICY);
      expect(v.trip).toBe(c.trip);
      expect(v.judged).toBe(c.judged);
      expect(v.reason).toMatch(c.reason);
    });
  }

  it("rates stay within [0, 1] and a trip needs a judged window", () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 500 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.option(fc.double({ min: 0.1, max: 1000, noNaN: true })),
      fc.array(fc.double({ min: 0, max: 5000, noNaN: true }), { maxLength: 50 }),
      (calls, f, s, baseline, lat) => {
        const failures = Math.floor(calls * f);
        const slow = Math.floor(calls * s);
        const v = judgeWindow(window(calls, failures, lat, slow), baseline, POLICY);
        if (v.trip) expect(v.judged).toBe(true);
        if (!v.judged) expect(v.trip).toBe(false);
        if (v.judged) {
          expect(v.failureRate).toBeGreaterThanOrEqual(0);
          expect(v.failureRate).toBeLessThanOrEqual(1);
          expect(v.slowCallRate).toBeGreaterThanOrEqual(0);
          expect(v.slowCallRate).toBeLessThanOrEqual(1);
          // More failures never un-trip a window.
          if (v.trip && failures / calls >= POLICY.failureRateThreshold) {
            expect(judgeWindow(window(calls, calls, lat, slow), baseline, POLICY).trip).toBe(true);
          }
        }
        expect(v.slowLimitMs).toBeLessThanOrEqual(POLICY.slowCallMs);
      },
    ));
  });
});

describe("countAbove and the slow limit", () => {
  it("counts whole buckets above the limit and interpolates the one holding it", () => {
    const h = hist([1, 5, 50, 50, 500, 70_000]);
    expect(countAbove(h, 0)).toBe(6);
    expect(countAbove(h, 100_000)).toBe(1); // the overflow bucket counts whole
    expect(countAbove(h, 1000)).toBe(1);
    const at50 = countAbove(h, 50);
    expect(at50).toBeGreaterThan(2);
    expect(at50).toBeLessThan(4);
  });

  it("is non-increasing in the limit and bounded by the count", () => {
    fc.assert(fc.property(
      fc.array(fc.double({ min: 0, max: 100_000, noNaN: true }), { maxLength: 60 }),
      fc.double({ min: 0, max: 200_000, noNaN: true }),
      fc.double({ min: 0, max: 200_000, noNaN: true }),
      (lat, a, b) => {
        const h = hist(lat);
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(countAbove(h, lo)).toBeGreaterThanOrEqual(countAbove(h, hi) - 1e-9);
        expect(countAbove(h, lo)).toBeLessThanOrEqual(lat.length + 1e-9);
      },
    ));
  });

  it("takes the lower of the threshold and multiplier × baseline", () => {
    expect(slowLimitMs(POLICY, null)).toBe(200);
    expect(slowLimitMs(POLICY, 30)).toBe(60);
    expect(slowLimitMs(POLICY, 150)).toBe(200);
    expect(baselineMedianMs({ calls: 5, histogram: hist([10]), latency_max_ms: 10 }, 20)).toBe(
      null,
    );
    const median = baselineMedianMs(
      { calls: 30, histogram: hist(Array(30).fill(10)), latency_max_ms: 10 },
      20,
    );
    expect(median).toBeGreaterThan(9);
    expect(median).toBeLessThanOrEqual(10.1);
  });

  it("judges only buckets after the last close", () => {
    expect(windowStart({ windowFrom: null }, T0, 60_000)).toBe(T0 - 60_000);
    expect(windowStart({ windowFrom: T0 - 5_001 }, T0, 60_000)).toBe(
      Math.ceil((T0 - 5_001) / 10_000) * 10_000,
    );
    expect(windowStart({ windowFrom: T0 - 600_000 }, T0, 60_000)).toBe(T0 - 60_000);
  });
});

describe("stepBreaker: the transition table", () => {
  type Row = {
    name: string;
    from: Partial<BreakerRecord>;
    input: BreakerInput;
    to: BreakerState;
    permit?: string;
    transition: boolean;
    expect?: Partial<BreakerRecord>;
  };
  const rows: Row[] = [
    {
      name: "closed, acquire → allow",
      from: {},
      input: { type: "acquire", now: T0 },
      to: "closed",
      permit: "allow",
      transition: false,
    },
    {
      name: "closed, evaluate with a tripping window → open until now + recovery",
      from: {},
      input: { type: "evaluate", now: T0, verdict: trip },
      to: "open",
      transition: true,
      expect: { openUntil: T0 + 30_000, since: T0 },
    },
    {
      name: "closed, evaluate with a healthy window → closed",
      from: {},
      input: { type: "evaluate", now: T0, verdict: judgeWindow(window(100, 0), null, POLICY) },
      to: "closed",
      transition: false,
    },
    {
      name: "closed, a failed outcome alone does not open (the window decides)",
      from: {},
      input: { type: "outcome", now: T0, ok: false, slow: false, admitted: false },
      to: "closed",
      transition: false,
    },
    {
      name: "open, acquire before the open period ends → deny",
      from: { state: "open", openUntil: T0 + 1 },
      input: { type: "acquire", now: T0 },
      to: "open",
      permit: "deny",
      transition: false,
    },
    {
      name:
        "open, acquire at the end of the open period → half-open with this call as the first probe",
      from: { state: "open", openUntil: T0 },
      input: { type: "acquire", now: T0 },
      to: "half_open",
      permit: "probe",
      transition: true,
      expect: { probesAdmitted: 1, probeSuccesses: 0 },
    },
    {
      name: "open, evaluate after the open period → half-open",
      from: { state: "open", openUntil: T0 - 1 },
      input: { type: "evaluate", now: T0 },
      to: "half_open",
      transition: true,
      expect: { probesAdmitted: 0 },
    },
    {
      name: "open, evaluate during the open period → open",
      from: { state: "open", openUntil: T0 + 10 },
      input: { type: "evaluate", now: T0, verdict: trip },
      to: "open",
      transition: false,
    },
    {
      name: "half-open, acquire with slots free → probe",
      from: { state: "half_open", probesAdmitted: 4 },
      input: { type: "acquire", now: T0 },
      to: "half_open",
      permit: "probe",
      transition: false,
      expect: { probesAdmitted: 5 },
    },
    {
      name: "half-open, acquire with every slot taken → deny",
      from: { state: "half_open", probesAdmitted: 5 },
      input: { type: "acquire", now: T0 },
      to: "half_open",
      permit: "deny",
      transition: false,
    },
    {
      name: "half-open, the last of N probes succeeds → closed, ramp starts",
      from: { state: "half_open", probesAdmitted: 5, probeSuccesses: 4 },
      input: { type: "outcome", now: T0, ok: true, slow: false, admitted: true },
      to: "closed",
      transition: true,
      expect: {
        closedAt: T0,
        windowFrom: T0,
        probesAdmitted: 0,
        probeSuccesses: 0,
        openUntil: null,
      },
    },
    {
      name: "half-open, a probe succeeds with more to go → counted",
      from: { state: "half_open", probesAdmitted: 3, probeSuccesses: 1 },
      input: { type: "outcome", now: T0, ok: true, slow: false, admitted: true },
      to: "half_open",
      transition: false,
      expect: { probeSuccesses: 2 },
    },
    {
      name: "half-open, a failed probe → open again",
      from: { state: "half_open", probesAdmitted: 5, probeSuccesses: 4 },
      input: {
        type: "outcome",
        now: T0,
        ok: false,
        slow: false,
        admitted: true,
        detail: "HTTP 503",
      },
      to: "open",
      transition: true,
      expect: { openUntil: T0 + 30_000 },
    },
    {
      name: "half-open, one slow probe of five is tolerated (20 % < 50 %)",
      from: { state: "half_open", probesAdmitted: 1 },
      input: { type: "outcome", now: T0, ok: true, slow: true, admitted: true },
      to: "half_open",
      transition: false,
      expect: { probeSuccesses: 1, probeSlow: 1 },
    },
    {
      name: "half-open, the third slow probe of five → open again (60 % >= 50 %)",
      from: { state: "half_open", probesAdmitted: 4, probeSuccesses: 3, probeSlow: 2 },
      input: { type: "outcome", now: T0, ok: true, slow: true, admitted: true },
      to: "open",
      transition: true,
    },
    {
      name: "half-open, all five reported with two slow → closed",
      from: { state: "half_open", probesAdmitted: 5, probeSuccesses: 4, probeSlow: 2 },
      input: { type: "outcome", now: T0, ok: true, slow: false, admitted: true },
      to: "closed",
      transition: true,
    },
    {
      name: "half-open, an unadmitted outcome takes a free slot",
      from: { state: "half_open", probesAdmitted: 1, probeSuccesses: 1 },
      input: { type: "outcome", now: T0, ok: true, slow: false, admitted: false },
      to: "half_open",
      transition: false,
      expect: { probesAdmitted: 2, probeSuccesses: 2 },
    },
    {
      name: "half-open, an unadmitted outcome with no free slot is ignored",
      from: { state: "half_open", probesAdmitted: 5, probeSuccesses: 1 },
      input: { type: "outcome", now: T0, ok: false, slow: false, admitted: false },
      to: "half_open",
      transition: false,
      expect: { probesAdmitted: 5, probeSuccesses: 1 },
    },
    {
      name: "half-open, a stale permit (nothing outstanding) takes a free slot instead",
      from: { state: "half_open", probesAdmitted: 2, probeSuccesses: 2 },
      input: { type: "outcome", now: T0, ok: true, slow: false, admitted: true },
      to: "half_open",
      transition: false,
      expect: { probesAdmitted: 3, probeSuccesses: 3 },
    },
    {
      name: "half-open, probes silent past the timeout are admitted again",
      from: { state: "half_open", since: T0 - 30_000, probesAdmitted: 5, probeSuccesses: 2 },
      input: { type: "evaluate", now: T0 },
      to: "half_open",
      transition: false,
      expect: { probesAdmitted: 2, probeSuccesses: 2, since: T0 },
    },
    {
      name: "force from open to closed",
      from: { state: "open", openUntil: T0 + 99_999 },
      input: { type: "force", now: T0, to: "closed", reason: "operator reset" },
      to: "closed",
      transition: true,
      expect: { reason: "operator reset", closedAt: null, windowFrom: T0 },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const before = record(r.from);
      const step = stepBreaker(before, r.input, POLICY);
      expect(step.record.state).toBe(r.to);
      expect(step.permit).toBe(r.permit);
      expect(step.transition !== undefined).toBe(r.transition);
      if (r.expect) expect(step.record).toMatchObject(r.expect);
      expect(step.record.version).toBe(before.version + (step.changed ? 1 : 0));
    });
  }

  it("a disabled breaker closes from any state and always allows", () => {
    const off = { ...POLICY, enabled: false };
    for (const state of ["open", "half_open"] as const) {
      const step = stepBreaker(
        record({ state, openUntil: T0 + 1e6 }),
        { type: "acquire", now: T0 },
        off,
      );
      expect(step.record.state).toBe("closed");
      expect(step.permit).toBe("allow");
      expect(step.transition?.reason).toMatch(/disabled/);
    }
    expect(stepBreaker(record(), { type: "evaluate", now: T0, verdict: trip }, off).record.state)
      .toBe("closed");
  });
});

describe("stepBreaker: properties over random histories", () => {
  const input = (now: number): fc.Arbitrary<BreakerInput> =>
    fc.oneof(
      fc.record({ type: fc.constant("acquire" as const), now: fc.constant(now) }),
      fc.record({
        type: fc.constant("evaluate" as const),
        now: fc.constant(now),
        verdict: fc.constantFrom(trip, judgeWindow(window(50, 0), null, POLICY), undefined),
      }),
      fc.record({
        type: fc.constant("outcome" as const),
        now: fc.constant(now),
        ok: fc.boolean(),
        slow: fc.constantFrom(false, false, false, true),
        admitted: fc.boolean(),
      }),
    );
  const history = fc.array(fc.tuple(fc.integer({ min: 0, max: 20_000 }), input(0)), {
    minLength: 1,
    maxLength: 120,
  });
  const policy = fc.record({
    halfOpenProbes: fc.integer({ min: 1, max: 6 }),
    recoveryMs: fc.integer({ min: 1, max: 60_000 }),
  }).map((p) => ({ ...POLICY, ...p, probeTimeoutMs: Math.max(p.recoveryMs, 10_000) }));

  it("moves only along the allowed edges, admits at most N probes, never allows while open, judges the N probes like a window", () => {
    fc.assert(
      fc.property(history, policy, (steps, pol) => {
        let r = record();
        let now = T0;
        // The model: the probes counted in the current half-open period.
        let probes = { ok: 0, failed: 0, slow: 0 };
        for (const [dt, raw] of steps) {
          now += dt;
          const inp = { ...raw, now } as BreakerInput;
          const before = r;
          const step = stepBreaker(r, inp, pol);
          r = step.record;
          // version moves exactly when the record changes
          expect(r.version).toBe(before.version + (step.changed ? 1 : 0));
          expect(step.changed).toBe(
            JSON.stringify({ ...before, version: 0 }) !== JSON.stringify({ ...r, version: 0 }),
          );
          if (step.transition) {
            expect(BREAKER_EDGES.has(`${step.transition.from}>${step.transition.to}`)).toBe(true);
            expect(step.transition.from).toBe(before.state);
            expect(r.state).toBe(step.transition.to);
            expect(r.since).toBe(now);
          } else expect(r.state).toBe(before.state);
          // probes never exceed N
          expect(r.probesAdmitted).toBeLessThanOrEqual(pol.halfOpenProbes);
          expect(r.probeSuccesses + r.probeFailures).toBeLessThanOrEqual(r.probesAdmitted);
          expect(r.probeSlow).toBeLessThanOrEqual(r.probeSuccesses);
          // nothing is allowed while open before the open period ends
          if (before.state === "open" && before.openUntil !== null && now < before.openUntil) {
            expect(step.permit === "allow" || step.permit === "probe").toBe(false);
            expect(r.state).toBe("open");
          }
          if (r.state === "open") expect(r.openUntil).not.toBeNull();
          // Half-open: N probes judged like a window (resilience4j).
          const n = pol.halfOpenProbes;
          if (before.state === "half_open" && inp.type === "outcome") {
            const outstanding =
              before.probesAdmitted > before.probeSuccesses + before.probeFailures;
            const counted = (inp.admitted && outstanding) || before.probesAdmitted < n;
            if (counted) {
              probes = {
                ok: probes.ok + (inp.ok ? 1 : 0),
                failed: probes.failed + (inp.ok ? 0 : 1),
                slow: probes.slow + (inp.ok && inp.slow ? 1 : 0),
              };
            }
          }
          const failing = probes.failed / n >= pol.failureRateThreshold;
          const slowing = probes.slow / n >= pol.slowCallRateThreshold;
          if (step.transition?.from === "half_open") {
            if (step.transition.to === "closed") {
              // every probe reported, both rates under their thresholds
              expect(probes.ok + probes.failed).toBe(n);
              expect(failing || slowing).toBe(false);
              expect(r.closedAt).toBe(now);
            } else expect(failing || slowing).toBe(true);
          } else if (before.state === "half_open" && r.state === "half_open") {
            expect(failing || slowing).toBe(false);
            expect(r.probeSuccesses).toBe(probes.ok);
            expect(r.probeFailures).toBe(probes.failed);
            expect(r.probeSlow).toBe(probes.slow);
          }
          if (step.transition) probes = { ok: 0, failed: 0, slow: 0 };
          // acquire always gets an answer; other inputs never do
          expect(step.permit !== undefined).toBe(inp.type === "acquire");
        }
      }),
      { numRuns: 300 },
    );
  });

  it("is deterministic", () => {
    fc.assert(
      fc.property(history, (steps) => {
        const run = () => {
          let r = record();
          let now = T0;
          const out: unknown[] = [];
          for (const [dt, raw] of steps) {
            now += dt;
            const s = stepBreaker(r, { ...raw, now } as BreakerInput, POLICY);
            r = s.record;
            out.push(s);
          }
          return out;
        };
        expect(run()).toEqual(run());
      }),
      { numRuns: 50 },
    );
  });
});
