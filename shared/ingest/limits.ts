/**
 * Ingest's published limits (DESIGN §3). Defaults: 1 MiB per request after
 * decompression, 32 KiB per event, 1,000 events per request; a timestamp at
 * most 1 h ahead of the server clock. Each is overridable by environment.
 */
import { ConfigEnvError } from "../config/settings.ts";

export interface IngestLimits {
  /** Bytes of request body after decompression (and before, for the raw body). */
  maxRequestBytes: number;
  /** Bytes of one event's JSON. */
  maxEventBytes: number;
  maxEvents: number;
  /** How far ahead of the server clock a timestamp may be. */
  maxFutureSkewMs: number;
  /** Concurrent requests one instance accepts before shedding load with 429. */
  maxInFlight: number;
}

export const DEFAULT_INGEST_LIMITS: IngestLimits = {
  maxRequestBytes: 1024 * 1024,
  maxEventBytes: 32 * 1024,
  maxEvents: 1000,
  maxFutureSkewMs: 60 * 60 * 1000,
  maxInFlight: 64,
};

const ENV_NAMES: Record<keyof IngestLimits, string> = {
  maxRequestBytes: "CUTOVER_INGEST_MAX_REQUEST_BYTES",
  maxEventBytes: "CUTOVER_INGEST_MAX_EVENT_BYTES",
  maxEvents: "CUTOVER_INGEST_MAX_EVENTS",
  maxFutureSkewMs: "CUTOVER_INGEST_MAX_FUTURE_SKEW_MS",
  maxInFlight: "CUTOVER_INGEST_MAX_IN_FLIGHT",
};

/** Limits with environment overrides; throws ConfigEnvError naming a bad variable. */
export function limitsFromEnv(env: Record<string, string | undefined>): IngestLimits {
  const limits = { ...DEFAULT_INGEST_LIMITS };
  for (const key of Object.keys(ENV_NAMES) as (keyof IngestLimits)[]) {
    const raw = env[ENV_NAMES[key]];
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) {
      throw new ConfigEnvError(`${ENV_NAMES[key]}=${raw} is invalid: a positive integer`);
    }
    limits[key] = n;
  }
  return limits;
}
