/**
 * One dlq-retry run: adopt lost relays, then per adapter — unless its breaker
 * refuses — claim the due dead letters (SKIP LOCKED, leased to this run),
 * deliver them again in batches, and write each attempt's outcome by the
 * rules of dead-letters.ts. The run's JSON report is returned and recorded in
 * cutover.resilience_runs.
 *
 * Deliveries: a WebSocket dead letter is relayed again through ws-fanout's
 * relay endpoint, and counts as delivered once its outbox row reads
 * delivered (the endpoint may answer 200 for a row it could not append, e.g.
 * one whose event row is gone); a Realtime dead letter is written again to
 * monitoring_events_live or broadcast (cutover.redeliver_realtime).
 * While a breaker is half-open the run sends one batch as its probe.
 */
import type { ConfigSource } from "../config/source.ts";
import type { Sql } from "../db/client.ts";
import { type Adapter, ADAPTERS } from "../events/schema.ts";
import type { FanoutRelay } from "../fanout/relay.ts";
import { recordAdapterCall } from "../metrics/recorder.ts";
import type { BreakerBoard } from "./board.ts";
import {
  adoptOrphanedOutbox,
  claimDueDeadLetters,
  type ClaimedDeadLetter,
  type DeadLetterDepth,
  deadLetterDepth,
  deliveredOutboxKeys,
  eventKeyString,
  finishDeadLetters,
  type FinishedDeadLetter,
} from "./dead-letter-store.ts";
import { afterAttempt, classifyDeliveryError, type DeliveryOutcome } from "./dead-letters.ts";

/**
 * Keys per relay request: the high tier's batch size (seed 003), so a
 * recovery's backlog goes as many moderate calls — each judged by the same
 * slow-call threshold as ingest's relays — not as a few huge ones.
 */
const RELAY_CHUNK = 100;
/** Keys in a half-open probe: one small call. */
const PROBE_CHUNK = 10;

export interface AdapterRunReport {
  permit: "allow" | "deny" | "probe";
  claimed: number;
  delivered: number;
  rescheduled: number;
  dead: number;
  /** Outcomes not written: the row was delivered by another path meanwhile. */
  superseded: number;
  /** Ids of the rows this run claimed (so concurrent runs can be told apart). */
  claimed_ids: number[];
  errors: string[];
}

export interface DlqRunReport {
  run_id: string;
  trigger: string;
  started_at: string;
  finished_at: string;
  ms: number;
  adopted: number;
  adapters: Record<Adapter, AdapterRunReport>;
  depth: DeadLetterDepth[];
}

export interface DlqRunDeps {
  sql: Sql;
  relay: FanoutRelay;
  board: BreakerBoard;
  config: ConfigSource;
  instance?: string;
  random?: () => number;
  log?: (line: string) => void;
}

function emptyAdapterReport(): AdapterRunReport {
  return {
    permit: "allow",
    claimed: 0,
    delivered: 0,
    rescheduled: 0,
    dead: 0,
    superseded: 0,
    claimed_ids: [],
    errors: [],
  };
}

async function deliverWebsocket(
  deps: DlqRunDeps,
  rows: ClaimedDeadLetter[],
  probe: boolean,
): Promise<Map<number, DeliveryOutcome>> {
  const outcomes = new Map<number, DeliveryOutcome>();
  for (let i = 0; i < rows.length; i += RELAY_CHUNK) {
    const chunk = rows.slice(i, i + RELAY_CHUNK);
    const keys = chunk.map((r) => ({ id: r.event_id, event_time: r.event_time }));
    const started = performance.now();
    const result = await deps.relay.relayKeys(keys);
    const latencyMs = performance.now() - started;
    const failed = result.failed > 0;
    await deps.board.report("websocket", {
      ok: !failed,
      latencyMs,
      admitted: probe,
      ...(result.error ? { detail: result.error } : {}),
    });
    await deps.board.noteConnection(
      "websocket",
      failed && classifyDeliveryError(result.error ?? "").connection,
    );
    if (failed) {
      const error = result.error ?? "relay failed";
      const permanent = classifyDeliveryError(error).permanent;
      for (const r of chunk) outcomes.set(r.id, { ok: false, error, permanent });
    } else {
      const delivered = await deliveredOutboxKeys(deps.sql, keys);
      for (const r of chunk) {
        outcomes.set(
          r.id,
          delivered.has(eventKeyString(r.event_id, r.event_time)) ? { ok: true } : {
            ok: false,
            error: "relayed, but ws-fanout did not append it (event row missing?)",
            permanent: false,
          },
        );
      }
    }
    if (probe || failed) {
      // A failed chunk says the rest would fail too; a probe is one call.
      for (const r of rows.slice(i + RELAY_CHUNK)) {
        outcomes.set(r.id, {
          ok: false,
          error: failed ? `not attempted: ${result.error}` : "not attempted (half-open probe)",
          permanent: false,
        });
      }
      break;
    }
  }
  return outcomes;
}

async function deliverRealtime(
  deps: DlqRunDeps,
  rows: ClaimedDeadLetter[],
  probe: boolean,
): Promise<Map<number, DeliveryOutcome>> {
  const outcomes = new Map<number, DeliveryOutcome>();
  const started = performance.now();
  try {
    const done = await deps.sql.unsafe<{ id: string }[]>(
      `select id from cutover.redeliver_realtime($1::bigint[])`,
      [rows.map((r) => r.id)],
    );
    const latencyMs = performance.now() - started;
    recordAdapterCall("realtime", "redeliver", true, latencyMs, done.length);
    await deps.board.report("realtime", { ok: true, latencyMs, admitted: probe });
    const ok = new Set(done.map((d) => Number(d.id)));
    for (const r of rows) {
      outcomes.set(
        r.id,
        ok.has(r.id) ? { ok: true } : {
          ok: false,
          error: "the event row no longer exists (past retention?)",
          permanent: true,
        },
      );
    }
  } catch (error) {
    const latencyMs = performance.now() - started;
    recordAdapterCall("realtime", "redeliver", false, latencyMs, rows.length);
    await deps.board.report("realtime", { ok: false, latencyMs, admitted: probe });
    for (const r of rows) {
      outcomes.set(r.id, { ok: false, error: (error as Error).message, permanent: false });
    }
  }
  return outcomes;
}

/**
 * Runs once. Throws only when the database is unreachable before anything
 * was claimed (the scheduler retries at the next tick); once rows are
 * claimed, their outcomes are written or their lease brings them back.
 */
export async function runDeadLetterRetry(deps: DlqRunDeps, trigger: string): Promise<DlqRunReport> {
  const runId = crypto.randomUUID();
  const startedAt = new Date();
  const t0 = performance.now();
  const settings = (await deps.config.get()).settings;
  const dl = settings.dead_letters;
  await deps.sql`
    insert into cutover.resilience_runs (id, kind, trigger, instance)
    values (${runId}, 'dlq-retry', ${trigger}, ${deps.instance ?? null})`;
  const report: DlqRunReport = {
    run_id: runId,
    trigger,
    started_at: startedAt.toISOString(),
    finished_at: "",
    ms: 0,
    adopted: await adoptOrphanedOutbox(deps.sql, dl.adopt_after_s, dl.batch_size),
    adapters: { websocket: emptyAdapterReport(), realtime: emptyAdapterReport() },
    depth: [],
  };
  for (const adapter of ADAPTERS) {
    const r = report.adapters[adapter];
    if ((await deps.board.snapshot()).breakers[adapter].state !== "closed") {
      // Only take a probe permit when there is something to probe with.
      const [due] = await deps.sql<{ any: boolean }[]>`
        select exists (select 1 from cutover.dead_letters
          where adapter = ${adapter} and status = 'pending' and next_attempt_at <= now()) as any`;
      if (!due?.any) continue;
    }
    const permit = await deps.board.permit(adapter);
    r.permit = permit;
    if (permit === "deny") continue;
    const limit = permit === "probe" ? Math.min(dl.batch_size, PROBE_CHUNK) : dl.batch_size;
    const rows = await claimDueDeadLetters(deps.sql, {
      adapter,
      limit,
      leaseS: dl.lease_s,
      runId,
    });
    r.claimed = rows.length;
    r.claimed_ids = rows.map((row) => row.id);
    if (rows.length === 0) continue;
    const outcomes = adapter === "websocket"
      ? await deliverWebsocket(deps, rows, permit === "probe")
      : await deliverRealtime(deps, rows, permit === "probe");
    const now = Date.now();
    const finished: FinishedDeadLetter[] = rows.map((row) => ({
      id: row.id,
      ...afterAttempt(
        { status: "pending", attempts: row.attempts, lastError: row.last_error },
        outcomes.get(row.id) ?? { ok: false, error: "no outcome", permanent: false },
        dl,
        now,
        deps.random,
      ),
    }));
    const written = new Set(await finishDeadLetters(deps.sql, runId, finished));
    for (const f of finished) {
      if (!written.has(f.id)) r.superseded++;
      else if (f.status === "delivered") r.delivered++;
      else if (f.status === "dead") r.dead++;
      else r.rescheduled++;
    }
    const errors = new Set(
      finished.filter((f) => f.status !== "delivered" && f.lastError).map((f) => f.lastError!),
    );
    r.errors = [...errors].slice(0, 5);
  }
  report.depth = await deadLetterDepth(deps.sql);
  report.finished_at = new Date().toISOString();
  report.ms = Math.round(performance.now() - t0);
  await deps.sql`
    update cutover.resilience_runs set finished_at = now(), ok = true,
      report = ${JSON.stringify(report)}::text::jsonb
    where id = ${runId}`.catch((error) =>
    deps.log?.(`dlq-retry: recording the report failed: ${(error as Error).message}`)
  );
  return report;
}
