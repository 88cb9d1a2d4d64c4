import { defaultsFromEnv } from "../../shared/config/settings.ts";
import { createConfigSource } from "../../shared/config/source.ts";
import { createSql } from "../../shared/db/client.ts";
import { createProducerAuth } from "../../shared/http/auth.ts";
import { createIngestApp } from "../../shared/ingest/app.ts";
import { limitsFromEnv } from "../../shared/ingest/limits.ts";

const env = Deno.env.toObject();
const sql = createSql(env.SUPABASE_DB_URL!, { max: 8 });

const app = createIngestApp({
  sql,
  config: createConfigSource({ sql, defaults: defaultsFromEnv(env) }),
  auth: createProducerAuth({ sql, serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "" }),
  limits: limitsFromEnv(env),
});

Deno.serve(app.fetch);
