/**
 * Scheduled jobs: one table drives pg_cron (hosted) and the local scheduler;
 * the local scheduler runs them on their schedules and on demand.
 */
import { afterAll, describe, expect, it } from "vitest";
import { validateSchedule } from "../../local/schedule.ts";
import { useDb } from "../helpers/db.ts";
import { eventually } from "../helpers/flags.ts";
import { fetchJson, stack } from "../helpers/http.ts";

const sql = useDb();
afterAll(() => sql`delete from cutover.scheduled_jobs where name like 'test-%'`);

describe("scheduled jobs", () => {
  it("lists valid schedules, and applies cleanly where pg_cron is absent", async () => {
    const jobs = await sql<{ name: string; schedule: string; kind: string }[]>`
      select name, schedule, kind from cutover.scheduled_jobs`;
    expect(jobs.map((j) => j.name)).toEqual(
      expect.arrayContaining(["reconcile", "maintain-partitions", "prune-live-events"]),
    );
    for (const j of jobs) expect(() => validateSchedule(j.schedule), j.name).not.toThrow();
    const [r] = await sql`select cutover.apply_schedules() as message`;
    expect(r!.message).toMatch(/pg_cron is not installed/);
  });

  it("gives pg_cron a pg_net call with Vault secrets for function jobs, the SQL for sql jobs", async () => {
    const [fn] =
      await sql`select cutover.job_command(j) as c from cutover.scheduled_jobs j where name = 'reconcile'`;
    expect(fn!.c).toContain("net.http_post(");
    expect(fn!.c).toContain("where name = 'project_url') || '/functions/v1/reconcile'");
    expect(fn!.c).toContain("where name = 'service_role_key')");
    expect(fn!.c).toContain(`body := '{"trigger": "schedule"}'::jsonb`);
    const [q] =
      await sql`select cutover.job_command(j) as c from cutover.scheduled_jobs j where name = 'prune-live-events'`;
    expect(q!.c).toBe("select cutover.prune_live_events()");
  });

  it("runs a job on demand through the control API and records the run", async () => {
    const res = await fetchJson<{ job: string; ok: boolean }>(
      `${stack().info.apiUrl}/_local/scheduler/run/prune-live-events`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${stack().info.serviceRoleKey}` },
      },
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ job: "prune-live-events", ok: true });
    const [run] =
      await sql`select runner, ok from cutover.job_runs where job = 'prune-live-events' order by id desc limit 1`;
    expect(run).toEqual({ runner: "manual", ok: true });
    const missing = await fetchJson(`${stack().info.apiUrl}/_local/scheduler/run/nope`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack().info.serviceRoleKey}` },
    });
    expect(missing.status).toBe(404);
  });

  it("runs a job on its schedule, on the schedule's instants, picking up table edits", async () => {
    await sql`insert into cutover.scheduled_jobs (name, schedule, kind, target)
              values ('test-tick', '2 seconds', 'sql', 'select 1')`;
    const runs = await eventually(async () => {
      const rows = await sql<{ started_at: Date; ok: boolean }[]>`
        select started_at, ok from cutover.job_runs where job = 'test-tick' and runner = 'local' order by id`;
      expect(rows.length).toBeGreaterThanOrEqual(2);
      return rows;
    }, 15_000);
    expect(runs.every((r) => r.ok)).toBe(true);
    for (const r of runs) expect(r.started_at.getTime() % 2000).toBeLessThan(500);
    await sql`update cutover.scheduled_jobs set enabled = false where name = 'test-tick'`;
    await new Promise((r) => setTimeout(r, 3000));
    const count = async () =>
      (await sql<
        { n: number }[]
      >`select count(*)::int as n from cutover.job_runs where job = 'test-tick'`)[0]!.n;
    const before = await count();
    await new Promise((r) => setTimeout(r, 4500));
    expect(await count()).toBe(before);
  });
});
