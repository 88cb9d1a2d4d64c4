/**
 * Helpers for the resilience and fault tests: the dlq-retry API, putting the
 * shared breakers, fault hooks and jobs back as they were, and the exact
 * account of deliveries (every acknowledged event delivered once to each
 * adapter it was routed to, none twice).
 */
import type postgres from "postgres";
import { expect } from "vitest";
import type { StackInfo } from "../../local/stack.ts";

/** Calls the dlq-retry function with the service-role key. */
export async function dlq<T = Record<string, unknown>>(
  info: StackInfo,
  method: string,
  rest = "",
  body?: unknown,
  key: string | null = info.serviceRoleKey,
): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(`${info.apiUrl}/functions/v1/dlq-retry${rest}`, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Local control API (service-role key). */
export async function control(info: StackInfo, path: string): Promise<number> {
  const res = await fetch(`${info.apiUrl}/_local/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${info.serviceRoleKey}` },
  });
  await res.text();
  return res.status;
}

/**
 * Both breakers closed with no restore ramp and a fresh window (calls made
 * before now are not judged), no connection-failure streak, no fault hooks.
 */
export async function resetResilience(sql: postgres.Sql): Promise<void> {
  await sql`
    update cutover.breaker_state set state = 'closed', version = version + 1, since = now(),
      open_until = null, closed_at = null, window_from = now(), probes_admitted = 0,
      probe_successes = 0, probe_failures = 0, probe_slow = 0, reason = 'test reset',
      conn_failures = 0,
      conn_failures_first_at = null, conn_failures_last_at = null`;
  await sql`delete from cutover.fault_injections`;
  await sql`delete from cutover.rollback_watch`;
}

/** Turns scheduled jobs on or off (the local scheduler re-reads the table every few seconds). */
export async function setJobs(sql: postgres.Sql, names: string[], enabled: boolean): Promise<void> {
  await sql`update cutover.scheduled_jobs set enabled = ${enabled} where name = any (${names})`;
}

/**
 * An event the producer was told is stored, with the routes ingest answered
 * (absent when the acknowledgement was a `duplicate`: a retry of a request
 * whose answer was lost; the stored row's routes count then).
 */
export interface Acked {
  id: string;
  routes?: string[];
}

export interface Account {
  acked: number;
  websocket: number;
  realtime: number;
  /** Events missing from an adapter they were routed to. */
  missing: { id: string; adapter: string }[];
  /** Events delivered more than once, or to an adapter they were not routed to. */
  extra: { id: string; adapter: string; count: number }[];
}

/**
 * The exact account of `acked` events: stored once; one ledger row each when
 * routed to `websocket`, none otherwise; one monitoring_events_live row each
 * when routed to `realtime` (postgres_changes mode), none otherwise.
 */
export async function account(sql: postgres.Sql, acked: Acked[]): Promise<Account> {
  const ids = acked.map((a) => a.id);
  const [stored, ledger, live] = await Promise.all([
    sql<{ id: string; n: number; routes: string[] }[]>`
      select id::text, count(*)::int as n, min(routes::text)::text[] as routes
      from public.monitoring_events
      where id = any (${ids}::uuid[]) group by id`,
    sql<{ id: string; n: number }[]>`
      select event_id::text as id, count(*)::int as n from cutover.ws_delivery_ledger
      where event_id = any (${ids}::uuid[]) group by event_id`,
    sql<{ id: string; n: number }[]>`
      select id::text, count(*)::int as n from public.monitoring_events_live
      where id = any (${ids}::uuid[]) group by id`,
  ]);
  const count = (rows: { id: string; n: number }[]) => new Map(rows.map((r) => [r.id, r.n]));
  const s = count(stored), l = count(ledger), r = count(live);
  const storedRoutes = new Map(stored.map((row) => [row.id, row.routes]));
  const out: Account = { acked: acked.length, websocket: 0, realtime: 0, missing: [], extra: [] };
  for (const a of acked) {
    if ((s.get(a.id) ?? 0) !== 1) {
      out.missing.push({ id: a.id, adapter: "store" });
    }
    const routes = a.routes ?? storedRoutes.get(a.id) ?? [];
    if (a.routes && storedRoutes.has(a.id)) {
      // What the producer was told is what was stored.
      expect(storedRoutes.get(a.id)).toEqual(a.routes);
    }
    for (const [adapter, map] of [["websocket", l], ["realtime", r]] as const) {
      const n = map.get(a.id) ?? 0;
      const routed = routes.includes(adapter);
      if (routed && n === 1) out[adapter]++;
      else if (routed && n === 0) out.missing.push({ id: a.id, adapter });
      else if (n > 0) out.extra.push({ id: a.id, adapter, count: n });
    }
  }
  return out;
}

/** Polls `account` until nothing is missing (or the timeout), then asserts it is exact. */
export async function expectExactAccount(
  sql: postgres.Sql,
  acked: Acked[],
  timeoutMs = 60_000,
): Promise<Account> {
  const deadline = Date.now() + timeoutMs;
  let last = await account(sql, acked);
  while (last.missing.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    last = await account(sql, acked);
  }
  expect(last.extra).toEqual([]);
  expect(last.missing.slice(0, 10)).toEqual([]);
  expect(last.missing.length).toBe(0);
  return last;
}

/** Waits until `check` returns a truthy value; throws with `what` after the timeout. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A producer's view of one request: every answer it got on the way to a 200. */
export interface Delivery {
  acked: Acked[];
  /** Status of every attempt (0: no answer — connection refused or reset). */
  statuses: number[];
  /** Retry-After of every 429/503 answer. */
  retryAfter: (string | null)[];
}

/**
 * Sends one batch of events to ingest like a well-behaved producer: on
 * 429/502/503/504 or no answer it sends the SAME body again (ids make that
 * idempotent) after `retryMs`, until a 200 or `deadline`. Other statuses throw.
 */
export async function sendUntilAcked(
  info: StackInfo,
  events: Record<string, unknown>[],
  options: { retryMs?: number; deadline?: number } = {},
): Promise<Delivery> {
  const body = JSON.stringify({ events });
  const out: Delivery = { acked: [], statuses: [], retryAfter: [] };
  const deadline = options.deadline ?? Date.now() + 60_000;
  for (;;) {
    let status = 0;
    let text = "";
    let retryAfter: string | null = null;
    try {
      const res = await fetch(`${info.apiUrl}/functions/v1/ingest`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${info.producerKey}`,
          "content-type": "application/json",
        },
        body,
        signal: AbortSignal.timeout(15_000),
      });
      status = res.status;
      retryAfter = res.headers.get("retry-after");
      text = await res.text();
    } catch {
      status = 0;
    }
    out.statuses.push(status);
    if (status === 200) {
      const answer = JSON.parse(text) as {
        results: { id: string; status: string; routes?: string[] }[];
      };
      for (const r of answer.results) {
        if (r.status === "rejected") throw new Error(`rejected: ${JSON.stringify(r)}`);
        out.acked.push(r.routes ? { id: r.id, routes: r.routes } : { id: r.id });
      }
      return out;
    }
    if (![0, 429, 502, 503, 504].includes(status)) {
      throw new Error(`ingest answered ${status}: ${text.slice(0, 300)}`);
    }
    if (status === 429 || status === 503) out.retryAfter.push(retryAfter);
    if (Date.now() > deadline) throw new Error(`not acknowledged in time; last status ${status}`);
    await new Promise((r) => setTimeout(r, options.retryMs ?? 300));
  }
}

let sequence = 0;

/** A valid event of `category` from a fresh source (distinct sources keep relays independent). */
export function freshEvent(
  category: string,
  source = `f-${crypto.randomUUID().slice(0, 12)}`,
): Record<string, unknown> {
  sequence++;
  return {
    source,
    sequence_id: sequence,
    event_type: `${category}.sample`,
    category,
    timestamp: new Date().toISOString(),
    data: { n: sequence },
  };
}
