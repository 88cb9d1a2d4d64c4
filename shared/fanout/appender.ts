/**
 * How a ws-fanout instance turns outbox rows into ledger rows:
 *
 * - `append(keys)` serves relay requests with group commit: requests that
 *   arrive while a transaction is running are appended together in the next
 *   one, so the serialized append section (see the migration) is entered once
 *   per burst rather than once per request, and one append orders all of them
 *   by (source, sequence_id).
 * - `drain()` claims whatever is still pending — relays that failed while
 *   this function was down, rows whose relay was lost — in pages, on start
 *   and every `drainMs`. After an outage the outbox empties with no other
 *   component's help. Every instance drains; the append re-checks each
 *   row under the append lock, so two drains never append a row twice.
 * - Once an hour it prunes the ledger to the events' retention.
 */
import type { Sql } from "../db/client.ts";
import { appendOutboxRows, type AppendResult, type OutboxKey, pruneLedger } from "./ledger.ts";

export interface OutboxAppenderOptions {
  sql: Sql;
  instance: string;
  drainMs: number;
  /** Pending rows taken per drain round. */
  claimLimit?: number;
  /** Most keys in one group-commit transaction. */
  maxKeysPerAppend?: number;
  /** Most relay requests waiting for a transaction; more are refused (RelayQueueFull). */
  maxQueuedRelays?: number;
  pruneEveryMs?: number;
  /** Called after a transaction appended rows (e.g. poke the local tail). */
  onAppended?: () => void;
  log: (line: string) => void;
}

/** What one relay request's keys came to. */
export interface RelayAppendSummary {
  appended: number;
  /** Delivered before, being appended by another transaction, or unknown to the outbox. */
  skipped: number;
  missing: number;
}

export interface OutboxAppender {
  /**
   * Appends the given outbox rows (group-committed); rejects when the
   * transaction failed, or at once with RelayQueueFull when too many relays
   * already wait (the rows stay pending; memory stays bounded).
   */
  append(keys: OutboxKey[]): Promise<RelayAppendSummary>;
  /** Appends every pending row; resolves with how many were appended. */
  drain(): Promise<number>;
  /** Drains now and then every `drainMs`. */
  start(): void;
  stop(): void;
}

/** Refusal of a relay because the instance's append queue is full. */
export class RelayQueueFull extends Error {
  override name = "RelayQueueFull";
}

interface Waiter {
  keys: OutboxKey[];
  resolve: (summary: RelayAppendSummary) => void;
  reject: (error: unknown) => void;
}

const keyOf = (k: OutboxKey) => `${k.id}|${new Date(k.event_time).getTime()}`;

/** Creates the appender; the drain timer runs only after `start`. */
export function createOutboxAppender(options: OutboxAppenderOptions): OutboxAppender {
  const claimLimit = options.claimLimit ?? 500;
  const maxKeys = options.maxKeysPerAppend ?? 2_000;
  const pruneEveryMs = options.pruneEveryMs ?? 3_600_000;
  const maxQueued = options.maxQueuedRelays ?? 256;
  const queue: Waiter[] = [];
  let flushing = false;
  let draining: Promise<number> | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let lastPrune = 0;

  function summarize(waiter: Waiter, result: AppendResult): RelayAppendSummary {
    const appended = new Set(result.appended.map((a) => a.id));
    const missing = new Set(result.missing.map((m) => m.id));
    let a = 0, m = 0;
    for (const k of waiter.keys) {
      if (appended.has(k.id)) a++;
      else if (missing.has(k.id)) m++;
    }
    return { appended: a, missing: m, skipped: waiter.keys.length - a - m };
  }

  async function flush(): Promise<void> {
    if (flushing) return;
    flushing = true;
    try {
      while (queue.length > 0) {
        const group: Waiter[] = [];
        let count = 0;
        while (
          queue.length > 0 && (group.length === 0 || count + queue[0]!.keys.length <= maxKeys)
        ) {
          const w = queue.shift()!;
          group.push(w);
          count += w.keys.length;
        }
        const unique = new Map<string, OutboxKey>();
        for (const w of group) for (const k of w.keys) unique.set(keyOf(k), k);
        try {
          const result = await appendOutboxRows(
            options.sql,
            { keys: [...unique.values()] },
            options.instance,
          );
          if (result.appended.length > 0) options.onAppended?.();
          for (const w of group) w.resolve(summarize(w, result));
        } catch (error) {
          for (const w of group) w.reject(error);
        }
      }
    } finally {
      flushing = false;
    }
  }

  async function drainAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const result = await appendOutboxRows(options.sql, { claim: claimLimit }, options.instance);
      total += result.appended.length;
      if (result.appended.length > 0) options.onAppended?.();
      if (result.missing.length > 0) {
        options.log(
          `ws-fanout: ${result.missing.length} outbox row(s) have no event row; deferred (e.g. ${
            result.missing[0]!.id
          })`,
        );
      }
      if (result.read < claimLimit) break;
    }
    if (total > 0) options.log(`ws-fanout: drained ${total} pending outbox row(s)`);
    if (Date.now() - lastPrune >= pruneEveryMs) {
      lastPrune = Date.now();
      const report = await pruneLedger(options.sql);
      if (Number(report.ledger_rows_deleted) > 0 || Number(report.outbox_rows_deleted) > 0) {
        options.log(`ws-fanout: pruned ${JSON.stringify(report)}`);
      }
    }
    return total;
  }

  const appender: OutboxAppender = {
    append(keys) {
      if (queue.length >= maxQueued) {
        return Promise.reject(new RelayQueueFull(`${queue.length} relays already wait`));
      }
      return new Promise((resolve, reject) => {
        queue.push({ keys, resolve, reject });
        void flush();
      });
    },
    drain() {
      // One drain at a time per instance; a caller arriving mid-drain shares it.
      draining ??= drainAll().finally(() => (draining = undefined));
      return draining;
    },
    start() {
      const tick = () =>
        appender.drain().catch((error) =>
          options.log(
            `ws-fanout: draining the outbox failed (retrying): ${(error as Error).message}`,
          )
        );
      void tick();
      timer = setInterval(tick, options.drainMs);
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
  return appender;
}
