/**
 * The dead-letter queue's rules, pure (the table is cutover.dead_letters,
 * migration 20261123000900_resilience.sql; the Postgres adapter is
 * dead-letter-store.ts).
 *
 * A dead letter is one event's failed (or deferred) delivery to one adapter.
 * Its life:
 *
 *     (failed relay / breaker open / orphaned outbox row)
 *            │
 *            ▼          retry ok (or delivered by another path)
 *        pending ───────────────────────────────────────────▶ delivered
 *          │  ▲ retry failed, attempts < max:
 *          │  └ next_attempt_at = now + full-jitter backoff(attempts)
 *          │ retry failed and attempts = max, or a permanent error
 *          ▼
 *         dead ── replay (operator) ──▶ pending (attempts 0, due now)
 *
 * `delivered` is final. A delivery deferred because the adapter's breaker is
 * open is not an attempt: the row waits for the end of the open period with
 * its attempts unchanged. Rows are never deleted while pending; delivered and
 * dead rows are pruned by retention and the dead rows also by a size limit.
 */
import { fullJitterDelayMs } from "./backoff.ts";

export type DeadLetterStatus = "pending" | "delivered" | "dead";

/** The `dead_letters` setting. */
export interface DeadLetterSettings {
  /** First retry ceiling (full jitter) and largest ceiling. */
  base_ms: number;
  cap_ms: number;
  /** Delivery attempts (all paths together) before a row is parked as dead. */
  max_attempts: number;
  /** Rows one dlq-retry run claims per adapter. */
  batch_size: number;
  /** How long a run owns the rows it claimed before another run may take them. */
  lease_s: number;
  /** A pending outbox row older than this with no dead letter is adopted (its relay was lost). */
  adopt_after_s: number;
  delivered_retention_hours: number;
  dead_retention_days: number;
  /** Most dead rows kept; the oldest beyond it are pruned. */
  max_dead_rows: number;
}

/** The outcome of one delivery attempt. */
export type DeliveryOutcome =
  | { ok: true }
  | { ok: false; error: string; permanent: boolean };

/** The fields an attempt changes. */
export interface DeadLetterUpdate {
  status: DeadLetterStatus;
  attempts: number;
  /** Epoch ms; null once delivered or dead. */
  nextAttemptAt: number | null;
  lastError: string | null;
}

/**
 * The row after one delivery attempt at `now`. Only a pending row changes;
 * a delivered or dead row is returned as it was (the attempt raced with
 * another path and is ignored). Pure given `random`.
 */
export function afterAttempt(
  row: { status: DeadLetterStatus; attempts: number; lastError: string | null },
  outcome: DeliveryOutcome,
  settings: Pick<DeadLetterSettings, "base_ms" | "cap_ms" | "max_attempts">,
  now: number,
  random: () => number = Math.random,
): DeadLetterUpdate {
  if (row.status !== "pending") {
    return {
      status: row.status,
      attempts: row.attempts,
      nextAttemptAt: null,
      lastError: row.lastError,
    };
  }
  const attempts = row.attempts + 1;
  if (outcome.ok) {
    return { status: "delivered", attempts, nextAttemptAt: null, lastError: row.lastError };
  }
  if (outcome.permanent || attempts >= settings.max_attempts) {
    return { status: "dead", attempts, nextAttemptAt: null, lastError: outcome.error };
  }
  return {
    status: "pending",
    attempts,
    nextAttemptAt: now + fullJitterDelayMs(attempts, settings, random),
    lastError: outcome.error,
  };
}

/** A relay or delivery error, read for what it means. */
export interface ErrorClass {
  /** Retrying cannot help (the request itself is wrong). */
  permanent: boolean;
  /** The adapter could not be reached: network error, timeout, 502/503/504. */
  connection: boolean;
  /**
   * The adapter is up but shedding load (ws-fanout's 503 `busy`: "the events
   * stay pending in the outbox"): retrying at once only adds load.
   */
  busy: boolean;
}

/**
 * Classifies an error string of the relay client (`HTTP <status>: …` or a
 * network error's message). 400 and 413 are permanent (the same request will
 * fail again); 401/403/404 are configuration problems an operator fixes, so
 * they are retried; anything without an HTTP status, and 502/503/504, are
 * connection failures — except a 503 whose error code is `busy` (ws-fanout
 * shedding relays), which is backpressure. Pure.
 */
export function classifyDeliveryError(error: string): ErrorClass {
  const m = /^HTTP (\d{3})\b/.exec(error);
  if (!m) return { permanent: false, connection: true, busy: false };
  const status = Number(m[1]);
  const busy = status === 503 && /"code"\s*:\s*"busy"/.test(error);
  return {
    permanent: status === 400 || status === 413 || status === 422,
    connection: !busy && (status === 502 || status === 503 || status === 504),
    busy,
  };
}
