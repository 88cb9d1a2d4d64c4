/**
 * Reconnect delays: exponential backoff with full jitter (AWS's "Exponential
 * Backoff and Jitter"): attempt n waits a uniformly random time in
 * [0, min(maxMs, initialMs · 2^n)), so a fleet of clients dropped at once does
 * not reconnect in lockstep. Defaults 1 s → 30 s. Built on cockatiel's
 * ExponentialBackoff with the randomness injected, so the schedule is a pure
 * function of (attempt, random) and property-testable.
 */
import { ExponentialBackoff, type IBackoff, noJitterGenerator } from "cockatiel";

export interface ReconnectBackoffOptions {
  /** Ceiling of the first delay (default 1,000 ms). */
  initialMs?: number;
  /** Largest ceiling (default 30,000 ms). */
  maxMs?: number;
  /** Uniform in [0, 1) (default Math.random). */
  random?: () => number;
}

export const DEFAULT_BACKOFF = { initialMs: 1_000, maxMs: 30_000 } as const;

/** The ceiling of attempt `attempt` (0-based): min(maxMs, initialMs · 2^attempt). */
export function backoffCeilingMs(attempt: number, initialMs: number, maxMs: number): number {
  const [ceiling] = noJitterGenerator(attempt, {
    initialDelay: initialMs,
    maxDelay: maxMs,
    exponent: 2,
    generator: noJitterGenerator,
  });
  return ceiling;
}

/**
 * A fresh backoff schedule: call `.next()` on the result for each failed
 * attempt and wait `.duration` ms. Start a new schedule after a connection
 * succeeds.
 */
export function reconnectBackoff(options: ReconnectBackoffOptions = {}): IBackoff<unknown> {
  const initialMs = options.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const maxMs = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
  const random = options.random ?? Math.random;
  return new ExponentialBackoff<number>({
    initialDelay: initialMs,
    maxDelay: maxMs,
    generator: (attempt = 0) => [
      random() * backoffCeilingMs(attempt, initialMs, maxMs),
      attempt + 1,
    ],
  }).next();
}
