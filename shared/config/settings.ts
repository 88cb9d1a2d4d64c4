/**
 * Flags and settings: their shapes (zod, so the flags API and the loader
 * validate the same way), their defaults (seed 000/002), and how environment
 * variables with the seeds' names override those defaults before the first
 * seeding of the database. Each default lives here and nowhere else.
 */
import { z } from "zod";
import {
  type Adapter,
  ADAPTERS,
  CATEGORIES,
  type Category,
  type ChecksumAlg,
} from "../events/schema.ts";
import { DEFAULT_CHECKSUM_ALG } from "../events/checksum.ts";
import { resilienceDefaults, resilienceSettingsShape } from "../resilience/settings.ts";

export const adapterSchema = z.enum(ADAPTERS);
export const deliveryModeSchema = z.enum(["postgres_changes", "broadcast"]);
export type DeliveryMode = z.infer<typeof deliveryModeSchema>;

export const categoryFlagsSchema = z.strictObject({
  enabled: z.boolean(),
  percentage: z.number().min(0, "percentage must be between 0 and 100").max(
    100,
    "percentage must be between 0 and 100",
  )
    .refine(
      (p) => Math.round(p * 100) === p * 100 || Math.abs(Math.round(p * 100) - p * 100) < 1e-9,
      {
        message: "percentage has a 0.01 grain",
      },
    ),
  adapters: z.array(adapterSchema).refine(
    (a) => new Set(a).size === a.length,
    "adapters must not repeat",
  ),
  delivery_mode: deliveryModeSchema,
  checksum_alg: z.enum(["crc32", "sha256"]),
});
export type CategoryFlags = z.infer<typeof categoryFlagsSchema>;

export const globalOverrideSchema = z.enum(["websocket_only", "realtime_only"]).nullable();
export type GlobalOverride = z.infer<typeof globalOverrideSchema>;

export const adapterHealthSchema = z.strictObject({
  error_threshold: z.number().gt(0, "error_threshold must be > 0").max(
    1,
    "error_threshold must be <= 1",
  ),
  latency_threshold_ms: z.number().int().positive("latency_threshold_ms must be > 0").max(600_000),
});
export type AdapterHealth = z.infer<typeof adapterHealthSchema>;

export const circuitBreakerSchema = z.strictObject({
  enabled: z.boolean(),
  /** Open period before half-open probes (CIRCUIT_BREAKER_RECOVERY_TIME_S). */
  recovery_time_s: z.number().positive().max(3600),
  /** A call slower than multiplier × baseline latency counts as slow. */
  latency_multiplier: z.number().min(1).max(100),
  /** Probes admitted while half-open; all must succeed to close. */
  half_open_requests: z.number().int().min(1).max(1000),
  /** Calls needed in the window before the breaker judges. */
  minimum_calls: z.number().int().min(1).max(100_000),
  /** Sliding window length. */
  window_s: z.number().int().min(5).max(3600),
  /** Share of slow calls that opens the breaker. */
  slow_call_rate_threshold: z.number().gt(0).max(1),
});
export type CircuitBreakerSettings = z.infer<typeof circuitBreakerSchema>;

export const rollbackSchema = z.strictObject({
  enabled: z.boolean(),
  error_rate_threshold: z.number().gt(0).max(1),
  error_rate_duration_s: z.number().int().positive(),
  latency_multiplier: z.number().min(1),
  latency_duration_s: z.number().int().positive(),
  connection_failures: z.number().int().positive(),
  connection_failures_window_s: z.number().int().positive(),
  /**
   * The failing adapter is the primary: leave it to its breaker (`none`: its
   * deliveries are deferred, not dropped) or set the global override to the other one.
   */
  on_primary_failure: z.enum(["global_override", "none"]).default("none"),
});
export type RollbackSettings = z.infer<typeof rollbackSchema>;

/** How reconcile compares a category's two copies of an event (seed 000 match_criteria). */
export const matchCriterionSchema = z.enum(["exact", "semantic", "presence"]);
export type MatchCriterion = z.infer<typeof matchCriterionSchema>;

const perCategory = <T extends z.ZodType>(value: T) =>
  z.strictObject(
    Object.fromEntries(CATEGORIES.map((c) => [c, value])) as Record<Category, T>,
  );

/** Reconciliation of the two delivery paths (seed 000, "Reconciliation logic"). */
export const reconcileSchema = z.strictObject({
  /** A counterpart within this long of the event is on time; events younger are not read yet. */
  buffer_window_s: z.number().int().min(1).max(3600),
  /** A counterpart later than the buffer but within this is `late`; none by then is missing. */
  max_delay_s: z.number().int().min(1).max(86_400),
  /** Two copies match when source, sequence_id and event_type agree and timestamps are this close. */
  timestamp_window_s: z.number().min(0).max(3600),
  /** `semantic`: numbers equal when |a − b| ≤ tolerance × max(|a|, |b|). */
  numeric_tolerance: z.number().min(0).max(1),
  criteria: perCategory(matchCriterionSchema),
  /** An alert is raised when a category's share of judged events not matched exceeds this. */
  alert_thresholds: perCategory(z.number().min(0).max(1)),
  /** Most new events (and ledger rows, and carried items) one run reads. */
  batch_limit: z.number().int().min(100).max(200_000),
  /** Findings logged one line each per run; the rest are counted in one line. */
  log_limit: z.number().int().min(0).max(10_000),
}).refine((r) => r.max_delay_s >= r.buffer_window_s, {
  message: "max_delay_s must be at least buffer_window_s",
  path: ["max_delay_s"],
});
export type ReconcileSettings = z.infer<typeof reconcileSchema>;

/** Every global setting, keyed as in `cutover.settings`. */
export const settingsSchema = z.strictObject({
  global_override: globalOverrideSchema,
  primary_adapter: adapterSchema,
  routing_key: z.enum(["source", "id"]),
  adapter_health: z.strictObject({ websocket: adapterHealthSchema, realtime: adapterHealthSchema }),
  circuit_breaker: circuitBreakerSchema,
  ...resilienceSettingsShape,
  rollback: rollbackSchema,
  reconcile: reconcileSchema,
  retention_days: z.number().int().min(1).max(3650),
  partitions_ahead_days: z.number().int().min(1).max(60),
  anon_read_enabled: z.boolean(),
  /** How long rows stay in monitoring_events_live (the postgres_changes feed). */
  live_retention_minutes: z.number().int().min(1).max(10_080),
  /** Broadcast on private channels (authorised by realtime.messages policies). */
  broadcast_private: z.boolean(),
  /** Largest broadcast payload ingest sends; Realtime's limit is 256 KB on the Free plan. */
  broadcast_max_payload_bytes: z.number().int().min(64 * 1024).max(3_000_000),
  /** How long the 10-second adapter and ingest stats buckets are kept; the metrics summary reads up to 24 h. */
  stats_retention_hours: z.number().int().min(24).max(24 * 90),
});
export type Settings = z.infer<typeof settingsSchema>;

export interface ConfigDefaults {
  categories: Record<Category, CategoryFlags>;
  settings: Settings;
}

/** The seeds' defaults (seed 000 / 002), before any environment override. */
export function builtInDefaults(): ConfigDefaults {
  const flags = (
    enabled: boolean,
    percentage: number,
    adapters: Adapter[],
    category: Category,
  ): CategoryFlags => ({
    enabled,
    percentage,
    adapters,
    delivery_mode: "postgres_changes",
    checksum_alg: DEFAULT_CHECKSUM_ALG[category],
  });
  return {
    categories: {
      critical: flags(true, 100, ["websocket", "realtime"], "critical"),
      performance: flags(true, 50, ["websocket"], "performance"),
      user_activity: flags(false, 0, ["realtime"], "user_activity"),
      system: flags(true, 100, ["websocket", "realtime"], "system"),
      debug: flags(false, 0, [], "debug"),
    },
    settings: {
      global_override: null,
      primary_adapter: "websocket",
      routing_key: "source",
      adapter_health: {
        websocket: { error_threshold: 0.05, latency_threshold_ms: 200 },
        realtime: { error_threshold: 0.05, latency_threshold_ms: 150 },
      },
      circuit_breaker: {
        enabled: true,
        recovery_time_s: 30,
        latency_multiplier: 2,
        half_open_requests: 5,
        minimum_calls: 20,
        window_s: 60,
        slow_call_rate_threshold: 0.5,
      },
      rollback: {
        enabled: true,
        error_rate_threshold: 0.05,
        error_rate_duration_s: 300,
        latency_multiplier: 2,
        latency_duration_s: 600,
        connection_failures: 3,
        connection_failures_window_s: 60,
        on_primary_failure: "none",
      },
      ...resilienceDefaults(),
      // Seed 000: exact data match for critical, semantic equivalence for
      // performance, presence only for debug, and the share each must reach
      // (100 %, 95 %, 90 %) as the alert thresholds. user_activity and system
      // are compared exactly (their copies come from the same stored row, so
      // any difference is a defect); user_activity alerts like critical (its
      // SHA-256 class), system like performance (its CRC-32 class).
      reconcile: {
        buffer_window_s: 30,
        max_delay_s: 300,
        timestamp_window_s: 5,
        numeric_tolerance: 0.001,
        criteria: {
          critical: "exact",
          performance: "semantic",
          user_activity: "exact",
          system: "exact",
          debug: "presence",
        },
        alert_thresholds: {
          critical: 0,
          performance: 0.05,
          user_activity: 0,
          system: 0.05,
          debug: 0.1,
        },
        batch_limit: 50_000,
        log_limit: 100,
      },
      retention_days: 30,
      partitions_ahead_days: 7,
      anon_read_enabled: false,
      live_retention_minutes: 60,
      broadcast_private: true,
      broadcast_max_payload_bytes: 200_000,
      stats_retention_hours: 48,
    },
  };
}

/** Thrown for an environment variable that does not parse; names the variable. */
export class ConfigEnvError extends Error {
  override name = "ConfigEnvError";
}

type Env = Record<string, string | undefined>;

function envNumber(
  env: Env,
  name: string,
  fallback: number,
  check: (n: number) => boolean,
  rule: string,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || !check(n)) {
    throw new ConfigEnvError(`${name}=${raw} is invalid: ${rule}`);
  }
  return n;
}

function envBool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (["true", "1", "yes", "on"].includes(raw)) return true;
  if (["false", "0", "no", "off"].includes(raw)) return false;
  throw new ConfigEnvError(`${name}=${env[name]} is invalid: expected true or false`);
}

function envAdapters(env: Env, name: string, fallback: Adapter[]): Adapter[] {
  const raw = env[name];
  if (raw === undefined) return fallback;
  const list = raw.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bad = list.filter((a) => !(ADAPTERS as readonly string[]).includes(a));
  if (bad.length) {
    throw new ConfigEnvError(`${name}=${raw} is invalid: unknown adapter(s) ${bad.join(", ")}`);
  }
  return [...new Set(list)] as Adapter[];
}

/**
 * Defaults with the seeds' environment variables applied:
 * `DUAL_WRITE_ENABLED`, `DUAL_WRITE_<CATEGORY>_{ENABLED,PERCENTAGE,ADAPTERS,DELIVERY_MODE,CHECKSUM}`,
 * `DUAL_WRITE_GLOBAL_OVERRIDE`, `DUAL_WRITE_PRIMARY_ADAPTER`,
 * `ADAPTER_<ADAPTER>_{ERROR_THRESHOLD,LATENCY_THRESHOLD_MS}`,
 * `CIRCUIT_BREAKER_{ENABLED,RECOVERY_TIME_S,LATENCY_MULTIPLIER,HALF_OPEN_REQUESTS,MINIMUM_CALLS,WINDOW_S}`,
 * `CUTOVER_RETENTION_DAYS`. Throws ConfigEnvError naming the first bad variable.
 */
export function defaultsFromEnv(env: Env): ConfigDefaults {
  const d = builtInDefaults();
  const allEnabled = envBool(env, "DUAL_WRITE_ENABLED", true);
  for (const category of CATEGORIES) {
    const prefix = `DUAL_WRITE_${category.toUpperCase()}`;
    const c = d.categories[category];
    c.enabled = allEnabled && envBool(env, `${prefix}_ENABLED`, c.enabled);
    c.percentage = envNumber(
      env,
      `${prefix}_PERCENTAGE`,
      c.percentage,
      (n) => n >= 0 && n <= 100,
      "0 to 100",
    );
    c.adapters = envAdapters(env, `${prefix}_ADAPTERS`, c.adapters);
    const mode = env[`${prefix}_DELIVERY_MODE`];
    if (mode !== undefined) {
      const parsed = deliveryModeSchema.safeParse(mode.trim());
      if (!parsed.success) {
        throw new ConfigEnvError(
          `${prefix}_DELIVERY_MODE=${mode} is invalid: postgres_changes or broadcast`,
        );
      }
      c.delivery_mode = parsed.data;
    }
    const alg = env[`${prefix}_CHECKSUM`]?.trim().toLowerCase();
    if (alg !== undefined) {
      if (alg !== "crc32" && alg !== "sha256") {
        throw new ConfigEnvError(`${prefix}_CHECKSUM=${alg} is invalid: crc32 or sha256`);
      }
      c.checksum_alg = alg as ChecksumAlg;
    }
  }
  const override = env.DUAL_WRITE_GLOBAL_OVERRIDE?.trim();
  if (override !== undefined && override !== "" && override !== "null" && override !== "none") {
    const parsed = globalOverrideSchema.safeParse(override);
    if (!parsed.success) {
      throw new ConfigEnvError(
        `DUAL_WRITE_GLOBAL_OVERRIDE=${override} is invalid: websocket_only, realtime_only or null`,
      );
    }
    d.settings.global_override = parsed.data;
  }
  const primary = env.DUAL_WRITE_PRIMARY_ADAPTER?.trim();
  if (primary) {
    const parsed = adapterSchema.safeParse(primary);
    if (!parsed.success) {
      throw new ConfigEnvError(
        `DUAL_WRITE_PRIMARY_ADAPTER=${primary} is invalid: websocket or realtime`,
      );
    }
    d.settings.primary_adapter = parsed.data;
  }
  for (const adapter of ADAPTERS) {
    const prefix = `ADAPTER_${adapter.toUpperCase()}`;
    const h = d.settings.adapter_health[adapter];
    h.error_threshold = envNumber(
      env,
      `${prefix}_ERROR_THRESHOLD`,
      h.error_threshold,
      (n) => n > 0 && n <= 1,
      "a rate in (0, 1]",
    );
    h.latency_threshold_ms = envNumber(
      env,
      `${prefix}_LATENCY_THRESHOLD_MS`,
      h.latency_threshold_ms,
      (n) => Number.isInteger(n) && n > 0,
      "a positive integer",
    );
  }
  const b = d.settings.circuit_breaker;
  b.enabled = envBool(env, "CIRCUIT_BREAKER_ENABLED", b.enabled);
  b.recovery_time_s = envNumber(
    env,
    "CIRCUIT_BREAKER_RECOVERY_TIME_S",
    b.recovery_time_s,
    (n) => n > 0,
    "a positive number of seconds",
  );
  b.latency_multiplier = envNumber(
    env,
    "CIRCUIT_BREAKER_LATENCY_MULTIPLIER",
    b.latency_multiplier,
    (n) => n >= 1,
    ">= 1",
  );
  b.half_open_requests = envNumber(
    env,
    "CIRCUIT_BREAKER_HALF_OPEN_REQUESTS",
    b.half_open_requests,
    (n) => Number.isInteger(n) && n >= 1,
    "a positive integer",
  );
  b.minimum_calls = envNumber(
    env,
    "CIRCUIT_BREAKER_MINIMUM_CALLS",
    b.minimum_calls,
    (n) => Number.isInteger(n) && n >= 1,
    "a positive integer",
  );
  b.window_s = envNumber(
    env,
    "CIRCUIT_BREAKER_WINDOW_S",
    b.window_s,
    (n) => Number.isInteger(n) && n >= 5,
    "an integer >= 5",
  );
  d.settings.retention_days = envNumber(
    env,
    "CUTOVER_RETENTION_DAYS",
    d.settings.retention_days,
    (n) => Number.isInteger(n) && n >= 1,
    "a positive integer",
  );
  return d;
}
