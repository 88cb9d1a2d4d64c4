import { defaultsFromEnv } from "../../shared/config/settings.ts";
import { createConfigSource } from "../../shared/config/source.ts";
import { createSql } from "../../shared/db/client.ts";
import { createFlagsApp } from "../../shared/flags/app.ts";
import { createFlagStore } from "../../shared/flags/store.ts";
import { limitsFromEnv } from "../../shared/ingest/limits.ts";

const env = Deno.env.toObject();
const sql = createSql(env.SUPABASE_DB_URL!, { max: 3 });
const defaults = defaultsFromEnv(env);

const app = createFlagsApp({
  store: createFlagStore(sql, defaults),
  config: createConfigSource({ sql, defaults }),
  limits: limitsFromEnv(env),
  serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "",
});

Deno.serve(app.fetch);
