import { defaultsFromEnv } from "../../shared/config/settings.ts";
import { createConfigSource } from "../../shared/config/source.ts";
import { createSql } from "../../shared/db/client.ts";
import { createFanoutRelay } from "../../shared/fanout/relay.ts";
import { createProducerAuth } from "../../shared/http/auth.ts";
import { createIngestApp } from "../../shared/ingest/app.ts";
import { limitsFromEnv } from "../../shared/ingest/limits.ts";
import { createStatsRecorder, installStatsRecorder } from "../../shared/metrics/recorder.ts";

const env = Deno.env.toObject();
const sql = createSql(env.SUPABASE_DB_URL!, { max: 8 });
const config = createConfigSource({ sql, defaults: defaultsFromEnv(env) });
// Also receives the relay's websocket calls (recordAdapterCall); flushed on beforeunload.
const stats = installStatsRecorder(createStatsRecorder({ sql, name: "ingest", config }));
const relay = createFanoutRelay({
  sql,
  baseUrl: env.SUPABASE_URL ?? "",
  serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "",
});
// Keeps the runtime alive for the relay after the answer has gone out.
const edgeRuntime = (globalThis as { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } })
  .EdgeRuntime;

const app = createIngestApp({
  sql,
  config,
  auth: createProducerAuth({ sql, serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "" }),
  limits: limitsFromEnv(env),
  stats,
  afterCommit: (events) => {
    const relayed = relay.relayCommitted(events);
    edgeRuntime?.waitUntil(relayed);
  },
});

Deno.serve(app.fetch);
