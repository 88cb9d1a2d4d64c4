import { createSql } from "../../shared/db/client.ts";
import { createFanoutService } from "../../shared/fanout/app.ts";
import { fanoutSettingsFromEnv } from "../../shared/fanout/settings.ts";
import { withFaults } from "../../shared/resilience/faults.ts";

const env = Deno.env.toObject();

const sql = createSql(env.SUPABASE_DB_URL!, { max: 6 });
const service = createFanoutService({
  sql,
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

// Test-only fault injection; inert unless CUTOVER_FAULT_HOOKS=1 (shared/resilience/faults.ts).
Deno.serve(withFaults(service.app.fetch, { sql, functionName: "ws-fanout", env }));
