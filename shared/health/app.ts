/**
 * The health function: is the database reachable, and which migration is
 * applied. 200 when healthy, 503 (with Retry-After) when the database is not.
 */
import { Hono } from "hono";
import type { Sql } from "../db/client.ts";
import { errorResponse } from "../http/errors.ts";

export interface HealthDeps {
  sql: Sql;
  /** Instance label, to tell instances apart locally. */
  instance?: string;
}

/** Builds the app mounted at `/health`. */
export function createHealthApp(deps: HealthDeps): Hono {
  const app = new Hono().basePath("/health");
  app.get("/", async () => {
    const started = performance.now();
    try {
      const [row] = await deps.sql<{ version: string | null }[]>`
        select max(version) as version from supabase_migrations.schema_migrations`;
      return Response.json({
        status: "ok",
        database: { reachable: true, latency_ms: Math.round(performance.now() - started) },
        migration: row?.version ?? null,
        instance: deps.instance ?? null,
      });
    } catch (error) {
      return errorResponse(
        503,
        "database_unreachable",
        `The database is not reachable: ${(error as Error).message}`,
        {
          database: { reachable: false },
        },
        { "retry-after": "5" },
      );
    }
  });
  return app;
}
