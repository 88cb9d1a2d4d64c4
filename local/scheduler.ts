/**
 * The local stack's scheduler: runs the rows of cutover.scheduled_jobs — the
 * table pg_cron is fed from on hosted Supabase — on the same schedules.
 * Function jobs are POSTed through the gateway with the service-role key,
 * exactly as pg_net does on hosted; SQL jobs run as they are. A job never
 * overlaps itself; every run is recorded in cutover.job_runs. The job list is
 * re-read every 30 s, so edits to the table take effect without a restart.
 */
import type postgres from "postgres";
import { nextRun } from "./schedule.ts";

export interface SchedulerOptions {
  sql: postgres.Sql;
  apiUrl: string;
  serviceRoleKey: string;
  log: (line: string) => void;
  /** How often the job list is re-read. */
  reloadMs?: number;
}

export interface JobRow {
  name: string;
  schedule: string;
  kind: "function" | "sql";
  target: string;
  body: Record<string, unknown>;
  enabled: boolean;
}

export interface JobResult {
  job: string;
  ok: boolean;
  detail: unknown;
  ms: number;
}

export interface Scheduler {
  /** Runs a job now (the control API's `POST /_local/scheduler/run/<job>`). */
  runNow(name: string): Promise<JobResult>;
  stop(): Promise<void>;
}

/** Starts scheduling; the first job list is read at once. */
export function startScheduler(options: SchedulerOptions): Scheduler {
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const running = new Map<string, Promise<JobResult>>();
  let jobs = new Map<string, JobRow>();
  let stopped = false;

  async function execute(job: JobRow, runner: "local" | "manual"): Promise<JobResult> {
    const started = performance.now();
    const [run] = await options.sql<{ id: string }[]>`
      insert into cutover.job_runs (job, runner) values (${job.name}, ${runner}) returning id`;
    let ok = false;
    let detail: unknown;
    try {
      if (job.kind === "sql") {
        detail = await options.sql.unsafe(job.target);
        ok = true;
      } else {
        const res = await fetch(`${options.apiUrl}/functions/v1/${job.target}`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${options.serviceRoleKey}`,
          },
          body: JSON.stringify(job.body),
          signal: AbortSignal.timeout(30_000),
        });
        const text = await res.text();
        try {
          detail = { status: res.status, body: JSON.parse(text) };
        } catch {
          detail = { status: res.status, body: text.slice(0, 500) };
        }
        ok = res.ok;
      }
    } catch (error) {
      detail = { error: (error as Error).message };
    }
    const ms = Math.round(performance.now() - started);
    await options.sql`
      update cutover.job_runs set finished_at = now(), ok = ${ok}, detail = ${
      JSON.stringify(detail ?? null)
    }::text::jsonb
      where id = ${run!.id}`.catch(() => {});
    if (!ok) {
      options.log(
        `[scheduler] ${job.name} failed after ${ms} ms: ${JSON.stringify(detail).slice(0, 300)}`,
      );
    }
    return { job: job.name, ok, detail, ms };
  }

  function run(job: JobRow, runner: "local" | "manual"): Promise<JobResult> {
    const current = running.get(job.name);
    if (current) return current;
    const promise = execute(job, runner).finally(() => running.delete(job.name));
    running.set(job.name, promise);
    return promise;
  }

  function arm(job: JobRow): void {
    clearTimeout(timers.get(job.name));
    if (stopped || !job.enabled) return;
    let at: Date;
    try {
      at = nextRun(job.schedule, new Date());
    } catch (error) {
      options.log(`[scheduler] ${job.name}: ${(error as Error).message}; not scheduled`);
      return;
    }
    timers.set(
      job.name,
      setTimeout(() => {
        const current = jobs.get(job.name);
        if (!current || stopped) return;
        void run(current, "local").catch((error) =>
          options.log(`[scheduler] ${job.name}: ${error}`)
        );
        arm(current);
      }, Math.max(0, at.getTime() - Date.now())),
    );
  }

  async function reload(): Promise<void> {
    try {
      const rows = await options.sql<JobRow[]>`
        select name, schedule, kind, target, body, enabled from cutover.scheduled_jobs order by name`;
      const next = new Map(rows.map((r) => [r.name, r]));
      for (const name of jobs.keys()) {
        if (!next.has(name)) clearTimeout(timers.get(name));
      }
      for (const row of rows) {
        const old = jobs.get(row.name);
        if (!old || old.schedule !== row.schedule || old.enabled !== row.enabled) arm(row);
      }
      jobs = next;
    } catch (error) {
      options.log(`[scheduler] reading cutover.scheduled_jobs failed: ${(error as Error).message}`);
    }
  }

  void reload();
  const reloader = setInterval(() => void reload(), options.reloadMs ?? 30_000);

  return {
    async runNow(name) {
      await reload();
      const job = jobs.get(name);
      if (!job) throw new Error(`no such job: ${name}`);
      return await run(job, "manual");
    },
    async stop() {
      stopped = true;
      clearInterval(reloader);
      for (const t of timers.values()) clearTimeout(t);
      await Promise.race([
        Promise.allSettled([...running.values()]),
        new Promise((r) => setTimeout(r, 10_000)),
      ]);
    },
  };
}
