/**
 * The circuit breaker's decisions, with resilience4j's semantics, as a pure
 * state machine over SHARED inputs (DESIGN §2.6):
 *
 * - CLOSED: calls flow. The breaker judges a sliding window of the adapter's
 *   calls — the persisted 10-second stats buckets of every instance
 *   (cutover.adapter_stats), not one instance's memory. Below `minimum_calls`
 *   it does not judge. It OPENS when the failure rate reaches the adapter's
 *   `error_threshold`, or the slow-call rate reaches `slow_call_rate_threshold`,
 *   where a call is slow when it took longer than the adapter's
 *   `latency_threshold_ms` OR longer than `latency_multiplier` × the adapter's
 *   baseline (the 95th percentile latency of the hour before the window,
 *   over the buckets whose failure rate was under the threshold — an
 *   outage's fast failures are not the adapter's normal latency; a high
 *   percentile, so ordinary jitter is not "slow").
 * - OPEN: no calls (the relay defers them to the dead-letter queue; routing
 *   falls back). After `recovery_time_s` the next permit request or
 *   evaluation moves it to HALF_OPEN.
 * - HALF_OPEN: exactly `half_open_requests` (N) probe calls are admitted
 *   across all instances and judged like a window, as resilience4j does: it
 *   re-OPENS as soon as the probes' failure rate (failures / N) reaches the
 *   error threshold — with 5 % and N = 5, at the first failure — or their
 *   slow-call rate reaches the slow-call threshold (3 slow of 5 at 50 %),
 *   and CLOSES when all N have reported below both. Probes that never
 *   report (their instance died) are re-admitted after the probe timeout.
 *
 * The window judged after a close starts at the close (rounded up to the
 * next bucket), so failures from before the recovery cannot re-open it —
 * resilience4j likewise resets its window on a transition.
 *
 * `stepBreaker` is the only function that changes a record; the Postgres
 * adapter (breaker-store.ts) applies its result with a conditional UPDATE on
 * `version`, so concurrent instances never make the same transition twice.
 */
import type { CircuitBreakerSettings, Settings } from "../config/settings.ts";
import type { Adapter } from "../events/schema.ts";
import { bucketRange, estimatePercentile, histogramCount } from "../metrics/histogram.ts";
import { type AdapterCounts, STATS_BUCKET_MS } from "../metrics/stats.ts";

export type BreakerState = "closed" | "open" | "half_open";

/** The shared record of one adapter's breaker (a row of cutover.breaker_state). Times are epoch ms. */
export interface BreakerRecord {
  state: BreakerState;
  /** Bumped by every change; the conditional UPDATE's guard. */
  version: number;
  /** When the current state was entered. */
  since: number;
  /** While open: when probing may begin. */
  openUntil: number | null;
  /** The last close after an open period (null: none, or a forced close): the restore ramp's start. */
  closedAt: number | null;
  /** Calls before this are not judged (set by every close and reset; null: the plain window). */
  windowFrom: number | null;
  /** Probes admitted in the current half-open period. */
  probesAdmitted: number;
  /** Of those, how many succeeded (slow ones included). */
  probeSuccesses: number;
  /** ... how many failed. */
  probeFailures: number;
  /** ... how many succeeded but were slow. */
  probeSlow: number;
  /** Why the breaker is in its state (the last transition's reason). */
  reason: string | null;
}

/** Everything the breaker of one adapter decides with. */
export interface BreakerPolicy {
  enabled: boolean;
  /** Failure rate that opens (>=), e.g. 0.05. */
  failureRateThreshold: number;
  /** Slow-call rate that opens (>=), e.g. 0.5. */
  slowCallRateThreshold: number;
  /** A call slower than this is slow (adapter_health.<adapter>.latency_threshold_ms). */
  slowCallMs: number;
  /** ... or slower than this multiple of the baseline median. */
  latencyMultiplier: number;
  minimumCalls: number;
  windowMs: number;
  recoveryMs: number;
  halfOpenProbes: number;
  /** Admitted probes that have not reported after this long are admitted again. */
  probeTimeoutMs: number;
}

/** How far back the baseline reaches before the judged window. */
export const BASELINE_WINDOW_MS = 3_600_000;

/** The breaker policy of `adapter` from the settings. Pure. */
export function breakerPolicy(
  adapter: Adapter,
  settings: Pick<Settings, "circuit_breaker" | "adapter_health">,
): BreakerPolicy {
  const b: CircuitBreakerSettings = settings.circuit_breaker;
  const h = settings.adapter_health[adapter];
  return {
    enabled: b.enabled,
    failureRateThreshold: h.error_threshold,
    slowCallRateThreshold: b.slow_call_rate_threshold,
    slowCallMs: h.latency_threshold_ms,
    latencyMultiplier: b.latency_multiplier,
    minimumCalls: b.minimum_calls,
    windowMs: b.window_s * 1000,
    recoveryMs: b.recovery_time_s * 1000,
    halfOpenProbes: b.half_open_requests,
    probeTimeoutMs: Math.max(b.recovery_time_s * 1000, 10_000),
  };
}

/** A fresh, closed record. */
export function initialBreakerRecord(now: number): BreakerRecord {
  return {
    state: "closed",
    version: 0,
    since: now,
    openUntil: null,
    closedAt: null,
    windowFrom: null,
    probesAdmitted: 0,
    probeSuccesses: 0,
    probeFailures: 0,
    probeSlow: 0,
    reason: null,
  };
}

/**
 * Where the judged window starts: `windowMs` before `now`, but never before
 * the bucket after the last close (`windowFrom`). Bucket rows whose start is
 * >= this are judged.
 */
export function windowStart(
  record: Pick<BreakerRecord, "windowFrom">,
  now: number,
  windowMs: number,
): number {
  const start = now - windowMs;
  if (record.windowFrom === null) return start;
  const afterClose = Math.ceil(record.windowFrom / STATS_BUCKET_MS) * STATS_BUCKET_MS;
  return Math.max(start, afterClose);
}

/**
 * How many observations in `histogram` exceed `limitMs`: the buckets wholly
 * above it, plus the share of the bucket holding it by linear interpolation
 * (the same assumption estimatePercentile makes). Pure; 0 for an empty histogram.
 */
export function countAbove(histogram: readonly number[], limitMs: number): number {
  let n = 0;
  for (let i = 0; i < histogram.length; i++) {
    const count = histogram[i] ?? 0;
    if (count === 0) continue;
    const [lower, upper] = bucketRange(i);
    if (lower >= limitMs) n += count;
    else if (upper > limitMs) {
      n += Number.isFinite(upper) ? count * ((upper - limitMs) / (upper - lower)) : count;
    }
  }
  return n;
}

/** The breaker's baseline: the 95th percentile of the baseline window. */
export const BASELINE_QUANTILE = 0.95;

/**
 * A quantile (default the median) of a baseline window's latencies, or null
 * when the window has too few calls to say.
 */
export function baselineMedianMs(
  baseline: Pick<AdapterCounts, "calls" | "histogram" | "latency_max_ms"> | null,
  minimumCalls: number,
  quantile = 0.5,
): number | null {
  if (!baseline || baseline.calls < minimumCalls || histogramCount(baseline.histogram) === 0) {
    return null;
  }
  return estimatePercentile(baseline.histogram, quantile, baseline.latency_max_ms);
}

/** The slow-call limit: the absolute threshold, or multiplier × baseline when that is lower. */
export function slowLimitMs(policy: BreakerPolicy, baselineMs: number | null): number {
  if (baselineMs === null || !(baselineMs > 0)) return policy.slowCallMs;
  return Math.min(policy.slowCallMs, policy.latencyMultiplier * baselineMs);
}

/** What a window of calls says. */
export interface WindowVerdict {
  /** False below minimum_calls: not enough data to judge. */
  judged: boolean;
  calls: number;
  failureRate: number | null;
  slowCallRate: number | null;
  slowLimitMs: number;
  /** True when the window opens a closed breaker. */
  trip: boolean;
  /** Why it trips (or why not), for the transition log. */
  reason: string;
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

/**
 * Judges a window of calls (the sums of the adapter's stats buckets since
 * `windowStart`) against the policy, with an optional baseline window for the
 * multiplier rule. A call counts slow when over the absolute threshold (the
 * recorded `slow_calls`) or over multiplier × baseline median (estimated from
 * the histogram); the larger count is the calls over the lower limit. Pure.
 */
export function judgeWindow(
  window: Pick<AdapterCounts, "calls" | "failures" | "slow_calls" | "histogram">,
  baselineMs: number | null,
  policy: BreakerPolicy,
): WindowVerdict {
  const limit = slowLimitMs(policy, baselineMs);
  const calls = window.calls;
  if (calls < policy.minimumCalls || calls <= 0) {
    return {
      judged: false,
      calls,
      failureRate: calls > 0 ? window.failures / calls : null,
      slowCallRate: null,
      slowLimitMs: limit,
      trip: false,
      reason: `${calls} call(s) in the window, fewer than the minimum ${policy.minimumCalls}`,
    };
  }
  const failureRate = window.failures / calls;
  const relative = limit < policy.slowCallMs ? countAbove(window.histogram, limit) : 0;
  const slowCallRate = Math.min(1, Math.max(window.slow_calls, relative) / calls);
  const failing = failureRate >= policy.failureRateThreshold;
  const slow = slowCallRate >= policy.slowCallRateThreshold;
  const reason = failing
    ? `failure rate ${pct(failureRate)} >= ${pct(policy.failureRateThreshold)} over ${calls} calls`
    : slow
    ? `slow-call rate ${pct(slowCallRate)} >= ${
      pct(policy.slowCallRateThreshold)
    } over ${calls} calls (slower than ${Math.round(limit * 10) / 10} ms)`
    : `failure rate ${pct(failureRate)}, slow-call rate ${pct(slowCallRate)} over ${calls} calls`;
  return {
    judged: true,
    calls,
    failureRate,
    slowCallRate,
    slowLimitMs: limit,
    trip: failing || slow,
    reason,
  };
}

/** What happens to a breaker. */
export type BreakerInput =
  /** Periodic: judge the window (closed), end the open period, time out probes. */
  | { type: "evaluate"; now: number; verdict?: WindowVerdict }
  /** A caller wants to make one call. */
  | { type: "acquire"; now: number }
  /**
   * A call's outcome. `admitted`: the call held a probe permit (acquire
   * answered "probe"). An unadmitted outcome while half-open (an adapter that
   * is not gated, e.g. the Realtime write inside ingest's statement) takes a
   * free probe slot if there is one, else it is ignored.
   */
  | { type: "outcome"; now: number; ok: boolean; slow: boolean; admitted: boolean; detail?: string }
  /** An operator (or a test) puts the breaker in a state. */
  | { type: "force"; now: number; to: BreakerState; reason: string };

export type Permit = "allow" | "deny" | "probe";

export interface BreakerTransition {
  from: BreakerState;
  to: BreakerState;
  reason: string;
}

export interface BreakerStep {
  record: BreakerRecord;
  /** True when `record` differs from the input record (then version + 1). */
  changed: boolean;
  transition?: BreakerTransition;
  /** The answer to "acquire". */
  permit?: Permit;
}

/** The allowed transitions (besides "force"). */
export const BREAKER_EDGES: ReadonlySet<string> = new Set([
  "closed>open",
  "open>half_open",
  "half_open>open",
  "half_open>closed",
  // Disabling the breaker closes it from any state.
  "open>closed",
]);

function moveTo(
  record: BreakerRecord,
  to: BreakerState,
  now: number,
  reason: string,
  policy: BreakerPolicy,
  ramp = true,
): BreakerStep {
  const next: BreakerRecord = {
    ...record,
    state: to,
    since: now,
    openUntil: to === "open" ? now + policy.recoveryMs : null,
    // A recovery starts the restore ramp; a forced close or disabling does not.
    closedAt: to === "closed" ? (ramp ? now : null) : record.closedAt,
    windowFrom: to === "closed" ? now : record.windowFrom,
    probesAdmitted: 0,
    probeSuccesses: 0,
    probeFailures: 0,
    probeSlow: 0,
    reason,
  };
  return { record: next, changed: true, transition: { from: record.state, to, reason } };
}

function unchanged(record: BreakerRecord, permit?: Permit): BreakerStep {
  return permit ? { record, changed: false, permit } : { record, changed: false };
}

function admitProbe(record: BreakerRecord): BreakerRecord {
  return { ...record, probesAdmitted: record.probesAdmitted + 1 };
}

/**
 * The breaker's one transition function. Pure and total: any record and
 * input give a step. Guarantees (tested): only BREAKER_EDGES transitions
 * (or "force"); at most `halfOpenProbes` probes admitted per half-open
 * period; no call allowed while open before `openUntil`; a close only after
 * `halfOpenProbes` successful probes with no failure in between; `version`
 * moves exactly when the record changes.
 */
export function stepBreaker(
  record: BreakerRecord,
  input: BreakerInput,
  policy: BreakerPolicy,
): BreakerStep {
  const step = decide(record, input, policy);
  if (!step.changed) return step;
  return { ...step, record: { ...step.record, version: record.version + 1 } };
}

function decide(record: BreakerRecord, input: BreakerInput, policy: BreakerPolicy): BreakerStep {
  const now = input.now;
  if (input.type === "force") {
    if (record.state === input.to) return unchanged(record);
    return moveTo(record, input.to, now, input.reason, policy, false);
  }
  if (!policy.enabled) {
    if (record.state !== "closed") {
      return {
        ...moveTo(record, "closed", now, "circuit breaker disabled", policy, false),
        permit: "allow",
      };
    }
    return unchanged(record, input.type === "acquire" ? "allow" : undefined);
  }

  switch (record.state) {
    case "closed": {
      if (input.type === "acquire") return unchanged(record, "allow");
      if (input.type === "evaluate" && input.verdict?.trip) {
        return moveTo(record, "open", now, input.verdict.reason, policy);
      }
      return unchanged(record);
    }
    case "open": {
      const due = record.openUntil === null || now >= record.openUntil;
      if (!due) return unchanged(record, input.type === "acquire" ? "deny" : undefined);
      const half = moveTo(
        record,
        "half_open",
        now,
        `open period of ${
          Math.round(policy.recoveryMs / 100) / 10
        } s elapsed: probing with ${policy.halfOpenProbes} call(s)`,
        policy,
      );
      if (input.type === "acquire") {
        return { ...half, record: admitProbe(half.record), permit: "probe" };
      }
      // An outcome reported now may come from a call made while open: it is
      // not counted as a probe; the next ones are.
      return half;
    }
    case "half_open": {
      if (input.type === "acquire") {
        if (record.probesAdmitted < policy.halfOpenProbes) {
          return { record: admitProbe(record), changed: true, permit: "probe" };
        }
        return unchanged(record, "deny");
      }
      const reported = record.probeSuccesses + record.probeFailures;
      if (input.type === "evaluate") {
        const stale = now - record.since >= policy.probeTimeoutMs &&
          record.probesAdmitted > reported;
        if (stale) {
          // Probes that never reported (their instance died): admit new ones.
          return { record: { ...record, probesAdmitted: reported, since: now }, changed: true };
        }
        return unchanged(record);
      }
      // outcome
      let current = record;
      // A probe permit from an earlier half-open period (its instance was slow
      // to report) has no slot in this one: it is treated as unadmitted.
      const outstanding = record.probesAdmitted > reported;
      if (!input.admitted || !outstanding) {
        if (record.probesAdmitted >= policy.halfOpenProbes) return unchanged(record);
        current = admitProbe(record);
      }
      const n = policy.halfOpenProbes;
      const next: BreakerRecord = {
        ...current,
        probeSuccesses: current.probeSuccesses + (input.ok ? 1 : 0),
        probeFailures: current.probeFailures + (input.ok ? 0 : 1),
        probeSlow: current.probeSlow + (input.ok && input.slow ? 1 : 0),
      };
      const detail = input.detail ? ` (last: ${input.detail})` : "";
      if (next.probeFailures / n >= policy.failureRateThreshold) {
        return moveTo(
          current,
          "open",
          now,
          `half-open probes: ${next.probeFailures} of ${n} failed${detail}`,
          policy,
        );
      }
      if (next.probeSlow / n >= policy.slowCallRateThreshold) {
        return moveTo(
          current,
          "open",
          now,
          `half-open probes: ${next.probeSlow} of ${n} were slow${detail}`,
          policy,
        );
      }
      if (next.probeSuccesses + next.probeFailures >= n) {
        return moveTo(
          current,
          "closed",
          now,
          `${n} half-open probe(s) reported: ${next.probeFailures} failed, ${next.probeSlow} slow`,
          policy,
        );
      }
      return { record: next, changed: true };
    }
  }
}

/** True when routing should treat the adapter as unavailable now (open or probing). */
export function isUnavailable(state: BreakerState): boolean {
  return state !== "closed";
}
