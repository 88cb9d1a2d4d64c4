/**
 * Retry delays: exponential backoff with FULL jitter (AWS, "Exponential
 * Backoff and Jitter"): the delay before retry n (1-based) is uniform in
 * [0, min(cap, base · 2^(n-1))). Full jitter spreads a fleet of instances
 * that failed together, so they do not retry in lockstep.
 *
 * The exponential ceiling is cockatiel's `noJitterGenerator` and the
 * in-process retry loop is cockatiel's `retry` policy; what is ours is the
 * randomness being injectable (so the schedule is a pure function of
 * (attempt, random) and property-testable) and the `RetrySettings` shape the
 * settings table holds.
 */
import { ExponentialBackoff, handleWhenResult, noJitterGenerator, retry } from "cockatiel";

/** Backoff knobs: first ceiling, largest ceiling, and total attempts (first call included). */
export interface RetrySettings {
  base_ms: number;
  cap_ms: number;
  max_attempts: number;
}

/**
 * The ceiling before retry `retry` (1-based): min(cap, base · 2^(retry-1)).
 * Retry 0 or less has ceiling 0. Pure.
 */
export function backoffCeilingMs(
  retry: number,
  settings: Pick<RetrySettings, "base_ms" | "cap_ms">,
): number {
  if (retry <= 0) return 0;
  const [ceiling] = noJitterGenerator(retry - 1, {
    initialDelay: settings.base_ms,
    maxDelay: settings.cap_ms,
    exponent: 2,
    generator: noJitterGenerator,
  });
  return ceiling;
}

/**
 * The full-jitter delay before retry `retry` (1-based): `random() × ceiling`,
 * so always in [0, ceiling) for random in [0, 1). Pure given `random`.
 */
export function fullJitterDelayMs(
  retry: number,
  settings: Pick<RetrySettings, "base_ms" | "cap_ms">,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeilingMs(retry, settings));
}

export interface RetryOptions<T> {
  settings: RetrySettings;
  /** True for a result worth another attempt (e.g. a relay that failed with 503). */
  shouldRetry: (result: T) => boolean;
  random?: () => number;
  /** Called before each retry's wait (logging). */
  onRetry?: (attempt: number, delayMs: number) => void;
  /** Aborting stops further retries; the last result is returned. */
  signal?: AbortSignal;
}

/**
 * Runs `attempt` until it returns a result `shouldRetry` rejects, or
 * `settings.max_attempts` attempts were made, waiting a full-jitter delay
 * between attempts (cockatiel's RetryPolicy). Resolves with the last result
 * and how many attempts were made; rejects only when `attempt` throws.
 *
 * @example
 * const { result, attempts } = await retryWithBackoff((n) => relay.relayKeys(keys), {
 *   settings: { base_ms: 200, cap_ms: 2000, max_attempts: 3 },
 *   shouldRetry: (outcome) => outcome.failed > 0,
 * });
 */
export async function retryWithBackoff<T>(
  attempt: (attemptIndex: number) => Promise<T>,
  options: RetryOptions<T>,
): Promise<{ result: T; attempts: number }> {
  const random = options.random ?? Math.random;
  let attempts = 0;
  const policy = retry(handleWhenResult((r) => options.shouldRetry(r as T)), {
    maxAttempts: Math.max(0, options.settings.max_attempts - 1),
    backoff: new ExponentialBackoff<number>({
      initialDelay: options.settings.base_ms,
      maxDelay: options.settings.cap_ms,
      generator: (retryIndex = 0) => [
        fullJitterDelayMs(retryIndex + 1, options.settings, random),
        retryIndex + 1,
      ],
    }),
  });
  if (options.onRetry) {
    policy.onRetry((event) => options.onRetry!(event.attempt, event.delay));
  }
  const result = await policy.execute(() => attempt(attempts++), options.signal);
  return { result, attempts };
}
