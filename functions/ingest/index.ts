import { defaultsFromEnv } from "../../shared/config/settings.ts";
import { createConfigSource } from "../../shared/config/source.ts";
import { createSql } from "../../shared/db/client.ts";
import { createFanoutRelay } from "../../shared/fanout/relay.ts";
import { createProducerAuth } from "../../shared/http/auth.ts";
import { createIngestApp } from "../../shared/ingest/app.ts";
import { limitsFromEnv } from "../../shared/ingest/limits.ts";
import { createStatsRecorder, installStatsRecorder } from "../../shared/metrics/recorder.ts";
import {
  createBreakerBoard,
  observeAdapterCalls,
  withBreakerRouting,
} from "../../shared/resilience/board.ts";
import { createResilientRelay } from "../../shared/resilience/relay.ts";

const env = Deno.env.toObject();
const sql = createSql(env.SUPABASE_DB_URL!, { max: 8 });
const config = createConfigSource({ sql, defaults: defaultsFromEnv(env) });
// Also receives the relay's websocket calls (recordAdapterCall); flushed on beforeunload.
const stats = installStatsRecorder(createStatsRecorder({ sql, name: "ingest", config }));
// The shared circuit breakers: routing falls back while one is open, the relay defers.
const board = createBreakerBoard({
  sql,
  config,
  instance: `ingest:${env.CUTOVER_FUNCTION_INSTANCE ?? env.SB_EXECUTION_ID ?? "0"}`,
});
// Batches, breaker, retries with backoff, dead letters around the plain relay.
const relay = createResilientRelay({
  sql,
  board,
  config,
  relay: createFanoutRelay({
    sql,
    baseUrl: env.SUPABASE_URL ?? "",
    serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "",
  }),
});
// Keeps the runtime alive for the relay after the answer has gone out.
const edgeRuntime = (globalThis as { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } })
  .EdgeRuntime;

const app = createIngestApp({
  sql,
  config: withBreakerRouting(config, board),
  auth: createProducerAuth({ sql, serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "" }),
  limits: limitsFromEnv(env),
  stats: observeAdapterCalls(stats, board),
  afterCommit: (events) => edgeRuntime?.waitUntil(relay.relayCommitted(events)),
});

// Shutdown: flush the relay batches and wait for relays in flight, then write
// their stats (the recorder's own final flush may already have run).
globalThis.addEventListener("beforeunload", () => {
  edgeRuntime?.waitUntil(relay.close().then(() => stats.flush(true)));
});

Deno.serve(app.fetch);
