import { createSql } from "../../shared/db/client.ts";
import { createMetricsApp } from "../../shared/metrics/app.ts";

const app = createMetricsApp({
  sql: createSql(Deno.env.get("SUPABASE_DB_URL")!, { max: 3 }),
  serviceRoleKey: Deno.env.get("SUPABASE_SERVICE_ROLE_KEY") ?? "",
  jwtSecret: Deno.env.get("CUTOVER_JWT_SECRET"),
});

Deno.serve(app.fetch);
