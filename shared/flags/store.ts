/**
 * The flags API's Postgres adapter: reads the configuration, applies a
 * validated write under optimistic concurrency, and reads the audit log.
 *
 * A write runs in one transaction that first locks `cutover.config_state`
 * (`select version ... for update`), so writes through this API are
 * serialised and a stale `expected_version` is refused before anything
 * changes. The audit rows are written by the tables' own trigger with the
 * actor and reason this transaction sets (`cutover.actor`, `cutover.reason`);
 * a write that changes no value runs no DML at all, so it leaves no audit row
 * and does not move the version.
 */
import type postgres from "postgres";
import {
  type CategoryFlags,
  categoryFlagsSchema,
  type ConfigDefaults,
  type Settings,
  settingsSchema,
} from "../config/settings.ts";
import type { Sql } from "../db/client.ts";
import { CATEGORIES, type Category } from "../events/schema.ts";
import type { AuditQuery } from "./audit-query.ts";
import {
  changedCategoryFields,
  mergeCategoryFlags,
  sameSettingValue,
  type SettingKey,
  type WriteRequest,
} from "./changes.ts";

/** A category's flags as stored, with when they last changed. */
export type StoredCategoryFlags = CategoryFlags & { updated_at: string };

export interface ClassificationRuleRow {
  id: number;
  pattern: string;
  category: Category;
  legacy: boolean;
  priority: number;
  description: string | null;
}

/** The whole configuration as functions see it. */
export interface FlagsSnapshot {
  version: number;
  changed_at: string;
  categories: Record<Category, StoredCategoryFlags>;
  /** Every setting; a key missing from the table shows its default. */
  settings: Settings;
  rules: ClassificationRuleRow[];
  /** Stored values that fail validation; functions use the default instead, and so does this snapshot. */
  problems: string[];
}

export interface AuditEntry {
  id: number;
  changed_at: string;
  actor: string;
  table_name: string;
  key: string;
  action: "insert" | "update" | "delete";
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  reason: string | null;
  config_version: number;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** Pass as `before_id` for the next (older) page; null on the last page. */
  next_before_id: number | null;
}

export type WriteOutcome =
  | {
    ok: true;
    /** False when every value already was as requested: nothing written, no audit row. */
    changed: boolean;
    version: number;
    /** The targeted categories after the write, with the fields that changed. */
    categories: Partial<Record<Category, { flags: StoredCategoryFlags; changed_fields: string[] }>>;
    /** The targeted settings after the write, with whether each changed. */
    settings: Partial<Record<SettingKey, { value: unknown; changed: boolean }>>;
  }
  | { ok: false; code: "version_conflict"; currentVersion: number }
  | { ok: false; code: "invalid_stored_flags"; message: string };

export interface FlagStore {
  /** The current configuration (seeding missing rows from the defaults first). */
  read(): Promise<FlagsSnapshot>;
  /** Applies `request` as `actor`, all or nothing. Throws only for database failures. */
  apply(request: WriteRequest, actor: string): Promise<WriteOutcome>;
  /** One page of the audit log, newest first. */
  audit(query: AuditQuery): Promise<AuditPage>;
}

interface CategoryRow {
  category: Category;
  enabled: boolean;
  percentage: number;
  adapters: string[];
  delivery_mode: string;
  checksum_alg: string;
  updated_at: Date;
}

const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();

function storedFlags(row: CategoryRow): StoredCategoryFlags {
  return {
    enabled: row.enabled,
    percentage: Number(row.percentage),
    adapters: row.adapters as CategoryFlags["adapters"],
    delivery_mode: row.delivery_mode as CategoryFlags["delivery_mode"],
    checksum_alg: row.checksum_alg as CategoryFlags["checksum_alg"],
    updated_at: iso(row.updated_at),
  };
}

function withoutTimestamp(flags: StoredCategoryFlags): CategoryFlags {
  const { updated_at: _, ...rest } = flags;
  return rest;
}

/** Creates the store over `sql`; `defaults` seed rows that do not exist yet. */
export function createFlagStore(sql: Sql, defaults: ConfigDefaults): FlagStore {
  let seeded: Promise<void> | undefined;

  // The same seeding every function does on first use, so a fresh project's
  // flags can be read and changed before ingest ever ran.
  function ensureSeeded(): Promise<void> {
    seeded ??= sql`select cutover.seed_config(${sql.json(JSON.parse(JSON.stringify(defaults)))})`
      .then(() => {}, (error) => {
        seeded = undefined;
        throw error;
      });
    return seeded;
  }

  async function read(): Promise<FlagsSnapshot> {
    await ensureSeeded();
    return await sql.begin("isolation level repeatable read read only", async (tx) => {
      const [state] = await tx<{ version: string; changed_at: Date }[]>`
        select version, changed_at from cutover.config_state where id`;
      const rows = await tx<CategoryRow[]>`
        select category, enabled, percentage::float8 as percentage, adapters, delivery_mode,
               checksum_alg, updated_at
        from cutover.category_flags`;
      const settingRows = await tx<{ key: string; value: unknown }[]>`
        select key, value from cutover.settings`;
      const rules = await tx<(Omit<ClassificationRuleRow, "id"> & { id: string })[]>`
        select id, pattern, category, legacy, priority, description
        from cutover.classification_rules order by priority, id`;

      const problems: string[] = [];
      const categories = {} as Record<Category, StoredCategoryFlags>;
      for (const category of CATEGORIES) {
        const row = rows.find((r) => r.category === category);
        const flags = row ? storedFlags(row) : undefined;
        const valid = flags && categoryFlagsSchema.safeParse(withoutTimestamp(flags)).success;
        if (flags && !valid) {
          problems.push(`flags for ${category} are invalid in the database; the default applies`);
        }
        categories[category] = valid && flags
          ? flags
          : { ...defaults.categories[category], updated_at: flags?.updated_at ?? iso(new Date(0)) };
      }
      const settings = { ...defaults.settings } as Record<string, unknown>;
      for (const { key, value } of settingRows) {
        const shape = settingsSchema.shape[key as SettingKey];
        if (!shape) continue;
        if (shape.safeParse(value).success) settings[key] = value;
        else problems.push(`setting ${key} is invalid in the database; the default applies`);
      }
      return {
        version: Number(state!.version),
        changed_at: iso(state!.changed_at),
        categories,
        settings: settings as Settings,
        rules: rules.map((r) => ({ ...r, id: Number(r.id) })),
        problems,
      };
    });
  }

  async function apply(request: WriteRequest, actor: string): Promise<WriteOutcome> {
    await ensureSeeded();
    return await sql.begin(async (tx) => {
      const [state] = await tx<{ version: string }[]>`
        select version from cutover.config_state where id for update`;
      const current = Number(state!.version);
      if (current !== request.expectedVersion) {
        return { ok: false, code: "version_conflict", currentVersion: current } as const;
      }
      const plan = await planWrites(tx, request);
      if ("invalid" in plan) {
        return { ok: false, code: "invalid_stored_flags", message: plan.invalid } as const;
      }
      const outcome: Extract<WriteOutcome, { ok: true }> = {
        ok: true,
        changed: plan.categories.some((c) => c.fields.length > 0) ||
          plan.settings.some((s) => s.changed),
        version: current,
        categories: {},
        settings: {},
      };
      if (outcome.changed) {
        await tx`select set_config('cutover.actor', ${actor}, true),
                        set_config('cutover.reason', ${request.reason}, true)`;
      }
      for (const c of plan.categories) {
        let flags = c.before;
        if (c.fields.length > 0) {
          const [row] = await tx<CategoryRow[]>`
            update cutover.category_flags
            set enabled = ${c.after.enabled}, percentage = ${c.after.percentage},
                adapters = ${c.after.adapters}::text[], delivery_mode = ${c.after.delivery_mode},
                checksum_alg = ${c.after.checksum_alg}, updated_at = now()
            where category = ${c.category}
            returning category, enabled, percentage::float8 as percentage, adapters,
                      delivery_mode, checksum_alg, updated_at`;
          flags = storedFlags(row!);
        }
        outcome.categories[c.category] = { flags, changed_fields: c.fields };
      }
      // Values travel as JSON text (cast from text, so postgres.js does not encode
      // them again): its sql.json() would send a JSON null as SQL NULL.
      for (const s of plan.settings) {
        if (s.changed && s.exists) {
          await tx`update cutover.settings set value = ${JSON.stringify(s.value)}::text::jsonb,
                   updated_at = now() where key = ${s.key}`;
        } else if (s.changed) {
          await tx`insert into cutover.settings (key, value)
                   values (${s.key}, ${JSON.stringify(s.value)}::text::jsonb)`;
        }
        outcome.settings[s.key] = { value: s.value, changed: s.changed };
      }
      if (outcome.changed) {
        const [after] = await tx<{ version: string }[]>`
          select version from cutover.config_state where id`;
        outcome.version = Number(after!.version);
      }
      return outcome;
    });
  }

  async function audit(query: AuditQuery): Promise<AuditPage> {
    const rows = await sql<(Omit<AuditEntry, "id" | "config_version" | "changed_at"> & {
      id: string;
      config_version: string;
      changed_at: Date;
    })[]>`
      select id, changed_at, actor, table_name, key, action, before, after, reason, config_version
      from cutover.flag_audit
      where true
        ${query.table ? sql`and table_name = ${query.table}` : sql``}
        ${query.key ? sql`and key = ${query.key}` : sql``}
        ${query.actor ? sql`and actor = ${query.actor}` : sql``}
        ${query.since ? sql`and changed_at >= ${query.since}` : sql``}
        ${query.until ? sql`and changed_at < ${query.until}` : sql``}
        ${query.beforeId ? sql`and id < ${query.beforeId}` : sql``}
      order by id desc
      limit ${query.limit + 1}`;
    const entries = rows.slice(0, query.limit).map((r) => ({
      ...r,
      id: Number(r.id),
      config_version: Number(r.config_version),
      changed_at: iso(r.changed_at),
    }));
    return {
      entries,
      next_before_id: rows.length > query.limit ? entries.at(-1)!.id : null,
    };
  }

  interface CategoryPlan {
    category: Category;
    before: StoredCategoryFlags;
    after: CategoryFlags;
    fields: (keyof CategoryFlags)[];
  }
  interface SettingPlan {
    key: SettingKey;
    value: unknown;
    exists: boolean;
    changed: boolean;
  }

  // Reads (and row-locks) the targeted rows and decides, value by value, what
  // actually changes.
  async function planWrites(
    tx: postgres.TransactionSql,
    request: WriteRequest,
  ): Promise<{ categories: CategoryPlan[]; settings: SettingPlan[] } | { invalid: string }> {
    const categoryKeys = request.changes.flatMap((c) => c.type === "category" ? [c.category] : []);
    const settingKeys = request.changes.flatMap((c) => c.type === "setting" ? [c.key] : []);
    const rows = categoryKeys.length === 0 ? [] : await tx<CategoryRow[]>`
      select category, enabled, percentage::float8 as percentage, adapters, delivery_mode,
             checksum_alg, updated_at
      from cutover.category_flags where category in ${tx(categoryKeys)}
      order by category for update`;
    const settingRows = settingKeys.length === 0 ? [] : await tx<{ key: string; value: unknown }[]>`
      select key, value from cutover.settings where key in ${tx(settingKeys)}
      order by key for update`;

    const categories: CategoryPlan[] = [];
    const settings: SettingPlan[] = [];
    for (const change of request.changes) {
      if (change.type === "category") {
        const row = rows.find((r) => r.category === change.category);
        if (!row) return { invalid: `category ${change.category} has no row to change` };
        const before = storedFlags(row);
        const merged = categoryFlagsSchema.safeParse({
          ...withoutTimestamp(before),
          ...change.changes,
        });
        if (!merged.success) {
          return {
            invalid:
              `the stored flags of ${change.category} are invalid and these changes do not repair them: ${
                merged.error.issues[0]?.message
              }; send every field`,
          };
        }
        const after = mergeCategoryFlags(withoutTimestamp(before), change.changes);
        categories.push({
          category: change.category,
          before,
          after,
          fields: changedCategoryFields(withoutTimestamp(before), after),
        });
      } else {
        const row = settingRows.find((r) => r.key === change.key);
        settings.push({
          key: change.key,
          value: change.value,
          exists: row !== undefined,
          changed: row === undefined || !sameSettingValue(row.value, change.value),
        });
      }
    }
    return { categories, settings };
  }

  return { read, apply, audit };
}
