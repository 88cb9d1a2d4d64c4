/**
 * WebSocket-path benchmarks (issue 4): end-to-end latency producer →
 * ws-fanout client (ingest → outbox → relay → ledger → backplane → socket)
 * at a steady 1,000 events/s and at the highest rate the stack sustains, with
 * 1 and 50 connected clients, and the fanout's outgoing messages/s. Target:
 * p99 under 50 ms at 1,000 events/s with 50 clients.
 *
 * Latency is taken per (client, event): from just before the producer's POST
 * to the moment the client's socket delivered the message. Clients filter on
 * the benchmark's own source, so other traffic does not count. 127.0.0.1
 * only; every cell is bounded in time and count. Relay batching (the
 * resilient relay's adaptive batching, up to 100 ms at 1,000 events/s) is
 * measured both as configured and switched off for the steady cells.
 *
 * Standalone: `npx tsx bench/fanout.ts [path/to/stack.json]` against a
 * running `npm start -- --instances ws-fanout=2`.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import postgres from "postgres";
import WS from "ws";
import type { StackInfo } from "../local/stack.ts";
import type { ServerMessage } from "../shared/fanout/protocol.ts";
import { percentile, printTable } from "./lib.ts";

export interface FanoutBenchContext {
  info: StackInfo;
  log: (line: string) => void;
  /** Seconds per measured cell (default 3, at most 5). */
  cellSeconds?: number;
}

export interface Cell {
  rate: number;
  batch: number;
  clients: number;
}

export interface CellResult extends Cell {
  sent: number;
  /** Deliveries expected: sent × clients. */
  expected: number;
  delivered: number;
  errors: number;
  latencies: number[];
  messages: number;
  seconds: number;
  /** The producer kept its schedule (it did not fall behind by more than 5 %). */
  onPace: boolean;
}

const run = crypto.randomUUID().slice(0, 6);
let cellNo = 0;

async function connectClients(info: StackInfo, source: string, count: number): Promise<WS[]> {
  const url = new URL(`${info.apiUrl.replace(/^http/, "ws")}/functions/v1/ws-fanout`);
  url.searchParams.set("token", info.anonKey);
  url.searchParams.set("sources", source);
  return await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<WS>((resolve, reject) => {
        const ws = new WS(url.toString());
        ws.once("message", () => resolve(ws)); // hello
        ws.once("error", reject);
        ws.once("unexpected-response", (_req, res) =>
          reject(new Error(`refused: ${res.statusCode}`)));
      })),
  );
}

/** One cell: `cell.clients` clients, `cell.rate` events/s in batches of `cell.batch`, for `seconds`. */
export async function measure(
  info: StackInfo,
  cell: Cell,
  seconds: number,
): Promise<CellResult> {
  const source = `bench-ws-${run}-${++cellNo}`;
  const clients = await connectClients(info, source, cell.clients);
  const sentAt: number[] = [];
  const latencies: number[] = [];
  let delivered = 0;
  let messages = 0;
  for (const ws of clients) {
    ws.on("message", (data) => {
      const now = performance.now();
      messages++;
      const message = JSON.parse(data.toString()) as ServerMessage;
      const list = message.type === "event"
        ? [message.event]
        : message.type === "batch"
        ? message.events
        : [];
      for (const event of list) {
        delivered++;
        const t = sentAt[event.sequence_id];
        if (t !== undefined) latencies.push(now - t);
      }
    });
  }

  const total = Math.round(cell.rate * seconds);
  const intervalMs = (cell.batch / cell.rate) * 1000;
  const posts: Promise<void>[] = [];
  let errors = 0;
  let seq = 0;
  let lateMs = 0;
  const started = performance.now();
  while (seq < total) {
    const timestamp = new Date().toISOString();
    const events = [];
    const at = performance.now();
    for (let i = 0; i < cell.batch && seq < total; i++) {
      seq++;
      sentAt[seq] = at;
      events.push({
        source,
        sequence_id: seq,
        event_type: "bench.tick",
        category: "system",
        timestamp,
        data: { seq },
      });
    }
    posts.push(
      fetch(`${info.apiUrl}/functions/v1/ingest`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${info.producerKey}`,
        },
        body: JSON.stringify({ events }),
      }).then(async (r) => {
        await r.text();
        if (r.status !== 200) errors++;
      }, () => {
        errors++;
      }),
    );
    const next = started + (seq / cell.batch) * intervalMs;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else lateMs = Math.max(lateMs, -wait);
  }
  const sendSeconds = (performance.now() - started) / 1000;
  await Promise.all(posts);
  const expected = seq * cell.clients;
  const deadline = performance.now() + 3_000;
  while (delivered < expected && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const elapsed = (performance.now() - started) / 1000;
  for (const ws of clients) ws.terminate();
  return {
    ...cell,
    sent: seq,
    expected,
    delivered,
    errors,
    latencies,
    messages,
    seconds: elapsed,
    onPace: sendSeconds <= seconds * 1.05,
  };
}

function sustained(r: CellResult): boolean {
  return r.errors === 0 && r.onPace && r.delivered >= r.expected &&
    percentile(r.latencies, 0.99) < 1_000;
}

/**
 * Sets the resilient relay's adaptive batching on or off (the `batching`
 * setting, audited as `bench`), waits for ingest to reload its config, and
 * returns the previous value (null when the setting does not exist).
 */
async function setRelayBatching(
  sql: postgres.Sql,
  enabled: boolean | unknown,
): Promise<unknown> {
  const [row] = await sql<{ value: Record<string, unknown> }[]>`
    select value from cutover.settings where key = 'batching'`;
  if (!row) return null;
  const next = typeof enabled === "boolean" ? { ...row.value, enabled } : enabled;
  await sql.begin(async (tx) => {
    await tx`select set_config('cutover.actor', 'bench', true),
                    set_config('cutover.reason', 'npm run bench (fanout)', true)`;
    await tx`update cutover.settings set value = ${sql.json(next as postgres.JSONValue)}
             where key = 'batching'`;
  });
  await new Promise((r) => setTimeout(r, 2_500)); // config caches refresh every 2 s
  return row.value;
}

/**
 * Runs the cells and prints one table: the steady 1,000 events/s cells with
 * 1 and 50 clients, then, per client count, rising rates until one is not
 * sustained (errors, a producer that falls behind, a lost delivery, or p99
 * over 1 s); the last sustained rate is reported as the highest. When the
 * resilient relay batches (the `batching` setting), the steady cells run
 * again with batching off, so the table separates the fanout's own latency
 * from the relay's batching wait; the setting is restored afterwards.
 */
export async function benchFanout(ctx: FanoutBenchContext): Promise<void> {
  const seconds = Math.min(5, Math.max(1, ctx.cellSeconds ?? 3));
  const budgetEnds = performance.now() + 60_000;
  const results: (CellResult & { batching: string })[] = [];
  const highest = new Map<number, CellResult>();
  const sql = postgres(ctx.info.dbUrl, { max: 1, onnotice: () => {} });
  try {
    // Warm-up (connections, JIT, caches on every instance, settings seeded); not reported.
    await measure(ctx.info, { rate: 500, batch: 10, clients: 2 }, 1);
    const [setting] = await sql<{ value: { enabled?: boolean } }[]>`
      select value from cutover.settings where key = 'batching'`;
    const batching = setting ? (setting.value.enabled ? "on" : "off") : "n/a";
    for (const clients of [1, 50]) {
      const r = await measure(ctx.info, { rate: 1_000, batch: 10, clients }, seconds);
      results.push({ ...r, batching });
    }
    if (batching === "on") {
      const before = await setRelayBatching(sql, false);
      try {
        for (const clients of [1, 50]) {
          const r = await measure(ctx.info, { rate: 1_000, batch: 10, clients }, seconds);
          results.push({ ...r, batching: "off" });
        }
      } finally {
        await setRelayBatching(sql, before);
      }
    }
    for (const clients of [1, 50]) {
      for (const rate of [2_000, 4_000, 8_000, 16_000]) {
        if (performance.now() + (seconds + 4) * 1000 > budgetEnds) break;
        const r = await measure(
          ctx.info,
          { rate, batch: Math.max(10, rate / 100), clients },
          seconds,
        );
        results.push({ ...r, batching });
        if (!sustained(r)) break;
        highest.set(clients, r);
      }
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
  printTable(
    ctx.log,
    [
      "clients",
      "target ev/s",
      "batch",
      "relay batching",
      "delivered",
      "p50 ms",
      "p95 ms",
      "p99 ms",
      "deliveries/s",
      "WS msgs/s",
      "sustained",
    ],
    results.map((r) => [
      String(r.clients),
      r.rate,
      String(r.batch),
      r.batching,
      `${r.delivered}/${r.expected}`,
      percentile(r.latencies, 0.5),
      percentile(r.latencies, 0.95),
      percentile(r.latencies, 0.99),
      r.delivered / r.seconds,
      r.messages / r.seconds,
      sustained(r)
        ? "yes"
        : `no${r.errors ? ` (${r.errors} errors)` : ""}${r.onPace ? "" : " (producer behind)"}`,
    ]),
  );
  for (const label of ["on", "off", "n/a"]) {
    const target = results.find((r) =>
      r.clients === 50 && r.rate === 1_000 && r.batching === label
    );
    if (!target) continue;
    const p99 = percentile(target.latencies, 0.99);
    ctx.log(
      `target p99 < 50 ms at 1,000 events/s with 50 clients (relay batching ${label}): ${
        p99.toFixed(1)
      } ms — ${p99 < 50 ? "met" : "NOT met"}`,
    );
  }
  for (const clients of [1, 50]) {
    const best = highest.get(clients);
    ctx.log(
      `highest sustained with ${clients} client(s): ${
        best ? `${best.rate.toLocaleString("en-US")} events/s` : "below 2,000 events/s"
      } (ceiling tried: 16,000)`,
    );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const file = process.argv[2] ?? path.join(process.cwd(), ".local", "stack.json");
  const info = JSON.parse(readFileSync(file, "utf8")) as StackInfo;
  await benchFanout({
    info,
    log: (line) => console.log(line),
    cellSeconds: Number(process.env.BENCH_CELL_SECONDS ?? "3"),
  });
}
