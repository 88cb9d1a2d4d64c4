/**
 * reconcile over HTTP against the running stack. Events are written straight
 * into public.monitoring_events (with ingest's checksums), delivered to the
 * ledger by the real ws-fanout (its relay endpoint), then given known
 * defects with SQL: a ledger row deleted, an event row deleted, a payload
 * corrupted, a delivery made late, a sequence id never sent, an event
 * arriving after its successor. Every source is this file's own, and every
 * assertion is scoped to them: the stack is shared, the scheduler runs
 * reconcile every 30 s, and other files' events are judged alongside.
 *
 * While a test arranges its rows it holds reconcile's run lock (the same
 * advisory lock runs take), so no run — scheduled or not — sees a
 * half-built defect; runs in that time answer 409 `run_in_progress`.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checksumEvent, DEFAULT_CHECKSUM_ALG } from "../../shared/events/checksum.ts";
import type { Category, WireEvent } from "../../shared/events/schema.ts";
import type { ReconcileReport } from "../../shared/reconcile/run.ts";
import { RUN_LOCK_KEY } from "../../shared/reconcile/store.ts";
import { useDb } from "../helpers/db.ts";
import { eventually } from "../helpers/flags.ts";
import { fetchJson, functionUrl, stack } from "../helpers/http.ts";

const sql = useDb();
const tag = randomUUID().slice(0, 8);
const src = (name: string) => `reconcile-${tag}-${name}`;
const service = () => ({ authorization: `Bearer ${stack().info.serviceRoleKey}` });
const S = 1000;

interface Seeded extends WireEvent {
  receivedAt: number;
}

interface FindingRow {
  id: number;
  run_id: number;
  type: string;
  source: string;
  sequence_id: number | null;
  event_id: string | null;
  category: string | null;
  details: Record<string, unknown>;
  repaired: boolean;
  repair_note: string | null;
}

/** POSTs a run, retrying while another run (the scheduler's) holds the lock. */
async function reconcile(body: unknown = { trigger: "manual" }): Promise<ReconcileReport> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await fetchJson<ReconcileReport & { error?: { code: string } }>(
      functionUrl("reconcile"),
      {
        method: "POST",
        headers: { ...service(), "content-type": "application/json" },
        body: JSON.stringify(body),
      },
    );
    if (res.status === 200) return res.body;
    if (res.status !== 409 || Date.now() > deadline) {
      throw new Error(`reconcile answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    expect(res.body.error?.code).toBe("run_in_progress");
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs reconcile until every event stored so far has been read. */
async function catchUp(): Promise<void> {
  await eventually(
    async () => {
      await reconcile();
      const [row] = await sql<{ unread: number }[]>`
      select count(*)::int as unread from public.monitoring_events
      where seq > (select last_seq from cutover.reconcile_state)`;
      expect(row!.unread).toBe(0);
    },
    60_000,
    1000,
  );
}

/** Holds the run lock while `arrange` builds rows, so no run sees them half-built. */
async function withRunLock<T>(arrange: () => Promise<T>): Promise<T> {
  const conn = await sql.reserve();
  try {
    await conn`select pg_advisory_lock(hashtextextended(${RUN_LOCK_KEY}, 0))`;
    try {
      return await arrange();
    } finally {
      await conn`select pg_advisory_unlock(hashtextextended(${RUN_LOCK_KEY}, 0))`;
    }
  } finally {
    conn.release();
  }
}

interface Spec {
  source: string;
  sequence_id: number;
  category: Category;
  event_type?: string;
  data?: Record<string, unknown>;
  /** Event time and receipt, epoch ms. */
  at: number;
  /** Relay it through ws-fanout (default true). */
  relay?: boolean;
  /** Its key in the returned map (default `source:sequence_id`). */
  label?: string;
}

/**
 * Stores events as ingest would (wire fields, canonical checksum, both
 * routes, outbox row), then has ws-fanout deliver them and waits for their
 * ledger rows. Returns them by `source:sequence_id`.
 */
async function seed(specs: Spec[]): Promise<Map<string, Seeded>> {
  const out = new Map<string, Seeded>();
  for (const s of specs) {
    const event: Seeded = {
      id: randomUUID(),
      source: s.source,
      sequence_id: s.sequence_id,
      event_type: s.event_type ?? `${s.category}.sample`,
      category: s.category,
      timestamp: new Date(s.at).toISOString(),
      data: s.data ?? { n: s.sequence_id, note: `event ${s.sequence_id}` },
      receivedAt: s.at,
    };
    const alg = DEFAULT_CHECKSUM_ALG[s.category];
    const checksum = await checksumEvent(event, alg);
    await sql.begin(async (tx) => {
      await tx`
        insert into public.monitoring_events
          (id, source, sequence_id, event_type, category, "timestamp", data, checksum, checksum_alg,
           routes, received_at)
        values (${event.id}, ${event.source}, ${event.sequence_id}, ${event.event_type},
          ${event.category}, ${event.timestamp}, ${JSON.stringify(event.data)}::text::jsonb,
          ${checksum}, ${alg}, ${["websocket", "realtime"]}, ${new Date(event.receivedAt)})`;
      if (s.relay !== false) {
        await tx`insert into cutover.relay_outbox (event_id, event_time, source, sequence_id)
          values (${event.id}, ${event.timestamp}, ${event.source}, ${event.sequence_id})`;
      }
    });
    out.set(s.label ?? `${s.source}:${s.sequence_id}`, event);
  }
  const relayed = specs.filter((s) => s.relay !== false).map((s) =>
    out.get(s.label ?? `${s.source}:${s.sequence_id}`)!
  );
  const res = await fetchJson(functionUrl("ws-fanout", "/relay"), {
    method: "POST",
    headers: { ...service(), "content-type": "application/json" },
    body: JSON.stringify({ events: relayed.map((e) => ({ id: e.id, event_time: e.timestamp })) }),
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  await eventually(async () => {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from cutover.ws_delivery_ledger
      where event_id = any(${relayed.map((e) => e.id)}::uuid[])`;
    expect(row!.n).toBe(relayed.length);
  }, 15_000);
  return out;
}

/** Sets when ws-fanout "delivered" an event: `delay` ms after its receipt. */
async function deliveredAfter(event: Seeded, delay: number): Promise<void> {
  await sql`update cutover.ws_delivery_ledger set delivered_at = ${new Date(
    event.receivedAt + delay,
  )}
            where event_id = ${event.id}`;
}

async function findingsOf(sources: string[]): Promise<FindingRow[]> {
  const rows = await sql<FindingRow[]>`
    select id::int, run_id::int, type, source, sequence_id::int, event_id, category, details,
           repaired, repair_note
    from cutover.reconcile_findings where source = any(${sources}) order by source, sequence_id, type`;
  return rows;
}

async function reportsSince(runId: number): Promise<ReconcileReport[]> {
  const rows = await sql<{ report: ReconcileReport }[]>`
    select report from cutover.reconcile_runs
    where id > ${runId} and status = 'succeeded' order by id`;
  return rows.map((r) => r.report);
}

async function lastRunId(): Promise<number> {
  const [row] = await sql<
    { id: number | null }[]
  >`select max(id)::int as id from cutover.reconcile_runs`;
  return row!.id ?? 0;
}

/** Judged and matched per source, summed over reports. */
function bySource(reports: ReconcileReport[], sources: string[]) {
  const out: Record<string, { judged: number; matched: number }> = {};
  for (const s of sources) out[s] = { judged: 0, matched: 0 };
  for (const r of reports) {
    for (const s of r.sources) {
      if (!out[s.source]) continue;
      out[s.source]!.judged += s.judged;
      out[s.source]!.matched += s.matched;
    }
  }
  return out;
}

describe("reconcile", () => {
  const main = src("main");
  const order = src("order");
  const gap = src("gap");
  const semantic = src("semantic");
  const presence = src("presence");
  const dup = src("dup");
  const mine = [main, order, gap, semantic, presence, dup];
  const T0 = Date.now() - 10 * 60 * S; // ten minutes ago: past the buffer and the max delay
  let seeded: Map<string, Seeded>;
  let judgedIn: number;

  it("answers only the service role, and validates the request", async () => {
    const url = functionUrl("reconcile");
    const none = await fetchJson<{ error?: { code: string } }>(url, { method: "POST" });
    expect(none.status).toBe(401);
    const anon = await fetchJson<{ error: { code: string } }>(url, {
      method: "POST",
      headers: { authorization: `Bearer ${stack().info.anonKey}` },
    });
    expect(anon.status).toBe(403);
    expect(anon.body.error.code).toBe("forbidden");
    const post = (body: string, type = "application/json") =>
      fetchJson<{ error: { code: string; message: string } }>(url, {
        method: "POST",
        headers: { ...service(), "content-type": type },
        body,
      });
    // Holding the run lock: bad input is refused before any run is attempted.
    await withRunLock(async () => {
      const before = await lastRunId();
      expect((await post('{"trigger":"hourly"}')).body.error).toMatchObject({
        code: "invalid_body",
        message: expect.stringContaining("trigger"),
      });
      expect((await post('{"dry_run":"yes"}')).status).toBe(400);
      expect((await post('{"extra":1}')).body.error.message).toContain("unknown field");
      expect((await post("{nope")).body.error.code).toBe("malformed_json");
      expect((await post("trigger=manual", "text/plain")).status).toBe(415);
      expect((await post("x".repeat(5000))).status).toBe(413);
      expect((await post('{"trigger":"schedule"}')).status).toBe(409);
      expect(await lastRunId()).toBe(before);
    });
    const wrong = await fetchJson(url, { method: "PUT", headers: service() });
    expect(wrong.status).toBe(405);
    const q = await fetchJson<{ error: { code: string } }>(
      functionUrl("reconcile", "/findings?type=lost"),
      { headers: service() },
    );
    expect(q.status).toBe(400);
    expect(q.body.error.code).toBe("invalid_query");
  });

  it("refuses a second run while one is in progress (409), and a dry run records nothing", async () => {
    await withRunLock(async () => {
      const res = await fetchJson<{ error: { code: string } }>(functionUrl("reconcile"), {
        method: "POST",
        headers: service(),
      });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe("run_in_progress");
    });
    const dry = await reconcile({ dry_run: true });
    expect(dry).toMatchObject({ run_id: null, dry_run: true, trigger: "manual" });
    expect(dry.categories.critical).toHaveProperty("consistency");
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from cutover.reconcile_runs where report ->> 'dry_run' = 'true'`;
    expect(row!.n).toBe(0);
  });

  it("finds exactly the seeded defects, with ids, in one run", async () => {
    await catchUp();
    const baseline = await lastRunId();
    seeded = await withRunLock(async () => {
      const events = await seed([
        // main: critical, every defect of a pair
        ...[1, 2, 3, 4, 5, 6].map((n) => ({
          source: main,
          sequence_id: n,
          category: "critical" as const,
          at: T0 + n * S,
        })),
        // order: seq 3 received before seq 2 (out of order, within the buffer)
        { source: order, sequence_id: 1, category: "system", at: T0 },
        { source: order, sequence_id: 3, category: "system", at: T0 + 10 * S },
        { source: order, sequence_id: 2, category: "system", at: T0 + 20 * S },
        { source: order, sequence_id: 4, category: "system", at: T0 + 30 * S },
        // gap: seq 3 was never sent
        ...[1, 2, 4].map((n) => ({
          source: gap,
          sequence_id: n,
          category: "system" as const,
          at: T0,
        })),
        // semantic: performance numbers re-encoded slightly (fine) and changed (not fine)
        ...[1, 2].map((n) => ({
          source: semantic,
          sequence_id: n,
          category: "performance" as const,
          data: { latency_ms: 1000, host: "a" },
          at: T0,
        })),
        // presence: debug content differs entirely (fine)
        { source: presence, sequence_id: 1, category: "debug", at: T0 },
        // dup: the producer reused sequence id 1 two seconds later (another event id)
        { source: dup, sequence_id: 1, category: "critical", at: T0 },
        { source: dup, sequence_id: 1, category: "critical", at: T0 + 2 * S, label: "dup:again" },
      ]);
      for (const e of events.values()) await deliveredAfter(e, 200);
      const ev = (s: string, n: number) => events.get(`${s}:${n}`)!;
      // main 2: the WebSocket path lost it (its ledger row is gone).
      await sql`delete from cutover.ws_delivery_ledger where event_id = ${ev(main, 2).id}`;
      // main 3: ws-fanout sent a corrupted payload.
      await sql`update cutover.ws_delivery_ledger
        set payload = jsonb_set(payload, '{data,note}', '"tampered"'), checksum = repeat('0', 64)
        where event_id = ${ev(main, 3).id}`;
      // main 4: delivered 90 s late (after the 30 s buffer, within the 5 min max delay).
      await deliveredAfter(ev(main, 4), 90 * S);
      // main 5: the Realtime path lost it (its event row is gone; ws-fanout had sent it).
      await sql`delete from public.monitoring_events where id = ${ev(main, 5).id}`;
      // semantic 1: within 0.1 %; semantic 2: 10 % off.
      await sql`update cutover.ws_delivery_ledger
        set payload = jsonb_set(payload, '{data,latency_ms}', '1000.5'), checksum = 'ffffffff'
        where event_id = ${ev(semantic, 1).id}`;
      await sql`update cutover.ws_delivery_ledger
        set payload = jsonb_set(payload, '{data,latency_ms}', '1100')
        where event_id = ${ev(semantic, 2).id}`;
      // presence 1: anything goes for debug.
      await sql`update cutover.ws_delivery_ledger
        set payload = jsonb_set(payload, '{data}', '{"other": true}'), checksum = 'ffffffff'
        where event_id = ${ev(presence, 1).id}`;
      return events;
    });
    const ev = (s: string, n: number) => seeded.get(`${s}:${n}`)!;

    const findings = await eventually(
      async () => {
        await reconcile();
        const rows = await findingsOf(mine);
        expect(rows).toHaveLength(7);
        return rows;
      },
      60_000,
      1000,
    );

    expect(findings.map((f) => [f.source, f.sequence_id, f.type, f.event_id])).toEqual([
      [dup, 1, "duplicate", seeded.get("dup:again")!.id],
      [gap, 3, "producer_gap", null],
      [main, 2, "missing_on_websocket", ev(main, 2).id],
      [main, 3, "checksum_mismatch", ev(main, 3).id],
      [main, 4, "late", ev(main, 4).id],
      [main, 5, "missing_on_realtime", ev(main, 5).id],
      [semantic, 2, "checksum_mismatch", ev(semantic, 2).id],
    ]);
    const by = (s: string, type: string) =>
      findings.find((f) => f.source === s && f.type === type)!;
    expect(by(gap, "producer_gap")).toMatchObject({
      category: null,
      details: { from: 3, to: 3, count: 1, after: 2, before: 4 },
      repaired: false,
      repair_note: expect.stringContaining("never reached ingest"),
    });
    expect(by(main, "checksum_mismatch")).toMatchObject({
      category: "critical",
      details: { criterion: "exact", ledger_checksum: "0".repeat(64) },
      repaired: false,
    });
    expect(by(main, "late").details).toMatchObject({ late_side: "websocket", delay_ms: 90 * S });
    expect(by(main, "missing_on_realtime")).toMatchObject({
      category: "critical",
      repaired: false,
      repair_note: expect.stringContaining("store of record"),
    });
    expect(by(semantic, "checksum_mismatch").details).toMatchObject({
      criterion: "semantic",
      path: "data.latency_ms",
    });
    expect(by(dup, "duplicate")).toMatchObject({
      category: "critical",
      details: { side: "both", of_event_id: ev(dup, 1).id },
      repair_note: expect.stringContaining("not repairable"),
    });
    expect(by(main, "missing_on_websocket")).toMatchObject({
      repaired: true,
      repair_note: expect.stringContaining("set back from delivered to pending"),
    });

    // All in one run, which recorded them, and counted every seeded unit.
    judgedIn = by(main, "missing_on_websocket").run_id;
    expect(new Set(findings.map((f) => f.run_id))).toEqual(new Set([judgedIn]));
    const reports = (await reportsSince(baseline)).filter((r) => r.run_id! <= judgedIn);
    expect(bySource(reports, mine)).toEqual({
      [main]: { judged: 6, matched: 2 },
      [order]: { judged: 4, matched: 4 },
      [gap]: { judged: 3, matched: 3 },
      [semantic]: { judged: 2, matched: 1 },
      [presence]: { judged: 1, matched: 1 },
      [dup]: { judged: 2, matched: 1 },
    });
    const report = reports.find((r) => r.run_id === judgedIn)!;
    expect(report.sources.find((s) => s.source === main)?.consistency).toBeCloseTo(1 / 3, 12);
    expect(report.findings.new).toBeGreaterThanOrEqual(6);
    expect(report.repairs.re_relayed).toBeGreaterThanOrEqual(1);
    expect(report.producer_gaps.missing_ids).toBeGreaterThanOrEqual(1);
    for (const stats of Object.values(report.categories)) {
      expect(stats.consistency).toBe(stats.judged === 0 ? null : stats.matched / stats.judged);
    }
    // critical tolerates no mismatch: an alert was raised for it.
    expect(report.alerts.map((a) => a.category)).toContain("critical");
    const [alert] =
      await sql`select category, threshold, mismatch_rate from cutover.reconcile_alerts
      where run_id = ${judgedIn} and category = 'critical'`;
    expect(alert).toMatchObject({ category: "critical", threshold: 0 });

    // The dashboard's read API serves the same rows.
    const api = await fetchJson<{ findings: FindingRow[]; next_before_id: number | null }>(
      functionUrl("reconcile", `/findings?run_id=${judgedIn}&source=${main}&limit=2`),
      { headers: service() },
    );
    expect(api.status).toBe(200);
    expect(api.body.findings.map((f) => f.sequence_id)).toEqual([5, 4]);
    const next = await fetchJson<{ findings: FindingRow[]; next_before_id: number | null }>(
      functionUrl(
        "reconcile",
        `/findings?run_id=${judgedIn}&source=${main}&limit=2&before_id=${api.body.next_before_id}`,
      ),
      { headers: service() },
    );
    expect(next.body.findings.map((f) => f.sequence_id)).toEqual([3, 2]);
    const typed = await fetchJson<{ findings: FindingRow[] }>(
      functionUrl("reconcile", `/findings?type=late&category=critical&source=${main}`),
      { headers: service() },
    );
    expect(typed.body.findings.map((f) => f.event_id)).toEqual([ev(main, 4).id]);
    const runs = await fetchJson<{ runs: { id: number; report: ReconcileReport }[] }>(
      functionUrl("reconcile", "/runs?limit=50"),
      { headers: service() },
    );
    expect(runs.body.runs.find((r) => r.id === judgedIn)?.report.run_id).toBe(judgedIn);
  }, 150_000);

  it("adds no finding on a second run over the same data", async () => {
    // What was found, not how its repair is going (a later run may confirm a re-relay).
    const found = async () =>
      (await findingsOf(mine)).map(({ repaired: _r, repair_note: _n, ...f }) => f);
    const before = await found();
    const report = await reconcile();
    expect(await found()).toEqual(before);
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from cutover.reconcile_findings
      where run_id = ${report.run_id} and source = any(${mine})`;
    expect(row!.n).toBe(0);
  });

  it("reads only what is new: runs' windows are contiguous and sum to the rows added", async () => {
    await catchUp();
    const baseline = await lastRunId();
    const fresh = src("incremental");
    await withRunLock(async () => {
      const events = await seed([1, 2, 3].map((n) => ({
        source: fresh,
        sequence_id: n,
        category: "system" as const,
        at: T0 + n * S,
      })));
      for (const e of events.values()) await deliveredAfter(e, 100);
    });
    await eventually(
      async () => {
        await reconcile();
        const reports = await reportsSince(baseline);
        expect(bySource(reports, [fresh])[fresh]).toEqual({ judged: 3, matched: 3 });
      },
      60_000,
      1000,
    );
    const reports = await reportsSince(baseline);
    // Nobody else writes events during this file: the runs read exactly these three
    // (and their ledger rows), however large the tables are.
    expect(reports.reduce((n, r) => n + r.read.events, 0)).toBe(3);
    expect(reports.reduce((n, r) => n + r.read.ledger_rows, 0)).toBe(3);
    for (let i = 1; i < reports.length; i++) {
      expect(reports[i]!.read.seq.from).toBe(reports[i - 1]!.read.seq.to);
      expect(reports[i]!.read.cursor.from).toBe(reports[i - 1]!.read.cursor.to);
    }
    const [tables] = await sql<{ events: number }[]>`
      select count(*)::int as events from public.monitoring_events`;
    expect(tables!.events).toBeGreaterThan(3);
  }, 120_000);

  it(
    "repairs the WebSocket path: the relay delivers the missing event and a later run finds it matched",
    async () => {
      const lost = seeded.get(`${main}:2`)!;
      const ledgered = await eventually(async () => {
        const [row] = await sql<{ cursor: string; checksum: string }[]>`
        select cursor, checksum from cutover.ws_delivery_ledger where event_id = ${lost.id}`;
        expect(row).toBeDefined();
        return row!;
      }, 15_000);
      expect(ledgered.checksum).toBe(await checksumEvent(lost, "sha256"));
      const [outbox] = await sql`select status, last_error from cutover.relay_outbox
      where event_id = ${lost.id}`;
      expect(outbox).toMatchObject({ status: "delivered" });

      const finding = await eventually(
        async () => {
          await reconcile();
          const [f] = await sql<FindingRow[]>`
        select run_id::int, repaired, repair_note from cutover.reconcile_findings
        where type = 'missing_on_websocket' and event_id = ${lost.id}`;
          expect(f!.repair_note).toContain("confirmed by run");
          return f!;
        },
        30_000,
        1000,
      );
      expect(finding.repaired).toBe(true);
      const confirmedBy = Number(/confirmed by run (\d+)/.exec(finding.repair_note!)![1]);
      const [confirming] = await reportsSince(confirmedBy - 1);
      expect(confirming!.run_id).toBe(confirmedBy);
      expect(confirming!.repairs.confirmed).toBeGreaterThanOrEqual(1);
      expect(confirming!.sources.find((s) => s.source === main)).toMatchObject({
        judged: 1,
        matched: 1,
      });
      // Still exactly the seven findings: the repaired event is not reported again.
      expect(await findingsOf(mine)).toHaveLength(7);
      const [pending] = await sql<{ n: number }[]>`
      select count(*)::int as n from cutover.reconcile_pending p
      join public.monitoring_events e on p.kind = 'event' and e.seq = p.ref
      where e.source = any(${mine})`;
      expect(pending!.n).toBe(0);
    },
    90_000,
  );

  it(
    "an event arriving after its successor, within the max delay, is not a producer gap",
    async () => {
      const ooo = src("late-arrival");
      const recent = Date.now() - 60 * S; // past the buffer window, inside the max delay
      await withRunLock(async () => {
        const events = await seed([
          { source: ooo, sequence_id: 1, category: "system", at: recent },
          { source: ooo, sequence_id: 3, category: "system", at: recent + 1 * S },
        ]);
        for (const e of events.values()) await deliveredAfter(e, 100);
      });
      const start = await lastRunId();
      const waiting = async () =>
        (await sql<{ n: number }[]>`
        select count(*)::int as n from cutover.reconcile_pending
        where kind = 'gap' and source = ${ooo} and gap_after = 1 and gap_before = 3`)[0]!.n;
      await eventually(
        async () => {
          await reconcile();
          expect(await waiting()).toBe(1);
        },
        60_000,
        1000,
      );
      await withRunLock(async () => {
        const events = await seed([
          { source: ooo, sequence_id: 2, category: "system", at: recent + 15 * S },
        ]);
        for (const e of events.values()) await deliveredAfter(e, 100);
      });
      await eventually(
        async () => {
          await reconcile();
          expect(await waiting()).toBe(0);
        },
        60_000,
        1000,
      );
      expect(await findingsOf([ooo])).toEqual([]);
      expect(bySource(await reportsSince(start - 1), [ooo])[ooo]).toEqual({
        judged: 3,
        matched: 3,
      });
    },
    150_000,
  );

  it("reports status, alerts and runs for the dashboard", async () => {
    const status = await fetchJson<{
      last_seq: number;
      watermark: string;
      lag_ms: number;
      pending: Record<string, number>;
    }>(functionUrl("reconcile", "/status"), { headers: service() });
    expect(status.status).toBe(200);
    expect(status.body.last_seq).toBeGreaterThan(0);
    expect(status.body.lag_ms).toBeGreaterThanOrEqual(30 * S - 2000);
    const alerts = await fetchJson<{ alerts: { run_id: number; category: string }[] }>(
      functionUrl("reconcile", "/alerts?category=critical&limit=500"),
      { headers: service() },
    );
    expect(alerts.body.alerts.some((a) => a.run_id === judgedIn)).toBe(true);
    const page = await fetchJson<{ runs: { id: number }[]; next_before_id: number | null }>(
      functionUrl("reconcile", "/runs?limit=1"),
      { headers: service() },
    );
    expect(page.body.runs).toHaveLength(1);
    expect(page.body.next_before_id).toBe(page.body.runs[0]!.id);
  });
});
