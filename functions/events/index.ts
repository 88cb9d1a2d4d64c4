import { createSql } from "../../shared/db/client.ts";
import { createHistoryApp } from "../../shared/history/app.ts";

const app = createHistoryApp({
  sql: createSql(Deno.env.get("SUPABASE_DB_URL")!),
  serviceRoleKey: Deno.env.get("SUPABASE_SERVICE_ROLE_KEY") ?? "",
  jwtSecret: Deno.env.get("CUTOVER_JWT_SECRET"),
});

Deno.serve(app.fetch);
