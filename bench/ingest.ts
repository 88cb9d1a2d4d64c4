/**
 * Ingest benchmarks (issue 3), measured side by side in one run against the
 * same database: the endpoint at several batch sizes and concurrencies, the
 * raw ceiling (the same rows bulk-inserted straight into Postgres, no HTTP),
 * the naive floor (one INSERT round trip per event), and dual-write against
 * single-route. Prints tables and the ratios the targets are stated in.
 */
import { randomUUID } from "node:crypto";
import postgres from "postgres";
import type { StackInfo } from "../local/stack.ts";
import { canonicalEvent } from "../shared/events/canonical.ts";
import { checksumText } from "../shared/events/checksum.ts";
import { percentile, printTable, timedLoop } from "./lib.ts";

export interface BenchContext {
  info: StackInfo;
  log: (line: string) => void;
  /** Seconds per measured cell. */
  cellSeconds: number;
}

const run = randomUUID().slice(0, 8);
let seq = 0;

function syntheticEvent(source: string, eventType = "service.error") {
  seq++;
  return {
    source,
    sequence_id: seq,
    event_type: eventType,
    timestamp: new Date().toISOString(),
    data: {
      host: `host-${seq % 17}`,
      latency_ms: (seq * 7) % 500,
      ok: seq % 3 !== 0,
      tags: ["a", "b"],
    },
  };
}

async function post(info: StackInfo, events: unknown[]): Promise<number> {
  const res = await fetch(`${info.apiUrl}/functions/v1/ingest`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${info.producerKey}` },
    body: JSON.stringify({ events }),
  });
  const body = await res.json() as { stored?: number };
  if (res.status !== 200 || body.stored !== events.length) {
    throw new Error(`ingest answered ${res.status}`);
  }
  return events.length;
}

/** A row as ingest would store it, for the direct-to-Postgres baselines. */
async function rowFor(e: ReturnType<typeof syntheticEvent>) {
  const wire = { id: randomUUID(), ...e, category: "critical" as const };
  return {
    id: wire.id,
    source: wire.source,
    sequence_id: wire.sequence_id,
    event_type: wire.event_type,
    category: wire.category,
    timestamp: wire.timestamp,
    data: wire.data,
    checksum: await checksumText(canonicalEvent(wire), "sha256"),
    checksum_alg: "sha256",
    routes: ["websocket", "realtime"],
  };
}

interface Cell {
  label: string;
  batch: number;
  concurrency: number;
  eventsPerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  seconds: number;
  errors: number;
}

function cell(
  label: string,
  batch: number,
  concurrency: number,
  r: Awaited<ReturnType<typeof timedLoop>>,
): Cell {
  return {
    label,
    batch,
    concurrency,
    eventsPerSecond: r.items / r.seconds,
    p50: percentile(r.latenciesMs, 0.5),
    p95: percentile(r.latenciesMs, 0.95),
    p99: percentile(r.latenciesMs, 0.99),
    max: Math.max(...r.latenciesMs),
    seconds: r.seconds,
    errors: r.errors,
  };
}

async function setOverride(sql: postgres.Sql, value: string | null): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`select set_config('cutover.actor', 'bench', true), set_config('cutover.reason', 'npm run bench', true)`;
    await tx`update cutover.settings set value = ${
      JSON.stringify(value)
    }::text::jsonb where key = 'global_override'`;
  });
}

/** Runs every ingest measurement and prints the tables. */
export async function benchIngest(ctx: BenchContext): Promise<void> {
  const { info, log } = ctx;
  const ms = ctx.cellSeconds * 1000;
  const sql = postgres(info.dbUrl, { max: 16, onnotice: () => {} });
  try {
    // Warm up: connections, JIT, config caches.
    await timedLoop(() => post(info, [syntheticEvent(`bench-${run}-warm`)]), {
      concurrency: 4,
      durationMs: 1500,
    });

    const cells: Cell[] = [];
    for (
      const [batch, concurrency] of [[1, 1], [1, 8], [10, 8], [100, 1], [100, 4], [100, 8], [
        500,
        4,
      ]] as const
    ) {
      log(`  ingest batch ${batch} × ${concurrency} concurrent …`);
      const r = await timedLoop(
        (w) => post(info, Array.from({ length: batch }, () => syntheticEvent(`bench-${run}-${w}`))),
        { concurrency, durationMs: ms },
      );
      cells.push(cell("ingest (HTTP)", batch, concurrency, r));
    }

    log("  raw ceiling: bulk INSERT of the same rows, 100 per statement …");
    const raw = await timedLoop(async (w) => {
      const rows = await Promise.all(
        Array.from({ length: 100 }, () => rowFor(syntheticEvent(`bench-${run}-raw-${w}`))),
      );
      await sql`insert into public.monitoring_events ${sql(rows)}`;
      return rows.length;
    }, { concurrency: 8, durationMs: ms });
    cells.push(cell("raw bulk INSERT (no HTTP)", 100, 8, raw));

    log("  naive floor: one INSERT round trip per event, 1 and 8 clients …");
    const naiveRuns: Record<number, Awaited<ReturnType<typeof timedLoop>>> = {};
    for (const concurrency of [1, 8]) {
      naiveRuns[concurrency] = await timedLoop(async (w) => {
        const row = await rowFor(syntheticEvent(`bench-${run}-naive-${w}`));
        await sql`insert into public.monitoring_events ${sql(row)}`;
        return 1;
      }, { concurrency, durationMs: ms });
      cells.push(cell("naive per-event INSERT", 1, concurrency, naiveRuns[concurrency]!));
    }

    printTable(
      log,
      ["path", "batch", "conc", "events/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"],
      cells.map((
        c,
      ) => [
        c.label,
        c.batch,
        c.concurrency,
        c.eventsPerSecond,
        c.p50,
        c.p95,
        c.p99,
        c.max,
        c.errors,
      ]),
    );

    // Dual-write (event row + outbox row, routed to both) against
    // single-route (realtime only: event row, no outbox), alternated so
    // drift in the machine's load hits both alike.
    log("\n  dual-write vs single-route (batch 100 × 8, alternating rounds) …");
    const dual: number[] = [];
    const single: number[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        for (const mode of ["dual", "single"] as const) {
          await setOverride(sql, mode === "single" ? "realtime_only" : null);
          await new Promise((r) => setTimeout(r, 2500)); // config caches refresh every 2 s
          const r = await timedLoop(
            (w) =>
              post(
                info,
                Array.from({ length: 100 }, () =>
                  syntheticEvent(`bench-${run}-${mode}-${w}`, "service.error")),
              ),
            { concurrency: 8, durationMs: ms / 2 },
          );
          (mode === "dual" ? dual : single).push(r.items / r.seconds);
        }
      }
    } finally {
      await setOverride(sql, null);
    }
    const dualRate = dual.reduce((a, b) => a + b, 0) / dual.length;
    const singleRate = single.reduce((a, b) => a + b, 0) / single.length;

    const at100 = cells.find((c) =>
      c.label === "ingest (HTTP)" && c.batch === 100 && c.concurrency === 8
    )!;
    const perEvent = cells.find((c) =>
      c.label === "ingest (HTTP)" && c.batch === 1 && c.concurrency === 8
    )!;
    const rate = (r: { items: number; seconds: number }) => r.items / r.seconds;
    log("");
    printTable(log, ["comparison", "ratio", "target"], [
      [
        "ingest batch 100 / raw ceiling",
        `${(at100.eventsPerSecond / raw.items * raw.seconds * 100).toFixed(1)} %`,
        "≥ 30 %",
      ],
      [
        "ingest batch 100 / naive floor (1 client)",
        `${(at100.eventsPerSecond / rate(naiveRuns[1]!)).toFixed(1)} ×`,
        "≥ 20 ×",
      ],
      [
        "ingest batch 100 / naive floor (8 clients)",
        `${(at100.eventsPerSecond / rate(naiveRuns[8]!)).toFixed(1)} ×`,
        "",
      ],
      [
        "ingest batch 100 / ingest batch 1 (8 clients)",
        `${(at100.eventsPerSecond / perEvent.eventsPerSecond).toFixed(1)} ×`,
        "",
      ],
      [
        "dual-write cost vs single-route",
        `${((1 - dualRate / singleRate) * 100).toFixed(1)} %`,
        "≤ 5 %",
      ],
      ["  dual-write events/s (mean of 3)", Math.round(dualRate), ""],
      ["  single-route events/s (mean of 3)", Math.round(singleRate), ""],
    ]);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
