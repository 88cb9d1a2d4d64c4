/**
 * Flags and settings as each function instance sees them: loaded from
 * Postgres (seeded first from the environment defaults), cached, and
 * refreshed when `cutover.config_state.version` moves — checked at most every
 * `refreshMs` (default 2 s), so an edit is seen everywhere within seconds
 * without a deploy (DESIGN §2.5).
 */
import type { Sql } from "../db/client.ts";
import { type ClassificationRule, type Classifier, createClassifier } from "../events/classify.ts";
import { CATEGORIES, type Category } from "../events/schema.ts";
import type { RoutingConfig } from "../routing/route.ts";
import {
  type CategoryFlags,
  categoryFlagsSchema,
  type ConfigDefaults,
  type Settings,
  settingsSchema,
} from "./settings.ts";

export interface LoadedConfig {
  version: number;
  categories: Record<Category, CategoryFlags>;
  settings: Settings;
  rules: ClassificationRule[];
  classifier: Classifier;
  routing: RoutingConfig;
  loadedAt: number;
}

export interface ConfigSource {
  /** The current config; reloads when the version moved. Throws only when nothing was ever loaded. */
  get(): Promise<LoadedConfig>;
  /** Forces the next get() to check the version. */
  invalidate(): void;
}

export interface ConfigSourceOptions {
  sql: Sql;
  defaults: ConfigDefaults;
  refreshMs?: number;
  log?: (line: string) => void;
  now?: () => number;
}

interface ConfigRow {
  version: string;
  categories: Record<string, unknown> | null;
  settings: Record<string, unknown> | null;
  rules: ClassificationRule[] | null;
}

/** How long an instance may use its cached config before checking the version again. */
export const CONFIG_REFRESH_MS = 2000;

/** Creates the cached source; nothing is read until the first get(). */
export function createConfigSource(options: ConfigSourceOptions): ConfigSource {
  const { sql, defaults } = options;
  const refreshMs = options.refreshMs ?? CONFIG_REFRESH_MS;
  const log = options.log ?? ((line: string) => console.error(line));
  const now = options.now ?? Date.now;
  let current: LoadedConfig | undefined;
  let checkedAt = -Infinity;
  let inFlight: Promise<LoadedConfig> | undefined;
  let seeded = false;

  async function load(): Promise<LoadedConfig> {
    if (!seeded) {
      await sql`select cutover.seed_config(${sql.json(JSON.parse(JSON.stringify(defaults)))})`;
      seeded = true;
    }
    if (current) {
      const [row] = await sql<{ version: string }[]>`select version from cutover.config_state`;
      if (row && Number(row.version) === current.version) return current;
    }
    const [row] = await sql<ConfigRow[]>`
      select
        (select version from cutover.config_state) as version,
        (select jsonb_object_agg(category, to_jsonb(f) - 'category' - 'updated_at') from cutover.category_flags f) as categories,
        (select jsonb_object_agg(key, value) from cutover.settings) as settings,
        (select jsonb_agg(jsonb_build_object('pattern', pattern, 'category', category, 'legacy', legacy, 'priority', priority) order by priority, id)
           from cutover.classification_rules) as rules`;
    return build(row!);
  }

  function build(row: ConfigRow): LoadedConfig {
    const categories = {} as Record<Category, CategoryFlags>;
    for (const category of CATEGORIES) {
      const raw = row.categories?.[category];
      const parsed = categoryFlagsSchema.safeParse(
        raw && typeof raw === "object"
          ? { ...raw, percentage: Number((raw as { percentage: unknown }).percentage) }
          : raw,
      );
      if (!parsed.success) {
        log(`config: flags for ${category} are invalid in the database; using the default`);
      }
      categories[category] = parsed.success ? parsed.data : defaults.categories[category];
    }
    const settings = { ...defaults.settings } as Record<string, unknown>;
    for (const [key, value] of Object.entries(row.settings ?? {})) {
      const shape = settingsSchema.shape[key as keyof Settings];
      if (!shape) continue;
      const parsed = shape.safeParse(value);
      if (parsed.success) settings[key] = parsed.data;
      else log(`config: setting ${key} is invalid in the database; using the default`);
    }
    const typed = settings as Settings;
    const rules = row.rules ?? [];
    return {
      version: Number(row.version),
      categories,
      settings: typed,
      rules,
      classifier: createClassifier(
        rules,
        (rule, error) => log(`config: rule ${rule.pattern} skipped: ${error.message}`),
      ),
      routing: {
        categories,
        globalOverride: typed.global_override,
        primary: typed.primary_adapter,
        routingKey: typed.routing_key,
      },
      loadedAt: now(),
    };
  }

  return {
    get() {
      if (current && now() - checkedAt < refreshMs) return Promise.resolve(current);
      inFlight ??= load().then((config) => {
        current = config;
        checkedAt = now();
        return config;
      }).catch((error) => {
        if (!current) throw error;
        log(
          `config: refresh failed, keeping version ${current.version}: ${(error as Error).message}`,
        );
        checkedAt = now();
        return current;
      }).finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
    invalidate() {
      checkedAt = -Infinity;
    },
  };
}
