/**
 * Applies supabase/migrations/*.sql in order and records each one where the
 * Supabase CLI records them (`supabase_migrations.schema_migrations`: version,
 * statements, name), so `supabase db push` and this runner agree about what
 * has been applied.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Sql } from "postgres";
import { splitSqlStatements } from "./sql-split.ts";

export interface Migration {
  version: string;
  name: string;
  file: string;
}

const MIGRATION_FILE = /^(\d+)_(.+)\.sql$/;

/** Migration files in version order; other files are ignored like the CLI does. */
export async function listMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => MIGRATION_FILE.test(f)).sort();
  return files.map((f) => {
    const [, version, name] = MIGRATION_FILE.exec(f)!;
    return { version: version!, name: name!, file: path.join(dir, f) };
  });
}

/**
 * Applies every migration not yet recorded, each in its own transaction, and
 * returns the versions applied. A failing migration aborts with its file name.
 */
export async function applyMigrations(
  sql: Sql,
  dir: string,
  log: (line: string) => void = () => {},
): Promise<string[]> {
  await sql.unsafe(`
    create schema if not exists supabase_migrations;
    create table if not exists supabase_migrations.schema_migrations (
      version text not null primary key,
      statements text[],
      name text
    );`);
  const applied = new Set(
    (await sql<{ version: string }[]>`select version from supabase_migrations.schema_migrations`)
      .map((r) => r.version),
  );
  const done: string[] = [];
  for (const migration of await listMigrations(dir)) {
    if (applied.has(migration.version)) continue;
    const text = await readFile(migration.file, "utf8");
    try {
      await sql.begin(async (tx) => {
        await tx.unsafe(text);
        await tx`insert into supabase_migrations.schema_migrations (version, statements, name)
                 values (${migration.version}, ${splitSqlStatements(text)}, ${migration.name})`;
      });
    } catch (error) {
      throw new Error(
        `Migration ${path.basename(migration.file)} failed: ${(error as Error).message}`,
      );
    }
    log(`applied migration ${migration.version}_${migration.name}`);
    done.push(migration.version);
  }
  return done;
}

/** The newest applied migration version, or null on an empty history. */
export async function currentMigrationVersion(sql: Sql): Promise<string | null> {
  const rows = await sql<{ version: string }[]>`
    select max(version) as version from supabase_migrations.schema_migrations`;
  return rows[0]?.version ?? null;
}
