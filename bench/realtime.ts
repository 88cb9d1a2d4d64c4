/**
 * Realtime-path benchmarks (issue 5): end-to-end latency producer →
 * supabase-js subscriber in both delivery modes, and, in broadcast mode, how
 * many events each Realtime message carries (events/s against messages/s —
 * the figure that matters against a plan's messages/s quota).
 */
import { createClient } from "@supabase/supabase-js";
import { SignJWT } from "jose";
import postgres from "postgres";
import WebSocket from "ws";
import type { StackInfo } from "../local/stack.ts";
import { percentile, printTable } from "./lib.ts";

export interface RealtimeBenchContext {
  info: StackInfo;
  jwtSecret: string;
  log: (line: string) => void;
  cellSeconds: number;
}

async function setMode(sql: postgres.Sql, mode: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`select set_config('cutover.actor', 'bench', true), set_config('cutover.reason', 'npm run bench', true)`;
    await tx`update cutover.category_flags set delivery_mode = ${mode} where category = 'critical'`;
  });
  await new Promise((r) => setTimeout(r, 2500)); // function config caches refresh every 2 s
}

/** Runs both modes at a steady rate and prints latency percentiles and message economy. */
export async function benchRealtime(ctx: RealtimeBenchContext): Promise<void> {
  const { info, log } = ctx;
  const sql = postgres(info.dbUrl, { max: 2, onnotice: () => {} });
  const token = await new SignJWT({ role: "authenticated", sub: crypto.randomUUID() })
    .setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("1h")
    .sign(new TextEncoder().encode(ctx.jwtSecret));
  const [before] =
    await sql`select delivery_mode from cutover.category_flags where category = 'critical'`;
  const rows: (string | number)[][] = [];
  try {
    for (
      const [mode, rate, batch] of [
        ["postgres_changes", 200, 10],
        ["broadcast", 200, 10],
        ["broadcast", 1000, 50],
      ] as const
    ) {
      await setMode(sql, mode);
      const client = createClient(info.apiUrl, info.anonKey, {
        auth: { persistSession: false, autoRefreshToken: false },
        realtime: { transport: WebSocket as unknown as typeof globalThis.WebSocket },
      });
      client.realtime.setAuth(token);
      const sentAt = new Map<string, number>();
      const latencies: number[] = [];
      let messages = 0;
      const onEvent = (e: { data?: { bench_id?: string } }) => {
        const t = sentAt.get(e.data?.bench_id ?? "");
        if (t !== undefined) latencies.push(performance.now() - t);
      };
      const channel = mode === "postgres_changes"
        ? client.channel("bench-live").on(
          "postgres_changes",
          {
            event: "INSERT",
            schema: "public",
            table: "monitoring_events_live",
            filter: "category=eq.critical",
          },
          (p) => {
            messages++;
            onEvent(p.new as { data?: { bench_id?: string } });
          },
        )
        : client.channel("monitoring:critical", { config: { private: true } }).on(
          "broadcast",
          { event: "events" },
          (m) => {
            messages++;
            for (const e of (m.payload as { events: { data?: { bench_id?: string } }[] }).events) {
              onEvent(e);
            }
          },
        );
      await new Promise<void>((resolve, reject) => {
        channel.subscribe((status, error) => {
          if (status === "SUBSCRIBED") resolve();
          else if (status !== "CLOSED") {
            reject(new Error(`subscribe: ${status} ${error?.message ?? ""}`));
          }
        });
      });

      const source = `bench-rt-${crypto.randomUUID().slice(0, 6)}`;
      const intervalMs = (batch / rate) * 1000;
      const total = Math.round(rate * ctx.cellSeconds);
      let seq = 0;
      const started = performance.now();
      const posts: Promise<unknown>[] = [];
      while (seq < total) {
        const events = Array.from({ length: batch }, () => {
          const id = `${source}-${++seq}`;
          sentAt.set(id, performance.now());
          return {
            source,
            sequence_id: seq,
            event_type: "service.error",
            timestamp: new Date().toISOString(),
            data: { bench_id: id },
          };
        });
        posts.push(
          fetch(`${info.apiUrl}/functions/v1/ingest`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              authorization: `Bearer ${info.producerKey}`,
            },
            body: JSON.stringify({ events }),
          }).then((r) => r.text()),
        );
        const next = started + (seq / batch) * intervalMs;
        await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
      }
      await Promise.all(posts);
      const deadline = performance.now() + 5000;
      while (latencies.length < total && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const seconds = (performance.now() - started) / 1000;
      rows.push([
        mode,
        rate,
        batch,
        `${latencies.length}/${total}`,
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        percentile(latencies, 0.99),
        latencies.length / seconds,
        messages / seconds,
        messages ? latencies.length / messages : NaN,
      ]);
      await client.removeAllChannels();
      client.realtime.disconnect();
    }
  } finally {
    await setMode(sql, String(before?.delivery_mode ?? "postgres_changes"));
    await sql.end({ timeout: 5 });
  }
  printTable(log, [
    "mode",
    "target ev/s",
    "batch",
    "received",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "events/s",
    "Realtime msgs/s",
    "events/msg",
  ], rows);
}
