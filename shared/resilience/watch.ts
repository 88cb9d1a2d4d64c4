/**
 * The resilience watch (scheduled every 10 s as `resilience-watch`): judges
 * every breaker now — so an open period ends and a failing window opens a
 * breaker even when no ingest instance happens to be refreshing — and runs
 * the automated rollback triggers (rollback.ts): each trigger's streak is
 * kept in cutover.rollback_watch, and a trigger that fires changes the flags
 * through the flags store (actor `rollback`, the trigger as the reason, so
 * the audit log records it) and is logged in cutover.rollbacks. The JSON
 * report is returned and recorded in cutover.resilience_runs.
 */
import type { Category } from "../events/schema.ts";
import type { ConfigSource } from "../config/source.ts";
import type { Sql } from "../db/client.ts";
import { type Adapter, ADAPTERS } from "../events/schema.ts";
import type { FlagStore } from "../flags/store.ts";
import { BASELINE_WINDOW_MS, baselineMedianMs, type BreakerState } from "./breaker.ts";
import { type AdapterEvaluation, type BreakerBoard, windowMedianMs } from "./board.ts";
import { noteConnectionOutcome, readBreakers, readBreakerWindows } from "./breaker-store.ts";
import {
  connectionFailuresFire,
  judgeErrorRate,
  judgeLatency,
  planRollback,
  type RollbackPlan,
  type RollbackTrigger,
  stepStreak,
  type TriggerJudgement,
} from "./rollback.ts";

export interface TriggerReport extends TriggerJudgement {
  breached_since: string | null;
  fired: boolean;
}

export interface RollbackMade {
  adapter: Adapter;
  trigger: RollbackTrigger;
  reason: string;
  action: RollbackPlan["action"];
  categories: Category[];
  summary: string;
  config_version: number | null;
}

export interface WatchReport {
  run_id: string;
  trigger: string;
  started_at: string;
  finished_at: string;
  ms: number;
  breakers: Record<Adapter, {
    state: BreakerState;
    transition?: AdapterEvaluation["transition"];
    calls: number;
    failure_rate: number | null;
    slow_call_rate: number | null;
    judged: boolean;
    baseline_median_ms: number | null;
  }>;
  rollback: {
    enabled: boolean;
    triggers: Partial<Record<Adapter, Record<RollbackTrigger, TriggerReport>>>;
    made: RollbackMade[];
  };
}

export interface WatchDeps {
  sql: Sql;
  board: BreakerBoard;
  config: ConfigSource;
  flags: FlagStore;
  instance?: string;
  log?: (line: string) => void;
}

interface StreakRow {
  adapter: Adapter;
  trigger: RollbackTrigger;
  breached_since: number | null;
  last_breach_at: number | null;
  last_evaluated_at: number | null;
}

const TRIGGERS: RollbackTrigger[] = ["error_rate", "latency", "connection_failures"];

/** Runs the watch once. Throws on database errors (the next tick tries again). */
export async function runResilienceWatch(deps: WatchDeps, trigger: string): Promise<WatchReport> {
  const log = deps.log ?? ((line: string) => console.error(line));
  const runId = crypto.randomUUID();
  const t0 = performance.now();
  const startedAt = new Date();
  await deps.sql`
    insert into cutover.resilience_runs (id, kind, trigger, instance)
    values (${runId}, 'watch', ${trigger}, ${deps.instance ?? null})`;
  const evaluation = await deps.board.evaluate();
  const config = await deps.config.get();
  const settings = config.settings;
  const report: WatchReport = {
    run_id: runId,
    trigger,
    started_at: startedAt.toISOString(),
    finished_at: "",
    ms: 0,
    breakers: {} as WatchReport["breakers"],
    rollback: { enabled: settings.rollback.enabled, triggers: {}, made: [] },
  };
  for (const adapter of ADAPTERS) {
    const e = evaluation[adapter];
    report.breakers[adapter] = {
      state: e.state,
      ...(e.transition ? { transition: e.transition } : {}),
      calls: e.window.calls,
      failure_rate: e.verdict?.failureRate ?? null,
      slow_call_rate: e.verdict?.slowCallRate ?? null,
      judged: e.verdict?.judged ?? false,
      baseline_median_ms: e.baselineMedianMs,
    };
  }

  if (settings.rollback.enabled) {
    const rb = settings.rollback;
    const { now, breakers } = await readBreakers(deps.sql);
    const recentMs = Math.min(settings.circuit_breaker.window_s, rb.error_rate_duration_s) * 1000;
    const recent = await readBreakerWindows(deps.sql, {
      websocket: { from: now - recentMs },
      realtime: { from: now - recentMs },
    });
    const baselineTo = now - rb.latency_duration_s * 1000;
    const baselineRange = (adapter: Adapter) => ({
      from: baselineTo - BASELINE_WINDOW_MS,
      to: baselineTo,
      maxFailureRate: settings.adapter_health[adapter].error_threshold,
    });
    const baselines = await readBreakerWindows(deps.sql, {
      websocket: baselineRange("websocket"),
      realtime: baselineRange("realtime"),
    });
    const streaks = await deps.sql.unsafe<StreakRow[]>(
      `select adapter, trigger,
         (extract(epoch from breached_since) * 1000)::float8 as breached_since,
         (extract(epoch from last_breach_at) * 1000)::float8 as last_breach_at,
         (extract(epoch from last_evaluated_at) * 1000)::float8 as last_evaluated_at
       from cutover.rollback_watch`,
    );
    const fired: { adapter: Adapter; trigger: RollbackTrigger; detail: string }[] = [];
    for (const adapter of ADAPTERS) {
      const b = breakers[adapter];
      const judgements: Record<RollbackTrigger, TriggerJudgement> = {
        error_rate: judgeErrorRate(
          recent[adapter],
          b.state,
          rb,
          settings.circuit_breaker.minimum_calls,
        ),
        latency: judgeLatency(
          recent[adapter].calls >= settings.circuit_breaker.minimum_calls
            ? windowMedianMs(recent[adapter])
            : null,
          baselineMedianMs(baselines[adapter], settings.circuit_breaker.minimum_calls),
          rb,
        ),
        connection_failures: connectionFailuresFire(b.connectionFailures, now, rb)
          ? {
            verdict: "breach",
            detail:
              `${b.connectionFailures.count} consecutive connection failures within ${rb.connection_failures_window_s} s`,
          }
          : {
            verdict: b.connectionFailures.count > 0 ? "unknown" : "clear",
            detail: `${b.connectionFailures.count} consecutive connection failure(s)`,
          },
      };
      const perAdapter = {} as Record<RollbackTrigger, TriggerReport>;
      for (const t of TRIGGERS) {
        const j = judgements[t];
        const row = streaks.find((s) => s.adapter === adapter && s.trigger === t);
        const durationMs = t === "error_rate"
          ? rb.error_rate_duration_s * 1000
          : t === "latency"
          ? rb.latency_duration_s * 1000
          : 0;
        const step = stepStreak(
          {
            breachedSince: row?.breached_since ?? null,
            lastBreachAt: row?.last_breach_at ?? null,
            lastEvaluatedAt: row?.last_evaluated_at ?? null,
          },
          j.verdict,
          now,
          durationMs,
        );
        const since = step.fire ? (row?.breached_since ?? now) : step.streak.breachedSince;
        await deps.sql.unsafe(
          `insert into cutover.rollback_watch as w
             (adapter, trigger, breached_since, last_breach_at, last_evaluated_at, last_verdict,
              last_detail)
           values ($1, $2, to_timestamp($3::float8 / 1000), to_timestamp($7::float8 / 1000),
             to_timestamp($4::float8 / 1000), $5, $6)
           on conflict (adapter, trigger) do update set
             breached_since = excluded.breached_since, last_breach_at = excluded.last_breach_at,
             last_evaluated_at = excluded.last_evaluated_at,
             last_verdict = excluded.last_verdict, last_detail = excluded.last_detail`,
          [
            adapter,
            t,
            step.streak.breachedSince,
            now,
            j.verdict,
            j.detail,
            step.streak.lastBreachAt,
          ],
        );
        perAdapter[t] = {
          ...j,
          breached_since: since === null ? null : new Date(since).toISOString(),
          fired: step.fire,
        };
        if (step.fire) fired.push({ adapter, trigger: t, detail: j.detail });
      }
      report.rollback.triggers[adapter] = perAdapter;
    }

    const done = new Set<Adapter>();
    for (const f of fired) {
      if (done.has(f.adapter)) continue;
      done.add(f.adapter);
      if (f.trigger === "connection_failures") {
        await noteConnectionOutcome(deps.sql, f.adapter, false, 0);
      }
      const made = await rollBack(deps, f.adapter, f.trigger, f.detail, breakers);
      report.rollback.made.push(made);
      log(`rollback: ${f.adapter} ${f.trigger}: ${made.summary}`);
    }
    if (report.rollback.made.length > 0) deps.config.invalidate();
  }

  report.finished_at = new Date().toISOString();
  report.ms = Math.round(performance.now() - t0);
  await deps.sql`
    update cutover.resilience_runs set finished_at = now(), ok = true,
      report = ${JSON.stringify(report)}::text::jsonb
    where id = ${runId}`;
  return report;
}

async function rollBack(
  deps: WatchDeps,
  adapter: Adapter,
  trigger: RollbackTrigger,
  detail: string,
  breakers: Awaited<ReturnType<typeof readBreakers>>["breakers"],
): Promise<RollbackMade> {
  const other: Adapter = adapter === "websocket" ? "realtime" : "websocket";
  const reason = `automated rollback: ${
    trigger.replace("_", " ")
  } trigger on ${adapter} (${detail})`;
  for (let attempt = 0; attempt < 3; attempt++) {
    const snapshot = await deps.flags.read();
    const categories = Object.fromEntries(
      Object.entries(snapshot.categories).map(([c, { updated_at: _, ...f }]) => [c, f]),
    ) as Parameters<typeof planRollback>[1]["categories"];
    const plan = planRollback(adapter, {
      categories,
      primary: snapshot.settings.primary_adapter,
      globalOverride: snapshot.settings.global_override,
      onPrimaryFailure: snapshot.settings.rollback.on_primary_failure,
    }, breakers[other].state === "closed");
    let version: number | null = snapshot.version;
    if (plan.changes.length > 0) {
      const outcome = await deps.flags.apply(
        {
          expectedVersion: snapshot.version,
          reason: `${reason}; ${plan.summary}`,
          changes: plan.changes,
        },
        "rollback",
      );
      if (!outcome.ok && outcome.code === "version_conflict") continue;
      if (!outcome.ok) throw new Error(`rollback of ${adapter} failed: ${outcome.code}`);
      version = outcome.version;
    }
    await deps.sql`
      insert into cutover.rollbacks (adapter, trigger, reason, action, changes, config_version)
      values (${adapter}, ${trigger}, ${reason}, ${plan.action},
              ${JSON.stringify(plan.changes)}::text::jsonb, ${version})`;
    return {
      adapter,
      trigger,
      reason,
      action: plan.action,
      categories: plan.categories,
      summary: plan.summary,
      config_version: version,
    };
  }
  throw new Error(`rollback of ${adapter}: the configuration kept changing under it`);
}
