import { createSql } from "../../shared/db/client.ts";
import { createHealthApp } from "../../shared/health/app.ts";

const app = createHealthApp({
  sql: createSql(Deno.env.get("SUPABASE_DB_URL")!, { max: 1 }),
  instance: Deno.env.get("CUTOVER_FUNCTION_INSTANCE"),
});

Deno.serve(app.fetch);
