/**
 * The stats recorder: what one function instance observes (adapter calls,
 * ingest outcomes) is aggregated in memory per 10-second bucket and ADDED to
 * the stats tables every few seconds and on shutdown (`beforeunload`), in one
 * statement per flush (shared/metrics/store.ts), so any number of instances
 * contribute to the same rows.
 *
 * Guarantees:
 * - Recording never blocks, never throws and never fails the caller.
 * - Memory is bounded (StatsBuffer): at most `maxBuckets` buckets.
 * - A failed flush loses nothing: the batch goes back into the buffer and is
 *   retried at the next flush. While the database stays down, flushes back
 *   off exponentially with jitter (cockatiel's ExponentialBackoff, default
 *   1 s → 60 s); when the buffer fills, the oldest buckets are dropped and
 *   counted, and the count is written with the next successful flush
 *   (`cutover.stats_recorders`). Failed attempts are counted there too.
 * - At-least-once: when a flush commits but its answer is lost (the
 *   connection drops at commit), the retry adds the same counts again. Stats
 *   may over-count in that rare case; they never silently under-count.
 *
 * `recordAdapterCall` / `recordIngest` at module level write to the recorder
 * this instance installed with `installStatsRecorder` (a no-op without one),
 * so adapters (e.g. the relay) can report without being handed a recorder.
 */
import { ExponentialBackoff, type IBackoff, type IBackoffFactory } from "cockatiel";
import { builtInDefaults } from "../config/settings.ts";
import type { Sql } from "../db/client.ts";
import { type Adapter, ADAPTERS, CATEGORIES } from "../events/schema.ts";
import { type StatsBatch, StatsBuffer } from "./buffer.ts";
import { bucketStartOf, type IngestCounts, type StatsCategory } from "./stats.ts";
import { writeStatsBatch } from "./store.ts";

/** An operation name as the tables accept it (`adapter_stats.operation`). */
export const OPERATION_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;

export interface StatsRecorderOptions {
  /** Where flushes go (unless `write` is given). */
  sql?: Sql;
  /** This recorder's row in cutover.stats_recorders: the function's name, e.g. `ingest`. */
  name: string;
  /**
   * The slow-call thresholds (`adapter_health.<adapter>.latency_threshold_ms`)
   * are read from here after each successful flush; until then, built-in defaults.
   */
  config?: {
    get(): Promise<
      { settings: { adapter_health: Record<Adapter, { latency_threshold_ms: number }> } }
    >;
  };
  /** Flush period (default 5,000 ms). */
  flushIntervalMs?: number;
  /** Buckets kept while flushes fail (default 360: one hour of 10-second buckets). */
  maxBuckets?: number;
  /** Adapter/operation and category keys per bucket (default 64). */
  maxKeysPerBucket?: number;
  /** Delays between failed flushes (default: exponential with decorrelated jitter, 1 s → 60 s). */
  backoff?: IBackoffFactory<unknown>;
  /** Longest wait for the final flush on close (default 5,000 ms). */
  closeTimeoutMs?: number;
  /** Start the flush timer (default true). */
  autoFlush?: boolean;
  /** Replaces the database write (tests; other sinks). */
  write?: (batch: StatsBatch, flushFailures: number) => Promise<void>;
  now?: () => number;
  log?: (line: string) => void;
}

export type FlushResult =
  | { ok: true; written: { adapters: number; ingest: number } }
  | { ok: true; skipped: "empty" }
  | { ok: false; skipped: "backoff"; retryInMs: number }
  | { ok: false; error: string; retryInMs: number };

export interface RecorderStatus {
  pendingBuckets: number;
  consecutiveFailures: number;
  /** Epoch ms before which the timer will not try again (0: no backoff). */
  nextAttemptAt: number;
  lastError: string | null;
}

export interface StatsRecorder {
  /** Records one adapter call: outcome, latency (ms) and the events it carried (default 1). */
  recordAdapterCall(
    adapter: Adapter,
    operation: string,
    ok: boolean,
    latencyMs: number,
    events?: number,
  ): void;
  /** Records ingest outcomes per category. */
  recordIngest(counts: Partial<Record<StatsCategory, IngestCounts>>): void;
  /**
   * Writes what is pending, unless the previous failure's backoff has not
   * elapsed (`force` ignores it). Concurrent calls share one flush. Never rejects.
   */
  flush(force?: boolean): Promise<FlushResult>;
  /**
   * Stops the timer and makes a final, forced flush (bounded by
   * closeTimeoutMs). What is recorded afterwards is flushed at once (handed
   * to EdgeRuntime.waitUntil where it exists). Never rejects.
   */
  close(): Promise<FlushResult>;
  status(): RecorderStatus;
}

const STATS_CATEGORIES = new Set<string>([...CATEGORIES, "unknown"]);

/** Creates a recorder; with `autoFlush` (default) its timer starts now. */
export function createStatsRecorder(options: StatsRecorderOptions): StatsRecorder {
  const now = options.now ?? Date.now;
  const log = options.log ?? ((line: string) => console.error(line));
  const buffer = new StatsBuffer({
    maxBuckets: options.maxBuckets ?? 360,
    maxKeysPerBucket: options.maxKeysPerBucket ?? 64,
  });
  const backoffFactory = options.backoff ??
    new ExponentialBackoff({ initialDelay: 1_000, maxDelay: 60_000 });
  const write = options.write ?? ((batch: StatsBatch, failures: number) => {
    if (!options.sql) throw new Error("createStatsRecorder: sql or write is required");
    return writeStatsBatch(options.sql, options.name, batch, failures);
  });
  const slowMs: Record<Adapter, number> = {
    websocket: builtInDefaults().settings.adapter_health.websocket.latency_threshold_ms,
    realtime: builtInDefaults().settings.adapter_health.realtime.latency_threshold_ms,
  };
  let backoff: IBackoff<unknown> | undefined;
  let nextAttemptAt = 0;
  let consecutiveFailures = 0;
  let failuresToReport = 0;
  let lastError: string | null = null;
  let inFlight: Promise<FlushResult> | undefined;
  let closed = false;
  let lateFlushScheduled = false;
  const refused = new Set<string>();

  const timer = options.autoFlush === false ? undefined : setInterval(() => {
    void recorder.flush();
  }, options.flushIntervalMs ?? 5_000);
  // In Node, do not keep the process alive for the timer (Deno ignores this).
  (timer as { unref?: () => void } | undefined)?.unref?.();

  function refuse(what: string): void {
    if (refused.has(what) || refused.size > 100) return;
    refused.add(what);
    log(`stats: not recorded (invalid ${what}); fix the caller`);
  }

  /**
   * After close(), work the platform still lets finish (EdgeRuntime.waitUntil,
   * e.g. the relay's POST) may record more: flush that too, after any flush
   * in flight, and keep the instance alive for it.
   */
  function flushLate(): void {
    if (!closed || lateFlushScheduled) return;
    lateFlushScheduled = true;
    const late = (async () => {
      await Promise.resolve();
      if (inFlight) await inFlight;
      lateFlushScheduled = false;
      return await recorder.flush(true);
    })();
    (globalThis as { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } }).EdgeRuntime
      ?.waitUntil(late);
  }

  async function refreshThresholds(): Promise<void> {
    if (!options.config) return;
    try {
      const { settings } = await options.config.get();
      for (const adapter of ADAPTERS) {
        slowMs[adapter] = settings.adapter_health[adapter].latency_threshold_ms;
      }
    } catch {
      // Keep the thresholds we have; the next flush tries again.
    }
  }

  async function attempt(): Promise<FlushResult> {
    const batch = buffer.take();
    try {
      await write(batch, failuresToReport);
    } catch (error) {
      buffer.restore(batch);
      consecutiveFailures++;
      failuresToReport++;
      backoff = backoff ? backoff.next(undefined) : backoffFactory.next(undefined);
      nextAttemptAt = now() + backoff.duration;
      const message = (error as Error).message ?? String(error);
      if (consecutiveFailures === 1 || consecutiveFailures % 20 === 0) {
        log(
          `stats: flush failed ${consecutiveFailures} time(s), ${buffer.size} bucket(s) kept for retry: ${message}`,
        );
      }
      lastError = message;
      return { ok: false, error: message, retryInMs: backoff.duration };
    }
    if (consecutiveFailures > 0) {
      log(`stats: flushed again after ${consecutiveFailures} failed attempt(s)`);
    }
    consecutiveFailures = 0;
    failuresToReport = 0;
    backoff = undefined;
    nextAttemptAt = 0;
    lastError = null;
    await refreshThresholds();
    return { ok: true, written: { adapters: batch.adapters.length, ingest: batch.ingest.length } };
  }

  const recorder: StatsRecorder = {
    recordAdapterCall(adapter, operation, ok, latencyMs, events = 1) {
      try {
        if (!ADAPTERS.includes(adapter)) return refuse(`adapter "${adapter}"`);
        if (!OPERATION_PATTERN.test(operation)) return refuse(`operation "${operation}"`);
        buffer.addCall(bucketStartOf(now()), {
          adapter,
          operation,
          ok,
          latencyMs,
          events,
          slow: latencyMs > slowMs[adapter],
        });
        flushLate();
      } catch (error) {
        log(`stats: recording failed: ${(error as Error).message}`);
      }
    },

    recordIngest(counts) {
      try {
        const bucket = bucketStartOf(now());
        for (const [category, c] of Object.entries(counts)) {
          if (!c || c.received + c.stored + c.duplicates + c.rejected === 0) continue;
          if (!STATS_CATEGORIES.has(category)) {
            refuse(`category "${category}"`);
            continue;
          }
          buffer.addIngest(bucket, category as StatsCategory, c);
        }
        flushLate();
      } catch (error) {
        log(`stats: recording failed: ${(error as Error).message}`);
      }
    },

    flush(force = false) {
      if (inFlight) return inFlight;
      if (buffer.isEmpty) return Promise.resolve({ ok: true, skipped: "empty" });
      if (!force && now() < nextAttemptAt) {
        return Promise.resolve({ ok: false, skipped: "backoff", retryInMs: nextAttemptAt - now() });
      }
      inFlight = attempt().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },

    async close() {
      if (timer !== undefined) clearInterval(timer);
      if (closed) return { ok: true, skipped: "empty" };
      closed = true;
      const timeoutMs = options.closeTimeoutMs ?? 5_000;
      let timeout: ReturnType<typeof setTimeout> | undefined;
      const gaveUp = new Promise<FlushResult>((resolve) => {
        timeout = setTimeout(
          () => resolve({ ok: false, error: "final flush timed out", retryInMs: 0 }),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([
          (async () => {
            if (inFlight) await inFlight;
            return await recorder.flush(true);
          })(),
          gaveUp,
        ]);
      } finally {
        clearTimeout(timeout);
      }
    },

    status() {
      return { pendingBuckets: buffer.size, consecutiveFailures, nextAttemptAt, lastError };
    },
  };
  return recorder;
}

let installed: StatsRecorder | undefined;

/**
 * Makes `recorder` this instance's recorder for the module-level
 * `recordAdapterCall` / `recordIngest`, and flushes it on `beforeunload`
 * (the platform's shutdown signal; the flush is handed to
 * `EdgeRuntime.waitUntil` so the instance stays up for it). Returns it.
 */
export function installStatsRecorder(recorder: StatsRecorder): StatsRecorder {
  installed = recorder;
  const target = globalThis as {
    addEventListener?: (type: string, listener: () => void) => void;
    EdgeRuntime?: { waitUntil(promise: Promise<unknown>): void };
  };
  target.addEventListener?.("beforeunload", () => {
    target.EdgeRuntime?.waitUntil(recorder.close());
  });
  return recorder;
}

/**
 * Records one adapter call with the installed recorder (no-op without one).
 * Never throws, never blocks. `operation` must match OPERATION_PATTERN.
 *
 * @example
 * const started = performance.now();
 * const error = await post(keys);
 * recordAdapterCall("websocket", "relay", error === null, performance.now() - started, keys.length);
 */
export function recordAdapterCall(
  adapter: Adapter,
  operation: string,
  ok: boolean,
  latencyMs: number,
  events = 1,
): void {
  installed?.recordAdapterCall(adapter, operation, ok, latencyMs, events);
}

/** Records ingest outcomes per category with the installed recorder (no-op without one). */
export function recordIngest(counts: Partial<Record<StatsCategory, IngestCounts>>): void {
  installed?.recordIngest(counts);
}
