import { defaultsFromEnv } from "../../shared/config/settings.ts";
import { createConfigSource } from "../../shared/config/source.ts";
import { createSql } from "../../shared/db/client.ts";
import { createFanoutRelay } from "../../shared/fanout/relay.ts";
import { createFlagStore } from "../../shared/flags/store.ts";
import { createStatsRecorder, installStatsRecorder } from "../../shared/metrics/recorder.ts";
import { createDlqRetryApp } from "../../shared/resilience/app.ts";
import { createBreakerBoard } from "../../shared/resilience/board.ts";

const env = Deno.env.toObject();
const sql = createSql(env.SUPABASE_DB_URL!, { max: 4 });
const defaults = defaultsFromEnv(env);
const config = createConfigSource({ sql, defaults });
const instance = `dlq-retry:${env.CUTOVER_FUNCTION_INSTANCE ?? env.SB_EXECUTION_ID ?? "0"}`;
// Its relays are websocket relay calls like ingest's: they feed the same stats and breaker.
installStatsRecorder(createStatsRecorder({ sql, name: "dlq-retry", config }));

const app = createDlqRetryApp({
  sql,
  relay: createFanoutRelay({
    sql,
    baseUrl: env.SUPABASE_URL ?? "",
    serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "",
  }),
  board: createBreakerBoard({ sql, config, instance }),
  config,
  flags: createFlagStore(sql, defaults),
  serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY ?? "",
  instance,
});

Deno.serve(app.fetch);
