/**
 * Events per second by category, as this dashboard receives them: a ring of
 * one-second buckets over the last `seconds`, for the "live" chart range.
 * Pure; the caller passes the clock. Memory is fixed (seconds × categories).
 */
import { type Category, CATEGORY_LIST } from "./events.ts";

export interface RateSeries {
  /** Bucket start times, seconds since epoch, oldest first. */
  t: number[];
  /** Events per second for each category, aligned with `t`. */
  byCategory: Record<Category, number[]>;
  total: number[];
}

export class RateMeter {
  readonly #counts: Float64Array[];
  #head: number | undefined;

  constructor(readonly seconds = 300) {
    this.#counts = CATEGORY_LIST.map(() => new Float64Array(seconds));
  }

  /** Counts `n` events of `category` at `nowMs`. */
  record(category: Category, nowMs: number, n = 1): void {
    const sec = Math.floor(nowMs / 1000);
    this.#advance(sec);
    const i = CATEGORY_LIST.indexOf(category);
    if (i < 0) return;
    this.#counts[i]![sec % this.seconds]! += n;
  }

  /** Zeroes the buckets skipped since the last event, up to `sec`. */
  #advance(sec: number): void {
    if (this.#head === undefined) {
      this.#head = sec;
      return;
    }
    if (sec <= this.#head) return;
    const gap = Math.min(sec - this.#head, this.seconds);
    for (let s = 1; s <= gap; s++) {
      const slot = (this.#head + s) % this.seconds;
      for (const c of this.#counts) c[slot] = 0;
    }
    this.#head = sec;
  }

  /** The last `seconds` complete and current buckets up to `nowMs`, oldest first. */
  series(nowMs: number): RateSeries {
    const now = Math.floor(nowMs / 1000);
    this.#advance(now);
    const t: number[] = [];
    const byCategory = Object.fromEntries(CATEGORY_LIST.map((c) => [c, [] as number[]])) as Record<
      Category,
      number[]
    >;
    const total: number[] = [];
    for (let s = now - this.seconds + 1; s <= now; s++) {
      t.push(s);
      let sum = 0;
      CATEGORY_LIST.forEach((c, i) => {
        const v = s < 0 ? 0 : this.#counts[i]![s % this.seconds]!;
        byCategory[c].push(v);
        sum += v;
      });
      total.push(sum);
    }
    return { t, byCategory, total };
  }

  /** Mean events/s over the last `window` complete seconds before `nowMs`. */
  rate(nowMs: number, window = 5): number {
    const s = this.series(nowMs).total;
    const complete = s.slice(-window - 1, -1);
    return complete.length ? complete.reduce((a, b) => a + b, 0) / complete.length : 0;
  }
}
