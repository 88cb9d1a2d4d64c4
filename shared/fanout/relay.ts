/**
 * The relay: telling ws-fanout which committed outbox rows to stream now.
 *
 * ingest calls `relayCommitted` after its transaction commits (without
 * awaiting it before answering the producer); a small POST of event keys goes
 * to `${SUPABASE_URL}/functions/v1/ws-fanout/relay`, and ws-fanout appends
 * those rows to the delivery ledger and marks them delivered in one
 * transaction. When the POST fails, the rows stay `pending` with
 * `attempts + 1`, `last_error` and `next_attempt_at` pushed out by
 * exponential backoff (RELAY_RETRY_BASE_MS · 2^(attempts-1), at most
 * RELAY_RETRY_MAX_MS): nothing the producer was told is stored can be lost,
 * only delayed. Two things bring a pending row to the ledger later:
 * ws-fanout's own drain (on start and every few seconds, whatever
 * next_attempt_at says), and `relayPendingOutbox` — the hook the dlq-retry
 * job calls to retry due rows through the same endpoint.
 */
import type { Sql } from "../db/client.ts";
import type { StoredEvent } from "../events/schema.ts";
import { recordAdapterCall } from "../metrics/recorder.ts";
import type { OutboxKey } from "./ledger.ts";

/** Most outbox keys in one relay request. */
export const MAX_RELAY_KEYS = 1_000;

/** First retry delay after a failed relay. */
export const RELAY_RETRY_BASE_MS = 1_000;
/** Longest retry delay. */
export const RELAY_RETRY_MAX_MS = 5 * 60_000;

export interface FanoutRelayOptions {
  sql: Sql;
  /** SUPABASE_URL: the relay posts to `${baseUrl}/functions/v1/ws-fanout/relay`. */
  baseUrl: string;
  serviceRoleKey: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
  log?: (line: string) => void;
}

export interface RelayOutcome {
  /** Rows ws-fanout took (appended now or already handled). */
  relayed: number;
  /** Rows left pending after a failure (recorded for retry). */
  failed: number;
  error?: string;
}

export interface FanoutRelay {
  /**
   * Relays the newly stored events routed to `websocket`. Never rejects:
   * failures are recorded on the outbox rows and logged.
   */
  relayCommitted(events: { event: StoredEvent }[]): Promise<RelayOutcome>;
  /** Relays outbox rows by key (in chunks of MAX_RELAY_KEYS). Never rejects. */
  relayKeys(keys: OutboxKey[]): Promise<RelayOutcome>;
}

/** Creates the relay client. */
export function createFanoutRelay(options: FanoutRelayOptions): FanoutRelay {
  const doFetch = options.fetch ?? fetch;
  const log = options.log ?? ((line: string) => console.error(line));
  const url = `${options.baseUrl.replace(/\/$/, "")}/functions/v1/ws-fanout/relay`;
  const timeoutMs = options.timeoutMs ?? 10_000;

  async function post(keys: OutboxKey[]): Promise<string | null> {
    try {
      const res = await doFetch(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${options.serviceRoleKey}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ events: keys }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      if (res.ok) return null;
      return `HTTP ${res.status}: ${text.slice(0, 200)}`;
    } catch (error) {
      return (error as Error).message;
    }
  }

  const relay: FanoutRelay = {
    relayCommitted(events) {
      const keys = events
        .filter(({ event }) => event.routes.includes("websocket"))
        .map(({ event }) => ({ id: event.id, event_time: event.timestamp }));
      return relay.relayKeys(keys);
    },
    async relayKeys(keys) {
      const outcome: RelayOutcome = { relayed: 0, failed: 0 };
      for (let i = 0; i < keys.length; i += MAX_RELAY_KEYS) {
        const chunk = keys.slice(i, i + MAX_RELAY_KEYS);
        const started = performance.now();
        const error = await post(chunk);
        recordAdapterCall(
          "websocket",
          "relay",
          error === null,
          performance.now() - started,
          chunk.length,
        );
        if (error === null) {
          outcome.relayed += chunk.length;
          continue;
        }
        outcome.failed += chunk.length;
        outcome.error = error;
        log(
          `relay: ${chunk.length} event(s) stay pending for retry (e.g. ${chunk[0]!.id}): ${error}`,
        );
        try {
          await recordRelayFailure(options.sql, chunk, error);
        } catch (dbError) {
          // The rows are still pending (with their old retry time); ws-fanout's drain takes them.
          log(`relay: recording the failure failed: ${(dbError as Error).message}`);
        }
      }
      return outcome;
    },
  };
  return relay;
}

/**
 * Records a failed relay on still-pending outbox rows: attempts + 1,
 * `last_error = "relay: <error>"`, next_attempt_at = now + backoff. Rows that
 * ws-fanout delivered meanwhile are not touched. Throws on database errors.
 */
export async function recordRelayFailure(
  sql: Sql,
  keys: OutboxKey[],
  error: string,
): Promise<void> {
  await sql.unsafe(
    `update cutover.relay_outbox o
     set attempts = o.attempts + 1,
         last_error = left('relay: ' || $2, 500),
         next_attempt_at = now() + least($4::float8, $3::float8 * 2 ^ least(o.attempts, 30)) * interval '1 millisecond'
     from jsonb_to_recordset($1::text::jsonb) as k(id uuid, event_time timestamptz)
     where o.event_id = k.id and o.event_time = k.event_time and o.status = 'pending'`,
    [JSON.stringify(keys), error, RELAY_RETRY_BASE_MS, RELAY_RETRY_MAX_MS],
  );
}

export interface RelayPendingOptions {
  sql: Sql;
  relay: FanoutRelay;
  /** Most rows to take in this run. */
  limit?: number;
  /** How long a claimed row is left to this run before another may claim it. */
  leaseMs?: number;
}

/**
 * The dlq-retry hook: claims pending outbox rows whose `next_attempt_at` is
 * due (oldest first, SKIP LOCKED, leased by moving next_attempt_at `leaseMs`
 * ahead so concurrent runs do not take the same rows — no transaction is held
 * open across the HTTP call) and relays them. A failed relay records the
 * failure as `relayCommitted` does. Returns the counts; throws only when the
 * claim itself fails.
 */
export async function relayPendingOutbox(
  options: RelayPendingOptions,
): Promise<RelayOutcome & { claimed: number }> {
  const rows = await options.sql<{ event_id: string; event_time: Date }[]>`
    update cutover.relay_outbox o
    set next_attempt_at = now() + ${options.leaseMs ?? 60_000} * interval '1 millisecond'
    where (o.event_id, o.event_time) in (
      select event_id, event_time from cutover.relay_outbox
      where status = 'pending' and next_attempt_at <= now()
      order by next_attempt_at
      limit ${options.limit ?? 1_000}
      for update skip locked)
    returning o.event_id, o.event_time`;
  const keys = rows.map((r) => ({ id: r.event_id, event_time: r.event_time.toISOString() }));
  const outcome = await options.relay.relayKeys(keys);
  return { ...outcome, claimed: keys.length };
}
