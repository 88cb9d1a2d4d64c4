/**
 * The migrations are valid for the real Supabase CLI: `supabase db push`
 * applies them to a freshly bootstrapped database (what hosted Supabase
 * looks like), and it agrees with the local runner about what is applied.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyMigrations, listMigrations } from "../../local/migrate.ts";
import { type LocalPostgres, startPostgres } from "../../local/postgres.ts";
import { freePort } from "../../local/ports.ts";
import { repoRoot } from "../../local/toolchain.ts";

const run = promisify(execFile);
const migrationsDir = path.join(repoRoot, "supabase", "migrations");

function supabase(args: string[]) {
  return run(path.join(repoRoot, "node_modules", ".bin", "supabase"), args, {
    cwd: repoRoot,
    env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", CI: "true" },
    timeout: 120_000,
  });
}

describe("supabase db push", () => {
  let pg: LocalPostgres;
  let dir: string;
  let sql: postgres.Sql;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "cutover-cli-"));
    pg = await startPostgres({
      dataDir: path.join(dir, "db"),
      port: await freePort(),
      ephemeral: true,
    });
    sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  }, 60_000);

  afterAll(async () => {
    await sql?.end();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("applies every migration to a fresh database and records them", async () => {
    const { stdout, stderr } = await supabase([
      "db",
      "push",
      `--remote=${pg.url}`,
      "--yes",
      "--workdir",
      repoRoot,
    ]);
    expect(`${stdout}${stderr}`).toContain("Finished supabase db push");
    const files = await listMigrations(migrationsDir);
    const rows = await sql<{ version: string; name: string }[]>`
      select version, name from supabase_migrations.schema_migrations order by version`;
    expect(rows.map((r) => `${r.version}_${r.name}`)).toEqual(
      files.map((f) => `${f.version}_${f.name}`),
    );
    const [t] = await sql`select to_regclass('public.monitoring_events') is not null as ok`;
    expect(t?.ok).toBe(true);
  }, 150_000);

  it("agrees with the local runner: nothing left to apply either way", async () => {
    expect(await applyMigrations(sql, migrationsDir)).toEqual([]);
    const { stdout, stderr } = await supabase([
      "db",
      "push",
      `--remote=${pg.url}`,
      "--yes",
      "--dry-run",
      "--workdir",
      repoRoot,
    ]);
    expect(`${stdout}${stderr}`).toMatch(/up to date|No migrations|nothing to/i);
  }, 150_000);
});
