/**
 * The flags API over HTTP against the running stack: service-role only,
 * validated writes with optimistic concurrency and an audit trail, a
 * filterable paged audit log, `explain` agreeing with what ingest stores, and
 * a change reaching ingest within 5 s. Every flag changed here is put back in
 * afterAll: the stack is shared with the other test files.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRoleJwt } from "../../local/keys.ts";
import {
  builtInDefaults,
  type CategoryFlags,
  type Settings,
} from "../../shared/config/settings.ts";
import { CATEGORIES, type Category } from "../../shared/events/schema.ts";
import { bucketOf } from "../../shared/routing/bucket.ts";
import { useDb } from "../helpers/db.ts";
import { ingest, makeEvent } from "../helpers/events.ts";
import { fetchJson, functionUrl, stack } from "../helpers/http.ts";

const sql = useDb();

interface Snapshot {
  version: number;
  categories: Record<Category, CategoryFlags & { updated_at: string }>;
  settings: Settings;
  rules: { pattern: string }[];
  problems: string[];
}

interface AuditEntry {
  id: number;
  changed_at: string;
  actor: string;
  table_name: string;
  key: string;
  action: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  reason: string | null;
  config_version: number;
}

interface ErrorBody {
  error: {
    code: string;
    message: string;
    current_version?: number;
    issues?: { path: string; message: string }[];
  };
}

const url = (rest = "") => functionUrl("flags", rest);
const service = () => ({ authorization: `Bearer ${stack().info.serviceRoleKey}` });

function call<T = unknown>(
  method: string,
  rest: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return fetchJson<T>(url(rest), {
    method,
    headers: {
      ...service(),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function read(): Promise<Snapshot> {
  const res = await call<Snapshot>("GET", "");
  expect(res.status).toBe(200);
  return res.body;
}

/** Everything a write could touch, straight from the database. */
async function dbState() {
  const [row] = await sql<
    {
      version: string;
      flags: unknown;
      settings: unknown;
      audit: number;
      last_audit: string | null;
    }[]
  >`
    select (select version from cutover.config_state) as version,
           (select jsonb_object_agg(category, to_jsonb(f) - 'updated_at') from cutover.category_flags f) as flags,
           (select jsonb_object_agg(key, value) from cutover.settings) as settings,
           (select count(*)::int from cutover.flag_audit) as audit,
           (select max(id)::text from cutover.flag_audit) as last_audit`;
  return row!;
}

/** Asserts that `fn` changes no flag, setting, version or audit row. */
async function changesNothing(fn: () => Promise<unknown>) {
  const before = await dbState();
  await fn();
  expect(await dbState()).toEqual(before);
}

async function auditSince(id: number) {
  return await sql<AuditEntry[]>`
    select id::int, actor, table_name, key, action, before, after, reason, config_version::int
    from cutover.flag_audit where id > ${id} order by id`;
}

async function lastAuditId(): Promise<number> {
  const [row] = await sql<
    { id: number }[]
  >`select coalesce(max(id), 0)::int as id from cutover.flag_audit`;
  return row!.id;
}

let initial: Snapshot;

beforeAll(async () => {
  initial = await read();
});

// Puts every category and setting back as the file found them, through the API itself.
afterAll(async () => {
  const current = await read();
  const changes = [
    ...CATEGORIES.map((category) => {
      const { updated_at: _, ...flags } = initial.categories[category];
      return { type: "category", category, changes: flags };
    }),
    ...Object.entries(initial.settings)
      .filter(([key, value]) =>
        JSON.stringify(value) !== JSON.stringify(current.settings[key as keyof Settings])
      )
      .map(([key, value]) => ({ type: "setting", key, value })),
  ];
  const res = await call<{ changed: boolean }>("POST", "/batch", {
    expected_version: current.version,
    reason: "flags.test.ts: restore what the tests changed",
    changes,
  });
  expect(res.status).toBe(200);
  const after = await read();
  expect(after.settings).toEqual(initial.settings);
  for (const c of CATEGORIES) {
    expect({ ...after.categories[c], updated_at: 0 }).toEqual({
      ...initial.categories[c],
      updated_at: 0,
    });
  }
});

describe("flags: who may call", () => {
  it("answers 401 without a token or with one that is not a project JWT (the gateway)", async () => {
    expect((await fetchJson(url())).status).toBe(401);
    const garbage = await fetchJson(url(), { headers: { authorization: "Bearer not-a-jwt" } });
    expect(garbage.status).toBe(401);
    const producer = await fetchJson(url(), {
      headers: { authorization: `Bearer ${stack().info.producerKey}` },
    });
    expect(producer.status).toBe(401);
  });

  it("answers 403 to the anon key and to a signed-in user's JWT, and they change nothing", async () => {
    const user = await signRoleJwt(stack().jwtSecret, "authenticated", { sub: randomUUID() });
    for (const token of [stack().info.anonKey, user]) {
      const auth = { authorization: `Bearer ${token}` };
      const get = await fetchJson<ErrorBody>(url(), { headers: auth });
      expect(get.status).toBe(403);
      expect(get.body.error.code).toBe("forbidden");
      expect(get.body.error.message).toMatch(/service role/);
      await changesNothing(async () => {
        const patch = await fetchJson<ErrorBody>(url("/categories/debug"), {
          method: "PATCH",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({
            expected_version: initial.version,
            reason: "should be refused",
            changes: { enabled: true },
          }),
        });
        expect(patch.status).toBe(403);
        const audit = await fetchJson(url("/audit"), { headers: auth });
        expect(audit.status).toBe(403);
      });
    }
  });

  it("answers CORS preflights for the dashboard", async () => {
    const res = await fetch(url("/categories/debug"), {
      method: "OPTIONS",
      headers: {
        origin: "http://127.0.0.1:54323",
        "access-control-request-method": "PATCH",
        "access-control-request-headers": "authorization, content-type, x-cutover-actor",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-methods")).toContain("PATCH");
    for (const h of ["authorization", "content-type", "apikey", "x-client-info"]) {
      expect(res.headers.get("access-control-allow-headers")).toContain(h);
    }
  });
});

describe("flags: reading", () => {
  it("returns the version, every category, every setting and the rules as stored", async () => {
    const snap = await read();
    const db = await dbState();
    expect(snap.version).toBe(Number(db.version));
    expect(Object.keys(snap.categories).sort()).toEqual([...CATEGORIES].sort());
    const stored = db.flags as Record<string, Record<string, unknown>>;
    for (const c of CATEGORIES) {
      const { category: _, ...flags } = stored[c]!;
      expect({ ...snap.categories[c], updated_at: undefined }).toEqual({
        ...flags,
        percentage: Number(flags.percentage),
        updated_at: undefined,
      });
    }
    expect(Object.keys(snap.settings).sort()).toEqual(
      Object.keys(builtInDefaults().settings).sort(),
    );
    expect(snap.settings).toEqual(db.settings);
    const [rules] = await sql<
      { n: number }[]
    >`select count(*)::int as n from cutover.classification_rules`;
    expect(snap.rules).toHaveLength(rules!.n);
    expect(snap.problems).toEqual([]);
  });
});

describe("flags: seeding", () => {
  it("re-seeding, as every function instance does at start, moves no version and writes no audit row", async () => {
    await changesNothing(() =>
      sql`select cutover.seed_config(${sql.json(JSON.parse(JSON.stringify(builtInDefaults())))})`
    );
  });
});

describe("flags: writing", () => {
  it("applies a valid change: new version, new row, one audit row with actor, reason, before and after", async () => {
    const before = await read();
    const mark = await lastAuditId();
    const res = await call<
      { changed: boolean; version: number; flags: CategoryFlags; changed_fields: string[] }
    >(
      "PATCH",
      "/categories/user_activity",
      {
        expected_version: before.version,
        reason: "start the user_activity rollout",
        changes: { enabled: true, percentage: 12.5, adapters: ["realtime", "websocket"] },
      },
      { "x-cutover-actor": "alice" },
    );
    expect(res.status).toBe(200);
    expect(res.body.changed).toBe(true);
    expect(res.body.version).toBeGreaterThan(before.version);
    expect(res.body.flags).toMatchObject({
      enabled: true,
      percentage: 12.5,
      adapters: ["websocket", "realtime"],
    });
    expect(res.body.changed_fields.sort()).toEqual(["adapters", "enabled", "percentage"]);

    const [row] = await sql`
      select enabled, percentage::float8 as percentage, adapters from cutover.category_flags
      where category = 'user_activity'`;
    expect(row).toEqual({ enabled: true, percentage: 12.5, adapters: ["websocket", "realtime"] });
    expect(Number((await dbState()).version)).toBe(res.body.version);

    const audit = await auditSince(mark);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: "service_role:alice",
      table_name: "category_flags",
      key: "user_activity",
      action: "update",
      reason: "start the user_activity rollout",
      config_version: before.version,
    });
    const { updated_at: _, ...was } = before.categories.user_activity;
    expect(audit[0]!.before).toEqual({ category: "user_activity", ...was });
    expect(audit[0]!.after).toEqual({
      category: "user_activity",
      ...was,
      enabled: true,
      percentage: 12.5,
      adapters: ["websocket", "realtime"],
    });
  });

  it("answers a write that changes no value with changed: false, no new version and no audit row", async () => {
    const current = await read();
    await changesNothing(async () => {
      const flags = current.categories.user_activity;
      const res = await call<{ changed: boolean; version: number }>(
        "PATCH",
        "/categories/user_activity",
        {
          expected_version: current.version,
          reason: "same again",
          changes: { percentage: flags.percentage, adapters: [...flags.adapters].reverse() },
        },
      );
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ changed: false, version: current.version });
      const setting = await call<{ changed: boolean }>("PUT", "/settings/circuit_breaker", {
        expected_version: current.version,
        reason: "same again",
        // The same value with its keys in another order.
        value: Object.fromEntries(Object.entries(current.settings.circuit_breaker).reverse()),
      });
      expect(setting.status).toBe(200);
      expect(setting.body.changed).toBe(false);
    });
  });

  it("refuses a stale expected_version with 409 and the current version, changing nothing", async () => {
    const current = await read();
    await changesNothing(async () => {
      const res = await call<ErrorBody>("PATCH", "/categories/critical", {
        expected_version: current.version - 1,
        reason: "based on an old read",
        changes: { percentage: 1 },
      });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe("version_conflict");
      expect(res.body.error.current_version).toBe(current.version);
      const put = await call<ErrorBody>("PUT", "/settings/global_override", {
        expected_version: current.version + 1,
        reason: "from the future",
        value: "websocket_only",
      });
      expect(put.status).toBe(409);
      const batch = await call<ErrorBody>("POST", "/batch", {
        expected_version: 0,
        reason: "stale batch",
        changes: [{ type: "setting", key: "retention_days", value: 7 }],
      });
      expect(batch.status).toBe(409);
    });
  });

  it("lets exactly one of two concurrent writes from the same version through", async () => {
    const current = await read();
    const attempt = (percentage: number) =>
      call<{ version?: number }>("PATCH", "/categories/system", {
        expected_version: current.version,
        reason: "racing writers",
        changes: { percentage },
      });
    const results = await Promise.all([attempt(90), attempt(80)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const winner = results.find((r) => r.status === 200)!;
    const [row] = await sql<{ percentage: number }[]>`
      select percentage::float8 as percentage from cutover.category_flags where category = 'system'`;
    expect(row!.percentage).toBe(winner === results[0] ? 90 : 80);
  });

  it.each<[string, string, string, unknown, string]>([
    ["a percentage above 100", "PATCH", "/categories/performance", {
      changes: { percentage: 150 },
    }, "changes.percentage"],
    ["an unknown adapter", "PATCH", "/categories/performance", {
      changes: { adapters: ["kafka"] },
    }, "changes.adapters.0"],
    ["an unknown field", "PATCH", "/categories/performance", {
      changes: { percent: 5 },
    }, "changes"],
    ["a missing reason", "PATCH", "/categories/performance", {
      reason: undefined,
      changes: { enabled: false },
    }, "reason"],
    ["an unknown override", "PUT", "/settings/global_override", {
      value: "kafka_only",
    }, "value"],
    ["an unknown primary adapter", "PUT", "/settings/primary_adapter", {
      value: "kafka",
    }, "value"],
    ["an error threshold of 0", "PUT", "/settings/adapter_health", {
      value: {
        websocket: { error_threshold: 0, latency_threshold_ms: 200 },
        realtime: { error_threshold: 0.05, latency_threshold_ms: 150 },
      },
    }, "value.websocket.error_threshold"],
    ["a breaker without half-open probes", "PUT", "/settings/circuit_breaker", {
      value: {
        enabled: true,
        recovery_time_s: 30,
        latency_multiplier: 2,
        half_open_requests: 0,
        minimum_calls: 20,
        window_s: 60,
        slow_call_rate_threshold: 0.5,
      },
    }, "value.half_open_requests"],
    ["a rollback error rate above 1", "PUT", "/settings/rollback", {
      value: {
        enabled: true,
        error_rate_threshold: 2,
        error_rate_duration_s: 300,
        latency_multiplier: 2,
        latency_duration_s: 600,
        connection_failures: 3,
        connection_failures_window_s: 60,
      },
    }, "value.error_rate_threshold"],
    ["a batch whose second change is invalid", "POST", "/batch", {
      changes: [
        { type: "category", category: "debug", changes: { enabled: true } },
        { type: "setting", key: "retention_days", value: 0 },
      ],
    }, "changes.1.value"],
  ])(
    "refuses %s with 400 naming the field, changing nothing",
    async (_n, method, path, body, field) => {
      const current = await read();
      await changesNothing(async () => {
        const res = await call<ErrorBody>(method, path, {
          expected_version: current.version,
          reason: "invalid on purpose",
          ...(body as object),
        });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe("invalid_body");
        expect(res.body.error.issues![0]!.path).toBe(field);
        expect(res.body.error.message).toContain(field);
      });
    },
  );

  it("answers 404, 405, 415 and 400 precisely for the wrong target, method, type, JSON or actor", async () => {
    const v = (await read()).version;
    const body = { expected_version: v, reason: "wrong target", value: 1 };
    await changesNothing(async () => {
      const category = await call<ErrorBody>("PATCH", "/categories/audit", body);
      expect([category.status, category.body.error.code]).toEqual([404, "unknown_category"]);
      const setting = await call<ErrorBody>("PUT", "/settings/colour", body);
      expect([setting.status, setting.body.error.code]).toEqual([404, "unknown_setting"]);
      const method = await call<ErrorBody>("DELETE", "/categories/debug");
      expect([method.status, method.headers.get("allow")]).toEqual([405, "PATCH, OPTIONS"]);
      const type = await fetchJson<ErrorBody>(url("/settings/retention_days"), {
        method: "PUT",
        headers: { ...service(), "content-type": "text/plain" },
        body: JSON.stringify({ ...body, value: 10 }),
      });
      expect([type.status, type.body.error.code]).toEqual([415, "unsupported_media_type"]);
      const json = await fetchJson<ErrorBody>(url("/settings/retention_days"), {
        method: "PUT",
        headers: { ...service(), "content-type": "application/json" },
        body: "{not json",
      });
      expect([json.status, json.body.error.code]).toEqual([400, "malformed_json"]);
      const actor = await call<ErrorBody>(
        "PUT",
        "/settings/retention_days",
        { ...body, value: 10 },
        {
          "x-cutover-actor": "x".repeat(101),
        },
      );
      expect([actor.status, actor.body.error.code]).toEqual([400, "invalid_actor"]);
    });
  });

  it("sets and clears the global override, applies a batch atomically under one version check", async () => {
    const start = await read();
    const mark = await lastAuditId();
    const on = await call<{ version: number; value: unknown }>("PUT", "/settings/global_override", {
      expected_version: start.version,
      reason: "drill: websocket only",
      value: "websocket_only",
    });
    expect(on.status).toBe(200);
    expect(on.body.value).toBe("websocket_only");
    const batch = await call<
      { changed: boolean; version: number; settings: Record<string, unknown> }
    >(
      "POST",
      "/batch",
      {
        expected_version: on.body.version,
        reason: "drill over",
        changes: [
          { type: "setting", key: "global_override", value: null },
          { type: "category", category: "debug", changes: { percentage: 5 } },
          {
            type: "setting",
            key: "rollback",
            value: { ...start.settings.rollback, enabled: false },
          },
        ],
      },
    );
    expect(batch.status).toBe(200);
    expect(batch.body.changed).toBe(true);
    const after = await read();
    expect(after.version).toBe(batch.body.version);
    expect(after.settings.global_override).toBeNull();
    expect(after.settings.rollback.enabled).toBe(false);
    expect(after.categories.debug.percentage).toBe(5);
    const [override] =
      await sql`select jsonb_typeof(value) as t from cutover.settings where key = 'global_override'`;
    expect(override!.t).toBe("null");

    const audit = await auditSince(mark);
    expect(audit.map((a) => [a.key, a.reason])).toEqual([
      ["global_override", "drill: websocket only"],
      ["debug", "drill over"],
      ["global_override", "drill over"],
      ["rollback", "drill over"],
    ]);
    expect(audit[0]).toMatchObject({
      before: { key: "global_override", value: null },
      after: { key: "global_override", value: "websocket_only" },
      actor: "service_role",
    });
  });
});

describe("flags: the audit log", () => {
  it("filters by actor, table, key and time, newest first, and pages without gaps", async () => {
    const actor = `pager-${randomUUID().slice(0, 8)}`;
    const [clock] = await sql<{ now: Date }[]>`select now()`;
    const since = clock!.now.toISOString();
    let version = (await read()).version;
    const written: string[] = [];
    // partitions_ahead_days: a setting no other part of the tests depends on.
    for (const [i, days] of [[1, 20], [2, 21], [3, 22], [4, 23], [5, 24]] as const) {
      const res = await call<{ version: number }>("PUT", "/settings/partitions_ahead_days", {
        expected_version: version,
        reason: `paging step ${i}`,
        value: days,
      }, { "x-cutover-actor": actor });
      expect(res.status).toBe(200);
      version = res.body.version;
      written.push(`paging step ${i}`);
    }
    const page = (q: string) =>
      call<{ entries: AuditEntry[]; next_before_id: number | null }>("GET", `/audit?${q}`);

    const all: AuditEntry[] = [];
    let cursor: number | null = null;
    let pages = 0;
    do {
      const res = await page(
        `actor=service_role:${actor}&limit=2${cursor ? `&before_id=${cursor}` : ""}`,
      );
      expect(res.status).toBe(200);
      expect(res.body.entries.length).toBeLessThanOrEqual(2);
      all.push(...res.body.entries);
      cursor = res.body.next_before_id;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(all.map((e) => e.reason)).toEqual([...written].reverse());
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => b - a));
    for (const e of all) {
      expect(e).toMatchObject({
        actor: `service_role:${actor}`,
        table_name: "settings",
        key: "partitions_ahead_days",
        action: "update",
      });
      expect(Object.keys(e).sort()).toEqual(
        [
          "action",
          "actor",
          "after",
          "before",
          "changed_at",
          "config_version",
          "id",
          "key",
          "reason",
          "table_name",
        ],
      );
    }
    expect(all.at(-1)!.after).toEqual({ key: "partitions_ahead_days", value: 20 });

    const byKey = await page(
      `table=settings&key=partitions_ahead_days&since=${encodeURIComponent(since)}`,
    );
    expect(byKey.body.entries.map((e) => e.reason)).toEqual([...written].reverse());
    const byTable = await page(`table=category_flags&actor=service_role:${actor}`);
    expect(byTable.body.entries).toEqual([]);
    const middle = all[2]!;
    const untilMiddle = await page(
      `actor=service_role:${actor}&until=${encodeURIComponent(middle.changed_at)}`,
    );
    expect(untilMiddle.body.entries.every((e) => e.changed_at < middle.changed_at)).toBe(true);
    const future = await page(
      `since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`,
    );
    expect(future.body).toEqual({ entries: [], next_before_id: null });

    const bad = await call<ErrorBody>("GET", "/audit?limit=501");
    expect([bad.status, bad.body.error.code]).toEqual([400, "invalid_query"]);
    const unknown = await call<ErrorBody>("GET", "/audit?order=asc");
    expect(unknown.status).toBe(400);
  });
});

interface Explanation {
  config_version: number;
  id: string;
  category: string;
  classified_by: string;
  legacy: boolean;
  bucket: number;
  threshold: number;
  adapters: string[];
  reason: string;
  explanation: string;
}

/** The first of `candidates` sources whose bucket in `category` is inside (or outside) `percentage`. */
function sourceWhere(category: Category, percentage: number, inside: boolean): string {
  for (let i = 0; i < 10_000; i++) {
    const s = `explain-${randomUUID().slice(0, 8)}`;
    if ((bucketOf(s, category) < percentage * 100) === inside) return s;
  }
  throw new Error("no source found");
}

/** Sends each event through explain and through ingest; both must agree on id and route. */
async function expectExplainMatchesIngest(events: Record<string, unknown>[]) {
  const explained: Explanation[] = [];
  for (const e of events) {
    const res = await call<Explanation>("POST", "/explain", e);
    expect(res.status).toBe(200);
    explained.push(res.body);
  }
  const stored = await ingest({ events });
  expect(stored.status).toBe(200);
  expect(stored.body.stored).toBe(events.length);
  for (const [i, x] of explained.entries()) {
    const result = stored.body.results[i]!;
    expect(result.id).toBe(x.id);
    expect(result.routes).toEqual(x.adapters);
    const [row] = await sql<{ routes: string[]; category: string; legacy: boolean }[]>`
      select routes, category, legacy from public.monitoring_events where id = ${x.id}`;
    expect(row).toEqual({ routes: x.adapters, category: x.category, legacy: x.legacy });
  }
  return explained;
}

describe("flags: explain and propagation to ingest", () => {
  it("explains what ingest does, and a percentage change reaches ingest within 5 s", async () => {
    // A settled config: the one the earlier tests left, seen by ingest too.
    const current = await read();
    const reset = await call<{ version: number }>("POST", "/batch", {
      expected_version: current.version,
      reason: "explain test: known starting point",
      changes: [
        { type: "setting", key: "global_override", value: null },
        { type: "setting", key: "primary_adapter", value: "websocket" },
        { type: "setting", key: "routing_key", value: "source" },
        ...([
          ["critical", { enabled: true, percentage: 100, adapters: ["websocket", "realtime"] }],
          ["performance", { enabled: true, percentage: 50, adapters: ["realtime"] }],
          ["user_activity", { enabled: true, percentage: 100, adapters: ["realtime"] }],
          ["system", { enabled: true, percentage: 100, adapters: ["websocket", "realtime"] }],
          ["debug", { enabled: false }],
        ] as const).map(([category, changes]) => ({ type: "category", category, changes })),
      ],
    });
    expect(reset.status).toBe(200);
    const events = [
      makeEvent({ event_type: "db.error" }),
      makeEvent({ event_type: "cache.hit_ratio", source: sourceWhere("performance", 50, true) }),
      makeEvent({ event_type: "cache.hit_ratio", source: sourceWhere("performance", 50, false) }),
      makeEvent({ event_type: "legacy.cpu" }),
      makeEvent({ event_type: "anything.else", category: "debug" }),
      makeEvent({ event_type: "user.click" }),
      makeEvent({ event_type: "misc.thing" }),
    ];
    const expected = [
      ["critical", "in_split", ["websocket", "realtime"]],
      ["performance", "in_split", ["websocket", "realtime"]],
      ["performance", "outside_split", ["websocket"]],
      ["system", "legacy", []],
      ["debug", "disabled", ["websocket"]],
      ["user_activity", "in_split", ["websocket", "realtime"]],
      ["system", "in_split", ["websocket", "realtime"]],
    ];
    // Ingest refreshes its cached config every 2 s: wait until it routes events of these very
    // shapes (same sources and types, other sequence ids) the new way. Any single probe could
    // be routed alike by the previous config, so all of them are checked.
    const settled = Date.now();
    for (let round = 0;; round++) {
      const probes = events.map((e) => ({ ...e, sequence_id: 1_000_000 + round }));
      const res = await ingest({ events: probes });
      expect(res.status).toBe(200);
      const routes = res.body.results.map((r) => r.routes);
      if (JSON.stringify(routes) === JSON.stringify(expected.map((x) => x[2]))) break;
      expect(Date.now() - settled, `ingest still routes ${JSON.stringify(routes)}`).toBeLessThan(
        10_000,
      );
      await new Promise((r) => setTimeout(r, 200));
    }

    const explained = await expectExplainMatchesIngest(events);
    expect(explained.map((x) => [x.category, x.reason, x.adapters])).toEqual(expected);
    expect(explained[0]!.classified_by).toContain("error");
    expect(explained[4]!.classified_by).toBe("producer");
    expect(explained[6]!.classified_by).toBe("fallback");
    expect(explained[1]!.threshold).toBe(5000);
    expect(explained[1]!.explanation).toContain(`bucket ${explained[1]!.bucket}`);

    // Critical down to 0 %: every new source leaves the split, so ingest's routes change.
    const before = await read();
    const change = await call<{ version: number }>("PATCH", "/categories/critical", {
      expected_version: before.version,
      reason: "propagation test: critical to 0 %",
      changes: { percentage: 0 },
    });
    expect(change.status).toBe(200);
    const changedAt = Date.now();
    let seen = false;
    while (Date.now() - changedAt < 5000) {
      const res = await ingest(makeEvent({ category: "critical" }));
      expect(res.status).toBe(200);
      const routes = res.body.results[0]!.routes;
      if (routes?.length === 1 && routes[0] === "websocket") {
        seen = true;
        break;
      }
      expect(routes).toEqual(["websocket", "realtime"]);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen, "ingest did not follow the change within 5 s").toBe(true);

    const [after] = await expectExplainMatchesIngest([makeEvent({ category: "critical" })]);
    expect(after).toMatchObject({
      config_version: change.body.version,
      reason: "outside_split",
      adapters: ["websocket"],
      threshold: 0,
    });
  });

  it("refuses an event ingest would refuse, with ingest's reason", async () => {
    const invalid = await call<ErrorBody>("POST", "/explain", makeEvent({ sequence_id: "seven" }));
    expect([invalid.status, invalid.body.error.code]).toEqual([400, "invalid_event"]);
    expect(invalid.body.error.message).toContain("sequence_id");
    const old = await call<ErrorBody>(
      "POST",
      "/explain",
      makeEvent({ timestamp: "2001-01-01T00:00:00Z" }),
    );
    expect([old.status, old.body.error.code]).toEqual([400, "timestamp_too_old"]);
  });
});
