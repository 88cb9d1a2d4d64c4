/**
 * The breaker board: one function instance's view of the shared breakers,
 * cached for `refreshMs` (default 1 s), and its way of changing them.
 *
 * - `snapshot()` — every breaker's state, the adapters routing must treat as
 *   unavailable (`openBreakers`) and the restore ramp's shares, from one tiny
 *   read per refresh (in the background while the view is younger than two
 *   periods, so busy instances never wait and every instance sees a change
 *   within two periods). On a refresh it also evaluates: a closed breaker's
 *   window is judged from the stats buckets (with the baseline median,
 *   re-read every minute), an open one whose open period is over moves to
 *   half-open, silent probes time out — each change made race-free by
 *   breaker-store.ts. A failed read keeps the last view (and before the
 *   first one, every breaker reads closed): routing never waits on it.
 * - `permit(adapter)` — "allow" while closed (no database round trip),
 *   "deny" while open, "probe" for one of the N half-open probes (one
 *   conditional UPDATE).
 * - `report(adapter, outcome)` — a probe's result (closes or re-opens);
 *   `noteConnection` — deliveries that finally failed to reach the adapter,
 *   for the rollback trigger.
 *
 * `withBreakerRouting(config, board)` hands ingest a ConfigSource whose
 * routing carries the board's `openBreakers` and `restoreShare`.
 */
import type { ConfigSource, LoadedConfig } from "../config/source.ts";
import type { Settings } from "../config/settings.ts";
import type { Sql } from "../db/client.ts";
import { type Adapter, ADAPTERS } from "../events/schema.ts";
import { estimatePercentile } from "../metrics/histogram.ts";
import type { StatsRecorder } from "../metrics/recorder.ts";
import type { AdapterCounts } from "../metrics/stats.ts";
import {
  BASELINE_QUANTILE,
  BASELINE_WINDOW_MS,
  baselineMedianMs,
  breakerPolicy,
  type BreakerState,
  isUnavailable,
  judgeWindow,
  type Permit,
  slowLimitMs,
  windowStart,
  type WindowVerdict,
} from "./breaker.ts";
import {
  applyBreakerInput,
  noteConnectionOutcome,
  readBreakers,
  readBreakerWindows,
  type StoredBreaker,
} from "./breaker-store.ts";
import { restoreShare } from "./restore.ts";

/** One breaker as an instance sees it. Times are epoch ms on the database's clock. */
export interface BreakerView {
  state: BreakerState;
  since: number;
  openUntil: number | null;
  closedAt: number | null;
  reason: string | null;
  /** Share of each split the adapter gets while ramping back (1 when not ramping). */
  restoreShare: number;
  connectionFailures: number;
}

export interface BoardSnapshot {
  /** Database time when read. */
  at: number;
  breakers: Record<Adapter, BreakerView>;
  /** Adapters routing treats as unavailable (open or half-open). */
  openBreakers: ReadonlySet<Adapter>;
  /** Adapters ramping back, with their share. */
  restoreShare: Partial<Record<Adapter, number>>;
  /** False until the first successful read (everything then reads closed). */
  loaded: boolean;
}

/** What an evaluation saw and did, per adapter (the watch's report). */
export interface AdapterEvaluation {
  state: BreakerState;
  verdict?: WindowVerdict;
  baselineMedianMs: number | null;
  transition?: { from: BreakerState; to: BreakerState; reason: string };
  window: AdapterCounts;
}

export interface CallOutcome {
  ok: boolean;
  latencyMs: number;
  /** The call held a probe permit. */
  admitted: boolean;
  detail?: string;
}

export interface BreakerBoard {
  snapshot(): Promise<BoardSnapshot>;
  /** The last snapshot, without waiting (closed everywhere before the first read). */
  current(): BoardSnapshot;
  permit(adapter: Adapter): Promise<Permit>;
  /** Records a call's outcome where it matters to the shared state (probes). Never rejects. */
  report(adapter: Adapter, outcome: CallOutcome): Promise<void>;
  /**
   * Counts a delivery that finally failed because the adapter could not be
   * reached (after its retries), or one that got through, for the
   * consecutive-connection-failures rollback trigger. Never rejects.
   */
  noteConnection(adapter: Adapter, failed: boolean): Promise<void>;
  /** Judges every breaker now (windows, open periods, probe timeouts); returns what it saw. */
  evaluate(): Promise<Record<Adapter, AdapterEvaluation>>;
  /** Forces the next snapshot() to read. */
  invalidate(): void;
}

export interface BreakerBoardOptions {
  sql: Sql;
  config: ConfigSource;
  /** Logged with each transition this instance makes. */
  instance?: string;
  refreshMs?: number;
  /** Evaluate on refresh (ingest, dlq-retry) — off for read-only views. Default true. */
  evaluateOnRefresh?: boolean;
  log?: (line: string) => void;
  now?: () => number;
}

const CLOSED_VIEW: BreakerView = {
  state: "closed",
  since: 0,
  openUntil: null,
  closedAt: null,
  reason: null,
  restoreShare: 1,
  connectionFailures: 0,
};

const BASELINE_REFRESH_MS = 60_000;

/** Creates a board; nothing is read until the first call. */
export function createBreakerBoard(options: BreakerBoardOptions): BreakerBoard {
  const { sql } = options;
  const refreshMs = options.refreshMs ?? 1_000;
  const localNow = options.now ?? Date.now;
  const log = options.log ?? ((line: string) => console.error(line));
  const evaluateOnRefresh = options.evaluateOnRefresh ?? true;
  let snap: BoardSnapshot = build(
    { websocket: CLOSED_VIEW, realtime: CLOSED_VIEW },
    0,
    false,
  );
  let readAt = -Infinity;
  let inFlight: Promise<BoardSnapshot> | undefined;
  const baselines: Partial<Record<Adapter, { median: number | null; at: number }>> = {};

  function build(
    breakers: Record<Adapter, BreakerView>,
    at: number,
    loaded: boolean,
  ): BoardSnapshot {
    const open = new Set<Adapter>();
    const shares: Partial<Record<Adapter, number>> = {};
    for (const adapter of ADAPTERS) {
      const b = breakers[adapter];
      if (isUnavailable(b.state)) open.add(adapter);
      else if (b.restoreShare < 1) shares[adapter] = b.restoreShare;
    }
    return { at, breakers, openBreakers: open, restoreShare: shares, loaded };
  }

  function view(b: StoredBreaker, now: number, settings: Settings): BreakerView {
    const enabled = settings.circuit_breaker.enabled;
    const state = enabled ? b.state : "closed";
    return {
      state,
      since: b.since,
      openUntil: b.openUntil,
      closedAt: b.closedAt,
      reason: b.reason,
      restoreShare: state === "closed" && enabled
        ? restoreShare(b.closedAt, now, settings.dual_write_restore)
        : 1,
      connectionFailures: b.connectionFailures.count,
    };
  }

  /** Database time now, from the last read plus local elapsed time. */
  function dbNow(): number {
    return snap.loaded ? snap.at + (localNow() - readAt) : localNow();
  }

  async function baselineFor(
    adapter: Adapter,
    windowFrom: number,
    settings: Settings,
  ): Promise<number | null> {
    const cached = baselines[adapter];
    if (cached && localNow() - cached.at < BASELINE_REFRESH_MS) return cached.median;
    const counts = await readBreakerWindows(sql, {
      [adapter]: {
        from: windowFrom - BASELINE_WINDOW_MS,
        to: windowFrom,
        maxFailureRate: settings.adapter_health[adapter].error_threshold,
      },
    });
    const median = baselineMedianMs(
      counts[adapter],
      settings.circuit_breaker.minimum_calls,
      BASELINE_QUANTILE,
    );
    baselines[adapter] = { median, at: localNow() };
    return median;
  }

  async function evaluateAll(
    config: LoadedConfig,
  ): Promise<Record<Adapter, AdapterEvaluation>> {
    const settings = config.settings;
    const { now, breakers } = await readBreakers(sql);
    const ranges: Partial<Record<Adapter, { from: number }>> = {};
    for (const adapter of ADAPTERS) {
      const policy = breakerPolicy(adapter, settings);
      ranges[adapter] = { from: windowStart(breakers[adapter], now, policy.windowMs) };
    }
    const windows = await readBreakerWindows(sql, ranges);
    const out = {} as Record<Adapter, AdapterEvaluation>;
    for (const adapter of ADAPTERS) {
      const policy = breakerPolicy(adapter, settings);
      const before = breakers[adapter];
      const baseline = await baselineFor(adapter, now - policy.windowMs, settings);
      const verdict = before.state === "closed"
        ? judgeWindow(windows[adapter], baseline, policy)
        : undefined;
      const needs = !policy.enabled
        ? before.state !== "closed"
        : before.state === "closed"
        ? verdict?.trip === true
        : before.state === "open"
        ? before.openUntil === null || now >= before.openUntil
        : now - before.since >= policy.probeTimeoutMs;
      const evaluation: AdapterEvaluation = {
        state: before.state,
        baselineMedianMs: baseline,
        window: windows[adapter],
        ...(verdict ? { verdict } : {}),
      };
      if (needs) {
        const applied = await applyBreakerInput(
          sql,
          adapter,
          (fresh, t) =>
            fresh.state === "closed"
              ? (verdict ? { type: "evaluate", now: t, verdict } : null)
              : { type: "evaluate", now: t },
          policy,
          {
            instance: options.instance,
            details: verdict
              ? {
                calls: verdict.calls,
                failure_rate: verdict.failureRate,
                slow_call_rate: verdict.slowCallRate,
                slow_limit_ms: verdict.slowLimitMs,
                baseline_median_ms: baseline,
              }
              : {},
          },
        );
        if (applied?.step.transition) {
          evaluation.transition = applied.step.transition;
          evaluation.state = applied.step.record.state;
          log(
            `breaker ${adapter}: ${applied.step.transition.from} → ${applied.step.transition.to} (${applied.step.transition.reason})`,
          );
        }
      }
      out[adapter] = evaluation;
    }
    return out;
  }

  async function refresh(): Promise<BoardSnapshot> {
    const config = await options.config.get();
    if (evaluateOnRefresh && config.settings.circuit_breaker.enabled) {
      try {
        await evaluateAll(config);
      } catch (error) {
        log(`breakers: evaluation failed: ${(error as Error).message}`);
      }
    }
    const { now, breakers } = await readBreakers(sql);
    const views = {} as Record<Adapter, BreakerView>;
    for (const adapter of ADAPTERS) views[adapter] = view(breakers[adapter], now, config.settings);
    readAt = localNow();
    snap = build(views, now, true);
    return snap;
  }

  const board: BreakerBoard = {
    snapshot() {
      if (localNow() - readAt < refreshMs) return Promise.resolve(snap);
      inFlight ??= refresh().catch((error) => {
        if (snap.loaded) {
          log(`breakers: refresh failed, keeping the last view: ${(error as Error).message}`);
        }
        // Retry no sooner than the next period, so a database outage costs one failed read per period.
        readAt = localNow();
        return snap;
      }).finally(() => {
        inFlight = undefined;
      });
      // Stale-while-revalidate: a caller waits only when the view is older
      // than two periods (an idle instance), so a change is seen within 2 s.
      return snap.loaded && localNow() - readAt < 2 * refreshMs ? Promise.resolve(snap) : inFlight;
    },

    current: () => snap,

    async permit(adapter) {
      const s = await board.snapshot();
      const b = s.breakers[adapter];
      if (b.state === "closed") return "allow";
      if (b.state === "open" && b.openUntil !== null && dbNow() < b.openUntil) return "deny";
      try {
        const config = await options.config.get();
        const applied = await applyBreakerInput(
          sql,
          adapter,
          (_fresh, t) => ({ type: "acquire", now: t }),
          breakerPolicy(adapter, config.settings),
          { instance: options.instance },
        );
        if (applied?.step.transition) board.invalidate();
        return applied?.step.permit ?? "deny";
      } catch (error) {
        log(`breakers: permit for ${adapter} failed (denied): ${(error as Error).message}`);
        return "deny";
      }
    },

    async report(adapter, outcome) {
      try {
        const b = snap.breakers[adapter];
        if (!outcome.admitted && b.state !== "half_open") return;
        const settings = (await options.config.get()).settings;
        const policy = breakerPolicy(adapter, settings);
        const limit = slowLimitMs(policy, baselines[adapter]?.median ?? null);
        const applied = await applyBreakerInput(
          sql,
          adapter,
          (_fresh, t) => ({
            type: "outcome",
            now: t,
            ok: outcome.ok,
            slow: outcome.ok && outcome.latencyMs > limit,
            admitted: outcome.admitted,
            ...(outcome.detail ? { detail: outcome.detail } : {}),
          }),
          policy,
          {
            instance: options.instance,
            details: { latency_ms: Math.round(outcome.latencyMs * 10) / 10, slow_limit_ms: limit },
          },
        );
        if (applied?.step.transition) {
          log(
            `breaker ${adapter}: ${applied.step.transition.from} → ${applied.step.transition.to} (${applied.step.transition.reason})`,
          );
          board.invalidate();
        }
      } catch (error) {
        log(`breakers: recording an outcome for ${adapter} failed: ${(error as Error).message}`);
      }
    },

    async noteConnection(adapter, failed) {
      try {
        if (!failed && snap.breakers[adapter].connectionFailures === 0) return;
        const settings = (await options.config.get()).settings;
        await noteConnectionOutcome(
          sql,
          adapter,
          failed,
          settings.rollback.connection_failures_window_s,
        );
        if (failed) board.invalidate();
      } catch (error) {
        log(`breakers: counting a connection outcome failed: ${(error as Error).message}`);
      }
    },

    async evaluate() {
      const config = await options.config.get();
      const result = await evaluateAll(config);
      board.invalidate();
      return result;
    },

    invalidate() {
      readAt = -Infinity;
    },
  };
  return board;
}

/**
 * A ConfigSource whose routing carries the board's open breakers and
 * restore shares (read from the board's cache; refreshed in the background
 * at most every refresh period). Everything else is `config`'s.
 */
export function withBreakerRouting(config: ConfigSource, board: BreakerBoard): ConfigSource {
  return {
    async get() {
      const [loaded, snap] = await Promise.all([config.get(), board.snapshot()]);
      if (snap.openBreakers.size === 0 && Object.keys(snap.restoreShare).length === 0) {
        return loaded;
      }
      return {
        ...loaded,
        routing: {
          ...loaded.routing,
          openBreakers: snap.openBreakers,
          restoreShare: snap.restoreShare,
        },
      };
    },
    invalidate: () => config.invalidate(),
  };
}

/** The median latency of a window, or null without calls. */
export function windowMedianMs(window: AdapterCounts): number | null {
  if (window.calls <= 0) return null;
  return estimatePercentile(window.histogram, 0.5, window.latency_max_ms);
}

/** The recorder methods ingest reports its calls through. */
export type CallRecorder = Pick<StatsRecorder, "recordAdapterCall" | "recordIngest">;

/**
 * Passes every call to `recorder` and also tells the board about the calls
 * no permit gates — the Realtime write inside ingest's statement — so that a
 * half-open Realtime breaker is probed by them. Never throws, never waits.
 */
export function observeAdapterCalls(recorder: CallRecorder, board: BreakerBoard): CallRecorder {
  return {
    recordAdapterCall(adapter, operation, ok, latencyMs, events) {
      recorder.recordAdapterCall(adapter, operation, ok, latencyMs, events);
      if (adapter === "realtime" && board.current().breakers.realtime.state !== "closed") {
        void board.report(adapter, { ok, latencyMs, admitted: false });
      }
    },
    recordIngest: (counts) => recorder.recordIngest(counts),
  };
}
