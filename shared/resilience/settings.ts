/**
 * The resilience settings (keys of `cutover.settings`, validated by the flags
 * API through shared/config/settings.ts, which spreads them into the one
 * settings schema and the built-in defaults): in-process retries, the
 * dead-letter queue, the dual-write restore ramp, adaptive batching. Their
 * defaults live here and nowhere else.
 */
import { z } from "zod";

const retryShape = {
  /** Ceiling of the first retry delay; each retry doubles it (full jitter: uniform below it). */
  base_ms: z.number().int().min(1).max(600_000),
  /** Largest ceiling. */
  cap_ms: z.number().int().min(1).max(86_400_000),
  /** Attempts in all, the first included. */
  max_attempts: z.number().int().min(1).max(100),
};
const capAboveBase = (r: { base_ms: number; cap_ms: number }) => r.cap_ms >= r.base_ms;
const capAboveBaseError = { message: "cap_ms must be >= base_ms", path: ["cap_ms"] };

const batchTierSchema = z.strictObject({
  /** Streams at or above this many events per second use the tier. */
  min_rate: z.number().min(0),
  max_events: z.number().int().min(1).max(1000),
  max_wait_ms: z.number().int().min(0).max(60_000),
});

/** The settings' shapes, spread into shared/config/settings.ts's settingsSchema. */
export const resilienceSettingsShape = {
  /** In-process retries of a relay before it becomes a dead letter (shared/resilience/backoff.ts). */
  retry: z.strictObject(retryShape).refine(capAboveBase, capAboveBaseError),
  /** The dead-letter queue (shared/resilience/dead-letters.ts). */
  dead_letters: z.strictObject({
    ...retryShape,
    batch_size: z.number().int().min(1).max(10_000),
    lease_s: z.number().int().min(5).max(3600),
    adopt_after_s: z.number().int().min(5).max(86_400),
    delivered_retention_hours: z.number().int().min(1).max(24 * 90),
    dead_retention_days: z.number().int().min(1).max(3650),
    max_dead_rows: z.number().int().min(100).max(100_000_000),
  }).refine(capAboveBase, capAboveBaseError),
  /** gradual_dual_write_restore after a breaker closes (shared/resilience/restore.ts). */
  dual_write_restore: z.strictObject({
    enabled: z.boolean(),
    duration_s: z.number().int().min(1).max(86_400),
    step_s: z.number().int().min(1).max(3600),
    initial_share: z.number().gt(0).max(1),
  }),
  /** Adaptive batching of relays by event frequency (shared/resilience/batching.ts). */
  batching: z.strictObject({
    enabled: z.boolean(),
    high: batchTierSchema,
    medium: batchTierSchema,
    low: batchTierSchema,
    max_pending: z.number().int().min(10).max(1_000_000),
  }),
};

type Shape = typeof resilienceSettingsShape;
export type ResilienceSettings = { [K in keyof Shape]: z.infer<Shape[K]> };

/** The defaults: seed 004 (3 attempts, backoff factor 2), seed 003 (the batching tiers). */
export function resilienceDefaults(): ResilienceSettings {
  return {
    retry: { base_ms: 200, cap_ms: 2_000, max_attempts: 3 },
    dead_letters: {
      base_ms: 5_000,
      cap_ms: 600_000,
      max_attempts: 12,
      batch_size: 500,
      lease_s: 60,
      adopt_after_s: 60,
      delivered_retention_hours: 24,
      dead_retention_days: 30,
      max_dead_rows: 100_000,
    },
    dual_write_restore: { enabled: true, duration_s: 300, step_s: 30, initial_share: 0.1 },
    batching: {
      enabled: true,
      high: { min_rate: 100, max_events: 100, max_wait_ms: 100 },
      medium: { min_rate: 10, max_events: 50, max_wait_ms: 500 },
      low: { min_rate: 0, max_events: 10, max_wait_ms: 2_000 },
      max_pending: 20_000,
    },
  };
}
