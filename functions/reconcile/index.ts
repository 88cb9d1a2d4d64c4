import { defaultsFromEnv } from "../../shared/config/settings.ts";
import { createConfigSource } from "../../shared/config/source.ts";
import { createSql } from "../../shared/db/client.ts";
import { createFanoutRelay } from "../../shared/fanout/relay.ts";
import { createReconcileApp } from "../../shared/reconcile/app.ts";

const env = Deno.env.toObject();
const sql = createSql(env.SUPABASE_DB_URL!, { max: 3 });
const config = createConfigSource({ sql, defaults: defaultsFromEnv(env) });
// Re-relayed events go to ws-fanout at once; its own drain is the fallback.
const relay = createFanoutRelay({
  sql,
  baseUrl: env.SUPABASE_URL ?? "",
  serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "",
});

const app = createReconcileApp({
  sql,
  settings: async () => (await config.get()).settings,
  relayKeys: (keys) => relay.relayKeys(keys),
  serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "",
});

Deno.serve(app.fetch);
