/**
 * Resilience against the shared stack: the dlq-retry API (service role,
 * validation, list/replay/purge/prune), shared breaker transitions made
 * race-free in Postgres, dead-letter claims under concurrency, dead letters
 * following the outbox, redelivery to both adapters, fallback routing while
 * a breaker is open, and the schedules. The scheduled dlq-retry and watch
 * jobs are paused for this file (so its runs are the only ones) and every
 * breaker, setting and job is put back afterwards.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtInDefaults } from "../../shared/config/settings.ts";
import type { Adapter } from "../../shared/events/schema.ts";
import { bucketOf } from "../../shared/routing/bucket.ts";
import { breakerPolicy, judgeWindow, type Permit } from "../../shared/resilience/breaker.ts";
import { applyBreakerInput, readTransitions } from "../../shared/resilience/breaker-store.ts";
import {
  claimDueDeadLetters,
  recordDeadLetters,
} from "../../shared/resilience/dead-letter-store.ts";
import { useDb } from "../helpers/db.ts";
import { ingest, makeEvent } from "../helpers/events.ts";
import { restoreDefaults, setCategory, setSetting } from "../helpers/flags.ts";
import { stack } from "../helpers/http.ts";
import {
  type Acked,
  dlq,
  expectExactAccount,
  resetResilience,
  setJobs,
  waitFor,
} from "../helpers/resilience.ts";

const sql = useDb();
const JOBS = ["dlq-retry", "resilience-watch"];
const settings = builtInDefaults().settings;

beforeAll(async () => {
  await setJobs(sql, JOBS, false);
  // The scheduler re-reads its jobs every 2 s in tests; a run in flight finishes.
  await new Promise((r) => setTimeout(r, 3_000));
  await resetResilience(sql);
});

afterAll(async () => {
  await resetResilience(sql);
  await restoreDefaults(sql);
  await setJobs(sql, JOBS, true);
});

/** A source whose bucket in `category` is at or above `min` (outside a split below it). */
function sourceWithBucket(category: string, min: number, max = 10_000): string {
  for (;;) {
    const s = `res-${randomUUID().slice(0, 8)}`;
    const b = bucketOf(s, category);
    if (b >= min && b < max) return s;
  }
}

async function forceBreaker(adapter: Adapter, state: "open" | "closed"): Promise<void> {
  const res = await dlq(stack().info, "POST", `/breakers/${adapter}`, {
    state,
    reason: "resilience test",
  });
  expect(res.status).toBe(200);
  // Every instance's board sees a change within 2 s.
  await new Promise((r) => setTimeout(r, 2_500));
}

describe("the dlq-retry API", () => {
  it("is for the service role only", async () => {
    const info = stack().info;
    expect((await dlq(info, "GET", "/status", undefined, null)).status).toBe(401);
    expect((await dlq(info, "GET", "/status", undefined, info.anonKey)).status).toBe(403);
    expect((await dlq(info, "POST", "", {}, info.anonKey)).status).toBe(403);
    const ok = await dlq(info, "GET", "/status");
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      breakers: { websocket: { state: "closed" }, realtime: { state: "closed" } },
    });
  });

  it("refuses bad input precisely and changes nothing", async () => {
    const info = stack().info;
    const cases: [string, string, unknown, number, RegExp][] = [
      ["POST", "", "{nope", 400, /not valid JSON/],
      ["POST", "", { trigger: "x", extra: 1 }, 400, /unrecognized|extra/i],
      ["POST", "/dead-letters/replay", {}, 400, /name the rows/],
      ["POST", "/dead-letters/purge", { status: "pending" }, 400, /status/],
      ["POST", "/dead-letters/purge", { adapter: "websocket" }, 400, /name the rows/],
      ["GET", "/dead-letters?status=lost", undefined, 400, /status/],
      ["GET", "/dead-letters?limit=0", undefined, 400, /limit/],
      ["POST", "/breakers/kafka", { state: "open", reason: "x y z" }, 404, /Unknown adapter/],
      ["POST", "/breakers/websocket", { state: "half_open", reason: "x y z" }, 400, /state/],
      ["GET", "/nope", undefined, 404, /No such dlq-retry endpoint/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const res = await dlq<{ error: { message: string } }>(info, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(res.body.error.message).toMatch(message);
    }
    const after = await dlq<{ breakers: Record<string, { state: string }> }>(
      info,
      "GET",
      "/status",
    );
    expect(after.body.breakers.websocket!.state).toBe("closed");
  });
});

describe("shared breakers in Postgres", () => {
  it("of many instances racing to trip a closed breaker, exactly one makes the transition", async () => {
    const policy = breakerPolicy("websocket", settings);
    const verdict = judgeWindow(
      { calls: 50, failures: 50, slow_calls: 0, histogram: [] },
      null,
      policy,
    );
    const before = (await readTransitions(sql, { adapter: "websocket", limit: 1 }))[0]?.id ?? 0;
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, () =>
          applyBreakerInput(
            sql,
            "websocket",
            (_b, now) => ({ type: "evaluate", now, verdict }),
            policy,
            { instance: "race-test" },
          )),
      );
      expect(results.filter((r) => r?.step.transition).length).toBe(1);
      const log = await readTransitions(sql, { adapter: "websocket", afterId: before });
      expect(log.map((t) => [t.from_state, t.to_state, t.instance])).toEqual([
        ["closed", "open", "race-test"],
      ]);
      expect(log[0]!.reason).toMatch(/failure rate 100% >= 5% over 50 calls/);
    } finally {
      await resetResilience(sql);
    }
  });

  it("a half-open breaker admits exactly N probes however many instances ask at once", async () => {
    const policy = { ...breakerPolicy("websocket", settings), halfOpenProbes: 3 };
    await sql`update cutover.breaker_state set state = 'open', version = version + 1,
      open_until = now() - interval '1 second' where adapter = 'websocket'`;
    try {
      const permits = await Promise.all(
        Array.from(
          { length: 16 },
          () =>
            applyBreakerInput(sql, "websocket", (_b, now) => ({ type: "acquire", now }), policy)
              .then((r) => r?.step.permit as Permit),
        ),
      );
      expect(permits.filter((p) => p === "probe").length).toBe(3);
      expect(permits.filter((p) => p === "deny").length).toBe(13);
      const [row] = await sql`select state, probes_admitted from cutover.breaker_state
        where adapter = 'websocket'`;
      expect(row).toEqual({ state: "half_open", probes_admitted: 3 });
      // Three clean probes close it; the close starts the restore ramp.
      for (let i = 0; i < 3; i++) {
        await applyBreakerInput(
          sql,
          "websocket",
          (_b, now) => ({ type: "outcome", now, ok: true, slow: false, admitted: true }),
          policy,
        );
      }
      const [closed] =
        await sql`select state, closed_at is not null as ramp from cutover.breaker_state
        where adapter = 'websocket'`;
      expect(closed).toEqual({ state: "closed", ramp: true });
    } finally {
      await resetResilience(sql);
    }
  });
});

describe("the dead-letter queue", () => {
  const fakeKeys = (n: number) =>
    Array.from({ length: n }, () => ({ id: randomUUID(), event_time: new Date().toISOString() }));

  it("concurrent claims never take the same row", async () => {
    const keys = fakeKeys(60);
    await recordDeadLetters(sql, {
      adapter: "realtime",
      operation: "write",
      keys,
      error: "test",
      attempts: 0,
      status: "pending",
      nextAttemptAt: Date.now() - 1_000,
    });
    try {
      const claims = await Promise.all(
        Array.from(
          { length: 6 },
          (_, i) =>
            claimDueDeadLetters(sql, {
              adapter: "realtime",
              limit: 15,
              leaseS: 60,
              runId: `run-${i}`,
            }),
        ),
      );
      const mine = new Set(
        (await sql<{ id: string }[]>`select id from cutover.dead_letters
          where event_id = any (${keys.map((k) => k.id)}::uuid[])`).map((r) => Number(r.id)),
      );
      const claimed = claims.flat().map((r) => r.id).filter((id) => mine.has(id));
      expect(new Set(claimed).size).toBe(claimed.length);
      expect(claimed.length).toBe(60);
      const [runs] = await sql<{ n: number }[]>`
        select count(distinct claimed_by)::int as n from cutover.dead_letters
        where event_id = any (${keys.map((k) => k.id)}::uuid[])`;
      expect(runs!.n).toBeGreaterThan(1);
    } finally {
      await sql`delete from cutover.dead_letters where event_id = any (${
        keys.map((k) => k.id)
      }::uuid[])`;
    }
  });

  it("lists, replays only dead rows, purges only settled rows", async () => {
    const info = stack().info;
    const keys = fakeKeys(3);
    await recordDeadLetters(sql, {
      adapter: "websocket",
      operation: "relay",
      keys: keys.slice(0, 2),
      error: "HTTP 400: bad",
      attempts: 1,
      status: "dead",
      nextAttemptAt: Date.now(),
    });
    await recordDeadLetters(sql, {
      adapter: "websocket",
      operation: "relay",
      keys: keys.slice(2),
      error: "HTTP 503: down",
      attempts: 1,
      status: "pending",
      nextAttemptAt: Date.now() + 3_600_000,
    });
    const rows = await sql<{ id: string; status: string }[]>`
      select id, status from cutover.dead_letters
      where event_id = any (${keys.map((k) => k.id)}::uuid[]) order by id`;
    const ids = rows.map((r) => Number(r.id));
    try {
      const list = await dlq<
        { dead_letters: { id: number; status: string; last_error: string }[] }
      >(
        info,
        "GET",
        "/dead-letters?status=dead&adapter=websocket&limit=1000",
      );
      expect(list.status).toBe(200);
      const listed = list.body.dead_letters.filter((d) => ids.includes(d.id));
      expect(listed.map((d) => d.status)).toEqual(["dead", "dead"]);
      expect(listed[0]!.last_error).toBe("HTTP 400: bad");

      const replay = await dlq<{ replayed: number; ids: number[] }>(
        info,
        "POST",
        "/dead-letters/replay",
        { ids },
      );
      expect(replay.body).toEqual({ replayed: 2, ids: ids.slice(0, 2) });
      const after = await sql`select status, attempts from cutover.dead_letters
        where id = any (${ids}::bigint[]) order by id`;
      expect(after).toEqual([
        { status: "pending", attempts: 0 },
        { status: "pending", attempts: 0 },
        { status: "pending", attempts: 1 },
      ]);
      // Nothing settled: a purge by id deletes nothing (pending rows are owed deliveries).
      const none = await dlq<{ purged: number }>(info, "POST", "/dead-letters/purge", { ids });
      expect(none.body.purged).toBe(0);
      await sql`update cutover.dead_letters set status = 'dead', dead_at = now()
        where id = ${ids[0]!}`;
      const purge = await dlq<{ purged: number; ids: number[] }>(
        info,
        "POST",
        "/dead-letters/purge",
        { ids },
      );
      expect(purge.body).toEqual({ purged: 1, ids: [ids[0]] });
    } finally {
      await sql`delete from cutover.dead_letters where id = any (${ids}::bigint[])`;
    }
  });

  it("prunes settled rows by retention and dead rows beyond the size limit, never pending ones", async () => {
    const info = stack().info;
    await setSetting(sql, "dead_letters", { ...settings.dead_letters, max_dead_rows: 100 });
    const tag = randomUUID();
    try {
      await sql`
        insert into cutover.dead_letters (adapter, operation, event_id, event_time, status,
          last_error, dead_at, delivered_at)
        select 'realtime', 'write', gen_random_uuid(), now(), s, ${tag},
          case when s = 'dead' then now() - make_interval(secs => g) end,
          case when s = 'delivered' then now() - interval '2 days' end
        from generate_series(1, 130) g,
          lateral (select case when g <= 110 then 'dead' when g <= 120 then 'delivered' else 'pending' end as s) x`;
      const dead = async () =>
        await sql`select status, count(*)::int as n from cutover.dead_letters
          where last_error = ${tag} group by status order by status`;
      const pruned = await dlq<Record<string, number>>(info, "POST", "/prune");
      expect(pruned.status).toBe(200);
      expect(pruned.body.delivered_deleted).toBeGreaterThanOrEqual(10);
      expect(pruned.body.dead_over_limit).toBeGreaterThanOrEqual(10);
      const left = await dead();
      expect(left).toEqual([{ status: "dead", n: 100 }, { status: "pending", n: 10 }]);
      // The newest dead rows stay.
      const [oldest] = await sql`select max(extract(epoch from now() - dead_at))::float8 as s
        from cutover.dead_letters where last_error = ${tag} and status = 'dead'`;
      expect(oldest!.s).toBeLessThan(102);
    } finally {
      await sql`delete from cutover.dead_letters where last_error = ${tag}`;
      await restoreDefaults(sql);
    }
  });

  it("a dead letter follows its outbox row: delivered by any path is delivered", async () => {
    // An event stored as ingest stores it, whose relay "failed": the outbox row
    // stays pending; ws-fanout's drain or dlq-retry delivers it — exactly once.
    const source = `res-${randomUUID().slice(0, 8)}`;
    const res = await ingest({ events: [makeEvent({ source, event_type: "service.error" })] });
    expect(res.status).toBe(200);
    const acked: Acked = { id: res.body.results[0]!.id!, routes: res.body.results[0]!.routes! };
    expect(acked.routes).toContain("websocket");
    await expectExactAccount(sql, [acked], 20_000);
    // Re-dead-letter the delivered event: the row is refused (already delivered) or settles at once.
    const [ev] = await sql`select "timestamp" from public.monitoring_events where id = ${acked.id}`;
    await sql`update cutover.relay_outbox set status = 'pending', delivered_at = null
      where event_id = ${acked.id}`;
    await recordDeadLetters(sql, {
      adapter: "websocket",
      operation: "relay",
      keys: [{ id: acked.id, event_time: (ev!.timestamp as Date).toISOString() }],
      error: "test: relay lost",
      attempts: 1,
      status: "pending",
      nextAttemptAt: Date.now(),
    });
    const run = await dlq<{ adapters: { websocket: { claimed: number } } }>(
      stack().info,
      "POST",
      "",
      { trigger: "test" },
    );
    expect(run.status).toBe(200);
    await waitFor(
      async () =>
        (await sql`select 1 from cutover.dead_letters
          where event_id = ${acked.id} and status = 'delivered'`).length === 1,
      "the dead letter to read delivered",
      20_000,
    );
    // The ledger did not get a second copy.
    await expectExactAccount(sql, [acked], 5_000);
  });
});

describe("dlq-retry runs", () => {
  it("delivers a Realtime dead letter again (a live row), once, and reports it", async () => {
    const res = await ingest({ events: [makeEvent({ event_type: "service.error" })] });
    const acked: Acked = { id: res.body.results[0]!.id!, routes: res.body.results[0]!.routes! };
    expect(acked.routes).toContain("realtime");
    await expectExactAccount(sql, [acked], 20_000);
    const [ev] = await sql`select "timestamp" from public.monitoring_events where id = ${acked.id}`;
    await sql`delete from public.monitoring_events_live where id = ${acked.id}`;
    await recordDeadLetters(sql, {
      adapter: "realtime",
      operation: "write",
      keys: [{ id: acked.id, event_time: (ev!.timestamp as Date).toISOString() }],
      error: "test",
      attempts: 0,
      status: "pending",
      nextAttemptAt: Date.now() - 1,
    });
    const run = await dlq<{
      run_id: string;
      adapters: { realtime: { claimed: number; delivered: number; claimed_ids: number[] } };
      depth: { adapter: string; pending: number }[];
    }>(stack().info, "POST", "", { trigger: "test" });
    expect(run.status).toBe(200);
    expect(run.body.adapters.realtime).toMatchObject({ claimed: 1, delivered: 1 });
    await expectExactAccount(sql, [acked], 5_000);
    const [recorded] =
      await sql`select kind, ok, report -> 'adapters' -> 'realtime' ->> 'delivered' as d
      from cutover.resilience_runs where id = ${run.body.run_id}`;
    expect(recorded).toEqual({ kind: "dlq-retry", ok: true, d: "1" });
    const [row] = await sql`select status, attempts from cutover.dead_letters
      where adapter = 'realtime' and event_id = ${acked.id}`;
    expect(row).toEqual({ status: "delivered", attempts: 1 });
  });

  it("the watch reports both breakers and every rollback trigger", async () => {
    const watch = await dlq<{
      breakers: Record<string, { state: string }>;
      rollback: { enabled: boolean; triggers: Record<string, Record<string, { verdict: string }>> };
    }>(stack().info, "POST", "/watch", { trigger: "test" });
    expect(watch.status).toBe(200);
    expect(watch.body.breakers.websocket!.state).toBe("closed");
    expect(watch.body.rollback.enabled).toBe(true);
    expect(Object.keys(watch.body.rollback.triggers.realtime!).sort()).toEqual([
      "connection_failures",
      "error_rate",
      "latency",
    ]);
  });
});

describe("routing around an open breaker", () => {
  it("realtime open: deliveries are deferred to dead letters and arrive after the recovery", async () => {
    await forceBreaker("realtime", "open");
    let acked: Acked[] = [];
    try {
      const res = await ingest({
        events: Array.from({ length: 5 }, () => makeEvent({ event_type: "service.error" })),
      });
      expect(res.status).toBe(200);
      acked = res.body.results.map((r) => ({ id: r.id!, routes: r.routes! }));
      for (const a of acked) expect(a.routes).toEqual(["websocket", "realtime"]);
      const pending = await sql`select count(*)::int as n from cutover.dead_letters
        where adapter = 'realtime' and status = 'pending' and last_error like 'deferred%'
          and event_id = any (${acked.map((a) => a.id)}::uuid[])`;
      expect(pending[0]!.n).toBe(5);
      const live = await sql`select count(*)::int as n from public.monitoring_events_live
        where id = any (${acked.map((a) => a.id)}::uuid[])`;
      expect(live[0]!.n).toBe(0);
      // While open, dlq-retry leaves them alone.
      const refused = await dlq<{ adapters: { realtime: { permit: string; claimed: number } } }>(
        stack().info,
        "POST",
        "",
        { trigger: "test" },
      );
      expect(refused.body.adapters.realtime.claimed).toBe(0);
    } finally {
      await forceBreaker("realtime", "closed");
    }
    const run = await dlq<{ adapters: { realtime: { delivered: number } } }>(
      stack().info,
      "POST",
      "",
      { trigger: "test" },
    );
    expect(run.body.adapters.realtime.delivered).toBeGreaterThanOrEqual(5);
    await expectExactAccount(sql, acked, 10_000);
    await resetResilience(sql);
  });

  it("realtime open in broadcast mode: the deferred events are broadcast after the recovery, once", async () => {
    await setCategory(sql, "critical", { delivery_mode: "broadcast" });
    await new Promise((r) => setTimeout(r, 2_500));
    await forceBreaker("realtime", "open");
    let ids: string[] = [];
    const messages = async () =>
      await sql<{ id: string; n: number }[]>`
        select e ->> 'id' as id, count(*)::int as n
        from realtime.messages m, jsonb_array_elements(m.payload -> 'events') e
        where m.topic = 'monitoring:critical' and e ->> 'id' = any (${ids})
        group by 1`;
    try {
      const res = await ingest({
        events: Array.from({ length: 3 }, () => makeEvent({ event_type: "service.error" })),
      });
      ids = res.body.results.map((r) => r.id!);
      expect(await messages()).toEqual([]);
    } finally {
      await forceBreaker("realtime", "closed");
    }
    const run = await dlq<{ adapters: { realtime: { delivered: number } } }>(
      stack().info,
      "POST",
      "",
      { trigger: "test" },
    );
    expect(run.body.adapters.realtime.delivered).toBeGreaterThanOrEqual(3);
    const sent = await messages();
    expect(sent.map((m) => m.id).sort()).toEqual([...ids].sort());
    for (const m of sent) expect(m.n).toBe(1);
    await restoreDefaults(sql);
    await resetResilience(sql);
  });

  it("websocket open: a websocket-only event falls back to realtime now, and reaches websocket later", async () => {
    await forceBreaker("websocket", "open");
    let acked: Acked;
    try {
      // performance: 50 % split, adapters [websocket]; outside the split it is websocket-only.
      const source = sourceWithBucket("performance", 5_000);
      const res = await ingest({
        events: [makeEvent({ source, event_type: "cache.hit", category: "performance" })],
      });
      acked = { id: res.body.results[0]!.id!, routes: res.body.results[0]!.routes! };
      expect(acked.routes).toEqual(["websocket", "realtime"]);
      await waitFor(
        async () =>
          (await sql`select 1 from cutover.dead_letters where adapter = 'websocket'
            and event_id = ${acked.id} and last_error like 'deferred%'`).length === 1,
        "the deferred websocket delivery",
        10_000,
      );
    } finally {
      await forceBreaker("websocket", "closed");
    }
    // ws-fanout's drain or dlq-retry delivers it; the realtime copy is already there.
    await dlq(stack().info, "POST", "", { trigger: "test" });
    await expectExactAccount(sql, [acked!], 20_000);
    const [row] = await sql`select status from cutover.dead_letters
      where adapter = 'websocket' and event_id = ${acked!.id}`;
    expect(row!.status).toBe("delivered");
    // Closed again: the same event type routes websocket-only.
    await resetResilience(sql);
    await new Promise((r) => setTimeout(r, 2_500));
    const again = await ingest({
      events: [
        makeEvent({
          source: sourceWithBucket("performance", 5_000),
          event_type: "cache.hit",
          category: "performance",
        }),
      ],
    });
    expect(again.body.results[0]!.routes).toEqual(["websocket"]);
  });
});

describe("schedules", () => {
  it("dlq-retry, the watch and the pruning jobs are scheduled, and run in the local stack", async () => {
    const jobs = await sql`select name, schedule, kind, target from cutover.scheduled_jobs
      where name in ('dlq-retry', 'resilience-watch', 'prune-dead-letters', 'prune-stats')
      order by name`;
    expect(jobs).toEqual([
      { name: "dlq-retry", schedule: "10 seconds", kind: "function", target: "dlq-retry" },
      {
        name: "prune-dead-letters",
        schedule: "23 * * * *",
        kind: "sql",
        target: "select cutover.prune_dead_letters()",
      },
      {
        name: "prune-stats",
        schedule: "37 * * * *",
        kind: "sql",
        target: "select cutover.prune_stats()",
      },
      {
        name: "resilience-watch",
        schedule: "10 seconds",
        kind: "function",
        target: "dlq-retry/watch",
      },
    ]);
    for (const job of ["dlq-retry", "resilience-watch"]) {
      const res = await fetch(`${stack().info.apiUrl}/_local/scheduler/run/${job}`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack().info.serviceRoleKey}` },
      });
      const body = await res.json() as {
        ok: boolean;
        detail: { status: number; body: { run_id: string } };
      };
      expect(body.ok).toBe(true);
      expect(body.detail.status).toBe(200);
      const [run] = await sql`select kind, trigger, ok from cutover.resilience_runs
        where id = ${body.detail.body.run_id}`;
      expect(run).toEqual({
        kind: job === "dlq-retry" ? "dlq-retry" : "watch",
        trigger: "schedule",
        ok: true,
      });
    }
  });
});
