/**
 * Automated rollback triggers (seed 001), pure:
 *
 * - error_rate: an adapter's failure rate above `error_rate_threshold` (5 %)
 *   for `error_rate_duration_s` (5 min). An adapter whose breaker is open
 *   counts as failing (its calls are being refused), so a breaker that keeps
 *   re-opening for 5 minutes triggers it too; a half-open one is unknown;
 * - latency: the adapter's median latency above `latency_multiplier` (2×) its
 *   baseline median for `latency_duration_s` (10 min);
 * - connection_failures: `connection_failures` (3) consecutive connection
 *   failures within `connection_failures_window_s` (60 s).
 *
 * "For N minutes" is a streak: each watch run (every few seconds) judges a
 * recent window as breach / clear / unknown (too little data), a breach
 * starts or continues the streak, a clear ends it, unknown leaves it, and the
 * trigger fires when the streak is N minutes old. A streak with no breach for
 * longer than `MAX_WATCH_GAP_MS` (unknowns only, or no runs at all) restarts:
 * nobody saw it failing in the meantime.
 *
 * The action (`planRollback`): when the failing adapter is not the primary,
 * every category that dual-writes to it falls back to the primary (the
 * adapter is removed from its adapter list); when it is the primary, the
 * global override is set to the other adapter if `rollback.on_primary_failure`
 * says `global_override`. The default is `none`: a failing primary is left to
 * its circuit breaker, which defers its deliveries (they arrive after the
 * recovery), whereas an override would stop routing events to it at all. Changes go through the flags tables with
 * actor `rollback` and the trigger as the reason, so the audit log shows why.
 * Nothing is rolled forward automatically: an operator restores the flags.
 */
import type { CategoryFlags, GlobalOverride, RollbackSettings } from "../config/settings.ts";
import type { Adapter, Category } from "../events/schema.ts";
import type { FlagChange } from "../flags/changes.ts";
import type { BreakerState } from "./breaker.ts";

export type RollbackTrigger = "error_rate" | "latency" | "connection_failures";

export type Verdict = "breach" | "clear" | "unknown";

/** A judged window: the verdict and a sentence for the report and the audit reason. */
export interface TriggerJudgement {
  verdict: Verdict;
  detail: string;
}

/** A trigger's running streak (a row of cutover.rollback_watch). Epoch ms. */
export interface Streak {
  breachedSince: number | null;
  /** The latest breach of the streak. */
  lastBreachAt: number | null;
  lastEvaluatedAt: number | null;
}

/** A streak with no breach for longer than this restarts. */
export const MAX_WATCH_GAP_MS = 120_000;

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

/** Judges the error rate of a recent window (and the breaker's state). Pure. */
export function judgeErrorRate(
  window: { calls: number; failures: number },
  breaker: BreakerState,
  settings: Pick<RollbackSettings, "error_rate_threshold">,
  minimumCalls: number,
): TriggerJudgement {
  if (breaker === "open") return { verdict: "breach", detail: "the circuit breaker is open" };
  if (breaker === "half_open") {
    return { verdict: "unknown", detail: "the circuit breaker is half-open (probing)" };
  }
  if (window.calls < minimumCalls || window.calls <= 0) {
    return { verdict: "unknown", detail: `${window.calls} call(s), fewer than ${minimumCalls}` };
  }
  const rate = window.failures / window.calls;
  const over = rate > settings.error_rate_threshold;
  return {
    verdict: over ? "breach" : "clear",
    detail: `error rate ${pct(rate)} ${over ? ">" : "<="} ${
      pct(settings.error_rate_threshold)
    } over ${window.calls} calls`,
  };
}

/** Judges a window's median latency against the baseline median. Pure. */
export function judgeLatency(
  medianMs: number | null,
  baselineMs: number | null,
  settings: Pick<RollbackSettings, "latency_multiplier">,
): TriggerJudgement {
  if (medianMs === null || baselineMs === null || !(baselineMs > 0)) {
    return { verdict: "unknown", detail: "no latency or no baseline yet" };
  }
  const limit = settings.latency_multiplier * baselineMs;
  const over = medianMs > limit;
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    verdict: over ? "breach" : "clear",
    detail: `median latency ${r(medianMs)} ms ${
      over ? ">" : "<="
    } ${settings.latency_multiplier}× baseline ${r(baselineMs)} ms`,
  };
}

/**
 * Advances a streak by one judgement at `now`; `fire` when the streak has
 * lasted `durationMs`. After firing the streak restarts. Pure.
 */
export function stepStreak(
  streak: Streak,
  verdict: Verdict,
  now: number,
  durationMs: number,
  maxGapMs = MAX_WATCH_GAP_MS,
): { streak: Streak; fire: boolean } {
  let since = streak.breachedSince;
  let last = streak.lastBreachAt;
  if (last === null || now - last > maxGapMs) {
    since = null;
    last = null;
  }
  if (verdict === "clear") {
    since = null;
    last = null;
  } else if (verdict === "breach") {
    since ??= now;
    last = now;
  }
  const fire = verdict === "breach" && since !== null && now - since >= durationMs;
  return {
    streak: {
      breachedSince: fire ? null : since,
      lastBreachAt: fire ? null : last,
      lastEvaluatedAt: now,
    },
    fire,
  };
}

/** Consecutive connection failures as counted in cutover.breaker_state. Epoch ms. */
export interface ConnectionFailures {
  count: number;
  firstAt: number | null;
  lastAt: number | null;
}

/** True when `count` consecutive failures happened within the window, the last one recently. Pure. */
export function connectionFailuresFire(
  failures: ConnectionFailures,
  now: number,
  settings: Pick<RollbackSettings, "connection_failures" | "connection_failures_window_s">,
): boolean {
  if (failures.count < settings.connection_failures) return false;
  if (failures.firstAt === null || failures.lastAt === null) return false;
  const windowMs = settings.connection_failures_window_s * 1000;
  return failures.lastAt - failures.firstAt <= windowMs && now - failures.lastAt <= windowMs;
}

/** What a rollback changes. */
export interface RollbackPlan {
  action: "fallback_to_primary" | "global_override" | "none";
  changes: FlagChange[];
  categories: Category[];
  summary: string;
}

/**
 * The rollback for a failing `adapter` given the current flags. `otherHealthy`:
 * the other adapter's breaker is closed (overriding to a failing adapter
 * helps nobody). Pure.
 */
export function planRollback(
  adapter: Adapter,
  config: {
    categories: Record<Category, CategoryFlags>;
    primary: Adapter;
    globalOverride: GlobalOverride;
    onPrimaryFailure: "global_override" | "none";
  },
  otherHealthy: boolean,
): RollbackPlan {
  const none = (summary: string): RollbackPlan => ({
    action: "none",
    changes: [],
    categories: [],
    summary,
  });
  if (config.globalOverride !== null) {
    return none(`the global override is already ${config.globalOverride}`);
  }
  if (adapter !== config.primary) {
    const affected = (Object.keys(config.categories) as Category[]).filter((c) =>
      config.categories[c].adapters.includes(adapter)
    );
    if (affected.length === 0) return none(`no category writes to ${adapter}`);
    return {
      action: "fallback_to_primary",
      categories: affected,
      changes: affected.map((category) => ({
        type: "category" as const,
        category,
        changes: { adapters: config.categories[category].adapters.filter((a) => a !== adapter) },
      })),
      summary: `${affected.join(", ")} fall back to the primary adapter ${config.primary}`,
    };
  }
  if (config.onPrimaryFailure === "none") {
    return none(`${adapter} is the primary adapter and rollback.on_primary_failure is none`);
  }
  const other: Adapter = adapter === "websocket" ? "realtime" : "websocket";
  if (!otherHealthy) return none(`${other}'s circuit breaker is not closed either`);
  const override = `${other}_only` as const;
  return {
    action: "global_override",
    categories: [],
    changes: [{ type: "setting", key: "global_override", value: override }],
    summary: `the primary adapter ${adapter} is failing: global override set to ${override}`,
  };
}
