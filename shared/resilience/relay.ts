/**
 * The relay ingest uses after commit, with its protections around the plain
 * fanout relay (shared/fanout/relay.ts):
 *
 * 1. adaptive batching (batching.ts): committed events from every request of
 *    the instance join one stream; while few relays are in flight they go at
 *    once, beyond that they accumulate up to the size and wait of the tier
 *    the instance's websocket event rate picks — one relay call carries many
 *    requests' events when busy, a lone event is not delayed;
 * 2. the websocket breaker (board.ts): while it is open the batch is not sent
 *    but deferred to the dead-letter queue, due when the open period ends;
 *    while half-open only a probe permit sends it;
 * 3. retries with exponential backoff and full jitter (backoff.ts, the
 *    `retry` setting) for failures worth retrying;
 * 4. the dead-letter queue for what still failed (`dead_letters` setting),
 *    so dlq-retry takes it from there.
 *
 * Every relayed event is already committed with its outbox row, so nothing
 * here can lose it: at worst it is delivered later by dlq-retry or by
 * ws-fanout's own outbox drain. `close()` (wired to `beforeunload`) flushes
 * every batch and waits for the relays in flight.
 */
import type { ConfigSource } from "../config/source.ts";
import type { Sql } from "../db/client.ts";
import type { StoredEvent } from "../events/schema.ts";
import type { FanoutRelay, RelayOutcome } from "../fanout/relay.ts";
import { fullJitterDelayMs, retryWithBackoff } from "./backoff.ts";
import { type BatcherStatus, createBatcher } from "./batching.ts";
import type { BreakerBoard } from "./board.ts";
import { type EventKey, recordDeadLetters } from "./dead-letter-store.ts";
import { classifyDeliveryError } from "./dead-letters.ts";
import { resilienceDefaults } from "./settings.ts";

export interface ResilientRelayOptions {
  sql: Sql;
  relay: FanoutRelay;
  board: BreakerBoard;
  config: ConfigSource;
  log?: (line: string) => void;
  random?: () => number;
}

/** What happened to one batch. */
export interface BatchReport {
  keys: number;
  permit: "allow" | "deny" | "probe";
  attempts: number;
  relayed: number;
  deadLettered: number;
  error?: string;
}

export interface ResilientRelay {
  /** Queues the newly committed events routed to `websocket`; resolves once their batch is handled. Never rejects. */
  relayCommitted(events: { event: StoredEvent }[]): Promise<void>;
  /** Relays `keys` now (no batching) with the breaker, retries and dead letters. Never rejects. */
  relayBatch(keys: EventKey[]): Promise<BatchReport>;
  /** Flushes every batch and waits for every relay in flight (shutdown). Never rejects. */
  close(): Promise<void>;
  status(): BatcherStatus;
}

/** The batcher's one stream: all websocket relays of the instance. */
const STREAM = "relay";

/** Creates the relay; batches start filling on the first `relayCommitted`. */
export function createResilientRelay(options: ResilientRelayOptions): ResilientRelay {
  const log = options.log ?? ((line: string) => console.error(line));
  const random = options.random ?? Math.random;
  let settings = resilienceDefaults();
  let closed = false;

  async function refreshSettings(): Promise<void> {
    try {
      settings = (await options.config.get()).settings;
    } catch {
      // keep the last known settings
    }
  }

  async function deadLetter(
    keys: EventKey[],
    error: string,
    attempts: number,
    permanent: boolean,
    dueAt: number,
  ): Promise<number> {
    const dl = settings.dead_letters;
    const dead = permanent || attempts >= dl.max_attempts;
    try {
      return await recordDeadLetters(options.sql, {
        adapter: "websocket",
        operation: "relay",
        keys,
        error,
        attempts,
        status: dead ? "dead" : "pending",
        nextAttemptAt: dueAt,
      });
    } catch (dbError) {
      // The outbox rows are committed and pending: ws-fanout's drain and
      // dlq-retry's adoption of orphaned rows still deliver them.
      log(
        `relay: ${keys.length} event(s) (e.g. ${keys[0]?.id}) could not be dead-lettered (${
          (dbError as Error).message
        }); they stay pending in the outbox`,
      );
      return 0;
    }
  }

  async function relayBatch(keys: EventKey[]): Promise<BatchReport> {
    await refreshSettings();
    const report: BatchReport = {
      keys: keys.length,
      permit: "allow",
      attempts: 0,
      relayed: 0,
      deadLettered: 0,
    };
    if (keys.length === 0) return report;
    const permit = await options.board.permit("websocket");
    report.permit = permit;
    if (permit === "deny") {
      const b = options.board.current().breakers.websocket;
      report.error = `deferred: the websocket circuit breaker is ${b.state.replace("_", "-")}`;
      const due = b.openUntil !== null ? b.openUntil : Date.now();
      report.deadLettered = await deadLetter(keys, report.error, 0, false, due);
      return report;
    }

    const attempt = async (): Promise<RelayOutcome> => {
      const started = performance.now();
      const outcome = await options.relay.relayKeys(keys);
      const latencyMs = performance.now() - started;
      await options.board.report("websocket", {
        ok: outcome.failed === 0,
        latencyMs,
        admitted: permit === "probe",
        ...(outcome.error ? { detail: outcome.error } : {}),
      });
      return outcome;
    };

    let outcome: RelayOutcome;
    if (permit === "probe" || closed) {
      // A probe is one call; so is a relay during shutdown (no time for backoff).
      outcome = await attempt();
      report.attempts = 1;
    } else {
      const result = await retryWithBackoff(attempt, {
        settings: settings.retry,
        random,
        // Not for a permanent error, nor for backpressure (ws-fanout keeps
        // the rows pending and drains them), nor once the breaker opened.
        shouldRetry: (o) => {
          if (o.failed === 0 || closed) return false;
          const kind = classifyDeliveryError(o.error ?? "");
          return !kind.permanent && !kind.busy &&
            options.board.current().breakers.websocket.state === "closed";
        },
      });
      outcome = result.result;
      report.attempts = result.attempts;
    }
    report.relayed = outcome.relayed;
    // One count per delivery given up on, not per attempt: three retries of
    // one batch during a blip are not three connection failures.
    await options.board.noteConnection(
      "websocket",
      outcome.failed > 0 && classifyDeliveryError(outcome.error ?? "").connection,
    );
    if (outcome.failed > 0) {
      const error = outcome.error ?? "relay failed";
      report.error = error;
      const permanent = classifyDeliveryError(error).permanent;
      const due = Date.now() + fullJitterDelayMs(report.attempts, settings.dead_letters, random);
      report.deadLettered = await deadLetter(keys, error, report.attempts, permanent, due);
    }
    return report;
  }

  const batcher = createBatcher<EventKey>({
    settings: () => settings.batching,
    flush: async (_category, keys) => {
      await relayBatch(keys);
    },
    onOverflow: (_stream, keys) =>
      log(
        `relay: ${keys.length} event(s) over the batching memory bound (e.g. ${
          keys[0]?.id
        }); left to ws-fanout's outbox drain and dlq-retry`,
      ),
  });

  return {
    async relayCommitted(events) {
      try {
        await refreshSettings();
        const keys = events
          .filter(({ event }) => event.routes.includes("websocket"))
          .map(({ event }) => ({ id: event.id, event_time: event.timestamp }));
        await batcher.add(STREAM, keys);
      } catch (error) {
        log(`relay: ${(error as Error).message} (the events stay pending in the outbox)`);
      }
    },
    relayBatch: (keys) =>
      relayBatch(keys).catch((error) => {
        log(`relay: ${(error as Error).message} (the events stay pending in the outbox)`);
        return {
          keys: keys.length,
          permit: "allow",
          attempts: 0,
          relayed: 0,
          deadLettered: 0,
          error: (error as Error).message,
        } satisfies BatchReport;
      }),
    async close() {
      closed = true;
      try {
        await batcher.flushAll();
      } catch (error) {
        log(`relay: flushing on shutdown failed: ${(error as Error).message}`);
      }
    },
    status: () => batcher.status(),
  };
}
