/**
 * gradual_dual_write_restore (seed 000): after an adapter's breaker closes,
 * the share of a category's split that is dual-written to it ramps back from
 * `initial_share` to 1 over `duration_s`, in steps of `step_s`, instead of
 * jumping back to the operator's percentage at once — a freshly recovered
 * adapter also has its dead letters to drain.
 *
 * How routing applies it (shared/routing/route.ts, `restoreShare`): inside a
 * category's split, a recovering SECONDARY adapter is added only for routing
 * keys whose bucket is below `floor(round(percentage × 100) × share)`. So:
 * - sticky: at a given share, a key always takes the same route;
 * - monotonic: the share only grows during a ramp, and a key admitted at
 *   share s is admitted at every s' ≥ s, so a restored key stays restored;
 * - the primary adapter is never ramped (routing never drops an event), and a
 *   key held back goes to its other adapters as an operator's lower
 *   percentage would route it.
 * Every instance computes the same share from the shared `closedAt` of the
 * breaker (cutover.breaker_state.closed_at) and the database clock.
 */

/** The ramp's settings (`dual_write_restore`). */
export interface RestoreSettings {
  enabled: boolean;
  /** From close to full share. */
  duration_s: number;
  /** The share moves in steps this long (fewer route changes, still monotonic). */
  step_s: number;
  /** Share right after the close, in (0, 1]. */
  initial_share: number;
}

/**
 * The share (0..1] of a category's split dual-written to an adapter whose
 * breaker closed at `closedAt` (epoch ms; null: never opened → 1), at `now`.
 * Non-decreasing in `now`; 1 once `duration_s` has passed or when disabled. Pure.
 */
export function restoreShare(
  closedAt: number | null,
  now: number,
  settings: RestoreSettings,
): number {
  if (!settings.enabled || closedAt === null) return 1;
  const durationMs = settings.duration_s * 1000;
  const elapsed = now - closedAt;
  if (durationMs <= 0 || elapsed >= durationMs) return 1;
  if (elapsed < 0) return settings.initial_share;
  const stepMs = Math.max(1, settings.step_s * 1000);
  const stepped = Math.floor(elapsed / stepMs) * stepMs;
  const share = settings.initial_share + (1 - settings.initial_share) * (stepped / durationMs);
  return Math.min(1, Math.max(settings.initial_share, share));
}

/**
 * The split threshold (0..10000 buckets) for a recovering adapter: the
 * category's threshold scaled by the share, rounded down. Monotonic in both. Pure.
 */
export function restoredThreshold(threshold: number, share: number): number {
  if (share >= 1) return threshold;
  if (!(share > 0)) return 0;
  return Math.floor(threshold * share);
}
