/**
 * Remembers which event ids were delivered, for a sliding time window, so
 * that a backfill overlapping the live stream delivers nothing twice. Bounded:
 * at most `maxEntries` ids, the oldest (by received time) evicted first.
 */
export class DeliveredIds {
  #ids = new Map<string, number>();
  constructor(private readonly windowMs = 120_000, private readonly maxEntries = 100_000) {}

  /** True the first time an id is offered; false for a repeat. */
  offer(id: string, receivedAtMs: number): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.set(id, receivedAtMs);
    if (this.#ids.size > this.maxEntries) {
      this.evict(this.newest() - this.windowMs, this.#ids.size - this.maxEntries);
    }
    return true;
  }

  /** Forgets ids older than `windowMs` before `nowMs`. */
  prune(nowMs: number): void {
    this.evict(nowMs - this.windowMs, 0);
  }

  get size(): number {
    return this.#ids.size;
  }

  private newest(): number {
    let max = -Infinity;
    for (const t of this.#ids.values()) if (t > max) max = t;
    return max;
  }

  private evict(beforeMs: number, atLeast: number): void {
    let removed = 0;
    // Map iteration is insertion order, which tracks arrival closely enough.
    for (const [id, t] of this.#ids) {
      if (t < beforeMs || removed < atLeast) {
        this.#ids.delete(id);
        removed++;
      } else break;
    }
  }
}
