import { defaultsFromEnv } from "../../shared/config/settings.ts";
import { createConfigSource } from "../../shared/config/source.ts";
import { createSql } from "../../shared/db/client.ts";
import { createFanoutRelay } from "../../shared/fanout/relay.ts";
import { createProducerAuth } from "../../shared/http/auth.ts";
import { createIngestApp } from "../../shared/ingest/app.ts";
import { limitsFromEnv } from "../../shared/ingest/limits.ts";

const env = Deno.env.toObject();
const sql = createSql(env.SUPABASE_DB_URL!, { max: 8 });
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
  config: createConfigSource({ sql, defaults: defaultsFromEnv(env) }),
  auth: createProducerAuth({ sql, serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "" }),
  limits: limitsFromEnv(env),
  afterCommit: (events) => {
    const relayed = relay.relayCommitted(events);
    edgeRuntime?.waitUntil(relayed);
  },
});

Deno.serve(app.fetch);
