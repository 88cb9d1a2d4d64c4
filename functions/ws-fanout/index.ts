import { createSql } from "../../shared/db/client.ts";
import { createFanoutService } from "../../shared/fanout/app.ts";
import { fanoutSettingsFromEnv } from "../../shared/fanout/settings.ts";

const env = Deno.env.toObject();

const service = createFanoutService({
  sql: createSql(env.SUPABASE_DB_URL!, { max: 6 }),
  settings: fanoutSettingsFromEnv(env),
  serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "",
  jwtSecret: env.CUTOVER_JWT_SECRET ?? "",
  instance: env.CUTOVER_FUNCTION_INSTANCE ?? env.SB_EXECUTION_ID ?? crypto.randomUUID(),
  upgrade: (req) => Deno.upgradeWebSocket(req),
});

// Tail the ledger and drain the outbox from the start, so a restarted
// instance empties what piled up while it was down before anyone connects.
void service.start().catch(() => {});
globalThis.addEventListener("beforeunload", () => void service.shutdown());

Deno.serve(service.app.fetch);
