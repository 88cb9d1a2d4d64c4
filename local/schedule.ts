/**
 * When a scheduled job runs next, for schedules in pg_cron's syntax: a
 * five-field cron expression (minute hour day month weekday, UTC, as pg_cron
 * evaluates them) or '[1-59] seconds'. The same strings drive pg_cron on
 * hosted Supabase and the local scheduler. Cron expressions are evaluated by
 * croner; the seconds form is ours (pg_cron's own extension to cron).
 */
import { Cron } from "croner";

const SECONDS = /^\s*([1-9]|[1-5][0-9])\s+seconds?\s*$/i;

/** Throws a readable error when `schedule` is not something pg_cron accepts. */
export function validateSchedule(schedule: string): void {
  if (SECONDS.test(schedule)) return;
  if (schedule.trim().split(/\s+/).length !== 5) {
    throw new Error(`schedule "${schedule}" must be five cron fields or "N seconds" (1-59)`);
  }
  new Cron(schedule, { timezone: "UTC", paused: true });
}

/** The first run strictly after `after`. */
export function nextRun(schedule: string, after: Date): Date {
  const seconds = SECONDS.exec(schedule);
  if (seconds) {
    // pg_cron runs "N seconds" jobs every N seconds; aligned to the epoch so
    // that every scheduler computes the same instants.
    const step = Number(seconds[1]) * 1000;
    return new Date((Math.floor(after.getTime() / step) + 1) * step);
  }
  validateSchedule(schedule);
  const next = new Cron(schedule, { timezone: "UTC", paused: true }).nextRun(after);
  if (!next) throw new Error(`schedule "${schedule}" never runs`);
  return next;
}
