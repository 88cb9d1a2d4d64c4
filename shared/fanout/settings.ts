/**
 * ws-fanout's operating limits, each with its default here and an environment
 * override (CUTOVER_FANOUT_*), so tests can shorten timings without code.
 */
import { ConfigEnvError } from "../config/settings.ts";

export interface FanoutSettings {
  /** `{type:"ping"}` period (CUTOVER_FANOUT_HEARTBEAT_MS). */
  heartbeatMs: number;
  /**
   * A connection is closed with 1012 this long after it opened, safely before
   * the platform's wall-clock limit (CUTOVER_FANOUT_MAX_CONNECTION_MS).
   */
  maxConnectionMs: number;
  /**
   * Bytes a client may have unsent (the socket's bufferedAmount) before it is
   * cut off as a slow consumer (CUTOVER_FANOUT_MAX_QUEUE_BYTES).
   */
  maxQueueBytes: number;
  /** Live entries held per connection while it replays (CUTOVER_FANOUT_MAX_BUFFERED_EVENTS). */
  maxBufferedEvents: number;
  /** Open connections per instance; more are refused with 503 (CUTOVER_FANOUT_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Poll period covering lost notifications (CUTOVER_FANOUT_POLL_MS). */
  pollMs: number;
  /** Period of the instance's own outbox drain (CUTOVER_FANOUT_DRAIN_MS). */
  drainMs: number;
  /** Ledger rows per read, and events per batch message at most (CUTOVER_FANOUT_PAGE_SIZE). */
  pageSize: number;
}

export const DEFAULT_FANOUT_SETTINGS: FanoutSettings = {
  heartbeatMs: 30_000,
  maxConnectionMs: 340_000,
  maxQueueBytes: 4 * 1024 * 1024,
  maxBufferedEvents: 20_000,
  maxConnections: 2_000,
  pollMs: 1_000,
  drainMs: 5_000,
  pageSize: 500,
};

const ENV_NAMES: Record<keyof FanoutSettings, string> = {
  heartbeatMs: "CUTOVER_FANOUT_HEARTBEAT_MS",
  maxConnectionMs: "CUTOVER_FANOUT_MAX_CONNECTION_MS",
  maxQueueBytes: "CUTOVER_FANOUT_MAX_QUEUE_BYTES",
  maxBufferedEvents: "CUTOVER_FANOUT_MAX_BUFFERED_EVENTS",
  maxConnections: "CUTOVER_FANOUT_MAX_CONNECTIONS",
  pollMs: "CUTOVER_FANOUT_POLL_MS",
  drainMs: "CUTOVER_FANOUT_DRAIN_MS",
  pageSize: "CUTOVER_FANOUT_PAGE_SIZE",
};

/** Settings with environment overrides; throws ConfigEnvError naming a bad variable. */
export function fanoutSettingsFromEnv(env: Record<string, string | undefined>): FanoutSettings {
  const settings = { ...DEFAULT_FANOUT_SETTINGS };
  for (const key of Object.keys(ENV_NAMES) as (keyof FanoutSettings)[]) {
    const raw = env[ENV_NAMES[key]];
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) {
      throw new ConfigEnvError(`${ENV_NAMES[key]}=${raw} is invalid: a positive integer`);
    }
    settings[key] = n;
  }
  return settings;
}
