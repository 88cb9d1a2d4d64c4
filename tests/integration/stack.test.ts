import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../local/toolchain.ts";
import { useDb } from "../helpers/db.ts";
import { fetchJson, functionUrl, stack } from "../helpers/http.ts";

const latestMigration = readdirSync(path.join(repoRoot, "supabase", "migrations"))
  .filter((f) => /^\d+_.+\.sql$/.test(f)).sort().at(-1)?.split("_")[0] ?? null;

describe("local stack", () => {
  const sql = useDb();

  it("writes stack.json with exactly the contract's keys", () => {
    expect(Object.keys(stack().info).sort()).toEqual(
      ["anonKey", "apiUrl", "dashboardUrl", "dbUrl", "producerKey", "serviceRoleKey"],
    );
    expect(stack().info.apiUrl).toBe(`http://127.0.0.1:${stack().ports.api}`);
  });

  it("reaches a Deno function through the gateway: health reports the database and migration", async () => {
    const res = await fetchJson<
      { status: string; database: { reachable: boolean }; migration: string }
    >(
      functionUrl("health"),
    );
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("ok");
    expect(res.body.database.reachable).toBe(true);
    expect(res.body.migration).toBe(latestMigration);
  });

  it("answers 404 for an unknown function and an unknown path", async () => {
    const fn = await fetchJson<{ message: string }>(functionUrl("no-such-function"));
    expect(fn.status).toBe(404);
    expect(fn.body.message).toContain("no-such-function");
    const other = await fetchJson(`${stack().info.apiUrl}/rest/v1/anything`);
    expect(other.status).toBe(404);
  });

  it("records every migration where the Supabase CLI does", async () => {
    const files = readdirSync(path.join(repoRoot, "supabase", "migrations")).filter((f) =>
      /^\d+_.+\.sql$/.test(f)
    )
      .sort();
    const rows = await sql<{ version: string; name: string; statements: string[] }[]>`
      select version, name, statements from supabase_migrations.schema_migrations order by version`;
    expect(rows.map((r) => `${r.version}_${r.name}.sql`)).toEqual(files);
    for (const row of rows) expect(row.statements.length).toBeGreaterThan(0);
  });

  it("has the Supabase shape: roles, auth helpers reading JWT claims, extensions, publication", async () => {
    const roles = await sql<{ rolname: string }[]>`
      select rolname from pg_roles where rolname in ('anon','authenticated','service_role','authenticator')
      order by rolname`;
    expect(roles.map((r) => r.rolname)).toEqual([
      "anon",
      "authenticated",
      "authenticator",
      "service_role",
    ]);
    const claims = {
      sub: "6a1f2c3e-0000-4000-8000-000000000001",
      role: "authenticated",
      email: "a@b.c",
    };
    const [row] = await sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
      return await tx<{ uid: string; role: string; email: string }[]>`
        select auth.uid()::text as uid, auth.role() as role, auth.jwt() ->> 'email' as email`;
    });
    expect(row).toEqual({ uid: claims.sub, role: "authenticated", email: "a@b.c" });
    const [ext] =
      await sql`select extnamespace::regnamespace::text as schema from pg_extension where extname = 'pgcrypto'`;
    expect(ext?.schema).toBe("extensions");
    const [pub] =
      await sql`select count(*)::int as n from pg_publication where pubname = 'supabase_realtime'`;
    expect(pub?.n).toBe(1);
    const [wal] = await sql`show wal_level`;
    expect(wal?.wal_level).toBe("logical");
  });
});

describe("gateway verify_jwt", () => {
  it("refuses a verify_jwt function without a JWT, with a wrong one, or a forged one (401)", async () => {
    const url = functionUrl("events", "?limit=1");
    const none = await fetchJson<{ message: string }>(url);
    expect(none.status).toBe(401);
    expect(none.body.message).toBe("Missing authorization header");
    const garbage = await fetchJson<{ message: string }>(url, {
      headers: { authorization: "Bearer not.a.jwt" },
    });
    expect(garbage.status).toBe(401);
    const [h, p] = stack().info.anonKey.split(".");
    const forged = await fetchJson(url, {
      headers: { authorization: `Bearer ${h}.${p}.c2lnbmF0dXJl` },
    });
    expect(forged.status).toBe(401);
  });

  it("lets a valid JWT through to the function", async () => {
    const res = await fetchJson<{ events: unknown[] }>(functionUrl("events", "?limit=1"), {
      headers: { authorization: `Bearer ${stack().info.anonKey}` },
    });
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body.events)).toBe(true);
  });

  it("leaves verify_jwt = false functions to check credentials themselves", async () => {
    const res = await fetchJson(functionUrl("health"));
    expect(res.status).toBe(200);
  });
});
