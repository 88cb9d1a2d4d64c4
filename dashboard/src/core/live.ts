/**
 * The live tail's state, pure (no DOM, no clock of its own): events offered
 * by the data sources, deduplicated by id, shown newest first through a
 * filter, with pause.
 *
 * Cost model for 1,000 events/s: `offer` is O(1) per event and only queues
 * (sources call it as messages arrive); `flush` runs once per animation
 * frame and moves the queue into the tail in one step. Every collection is
 * bounded: the tail, the queue, the pause buffer and the id index.
 *
 * Pause keeps capturing: while paused, flushed rows wait in a bounded buffer
 * (the oldest dropped past its capacity, and counted); resume puts them into
 * the tail in arrival order.
 */
import {
  type DashboardEvent,
  type Delivery,
  EMPTY_FILTER,
  isEmptyFilter,
  matchesFilter,
  mergeEvent,
  type Path,
  type TailFilter,
  type TailRow,
} from "./events.ts";
import { Ring } from "./ring.ts";

export interface LiveStoreOptions {
  /** Rows kept in the tail (default 5,000). */
  tailCapacity?: number;
  /** Rows kept while paused (default 20,000). */
  pauseCapacity?: number;
  /** Ids of rows that left the tail, remembered for deduplication (default 50,000). */
  idCapacity?: number;
}

const PATH_BITS: Record<Path | "history", number> = { websocket: 1, realtime: 2, history: 4 };

/** What `offer` did with one event. */
export type OfferOutcome = "new" | "merged" | "duplicate";

export class LiveStore {
  readonly tailCapacity: number;
  readonly pauseCapacity: number;
  readonly #idCapacity: number;
  /** Newest last. */
  readonly #tail: Ring<TailRow>;
  readonly #queue: Ring<TailRow>;
  readonly #waiting: Ring<TailRow>;
  /** Rows held by the tail, the queue or the pause buffer, by event id. */
  readonly #byId = new Map<string, TailRow>();
  /**
   * Ids of rows that left the tail, with the paths that delivered them (bit
   * mask), so a late copy from the other path is recognised without keeping
   * the event. Strings only: bounded by `idCapacity`.
   */
  readonly #gone = new Map<string, number>();
  #order = 0;
  #paused = false;
  #filter: TailFilter = EMPTY_FILTER;
  /** The filtered tail, newest first. */
  #view: TailRow[] = [];
  /** Rows added to the top of the view by the last flush (for scroll anchoring). */
  addedOnTop = 0;
  /** Events queued but dropped before a frame could show them (the tail would have evicted them anyway). */
  get queueDropped(): number {
    return this.#queue.evicted;
  }

  constructor(options: LiveStoreOptions = {}) {
    this.tailCapacity = options.tailCapacity ?? 5_000;
    this.pauseCapacity = options.pauseCapacity ?? 20_000;
    this.#idCapacity = Math.max(
      options.idCapacity ?? 50_000,
      2 * (this.tailCapacity + this.pauseCapacity),
    );
    this.#tail = new Ring(this.tailCapacity);
    // A frame never needs to show more than the tail holds.
    this.#queue = new Ring(this.tailCapacity);
    this.#waiting = new Ring(this.pauseCapacity);
  }

  /**
   * Offers one event delivered by `path`. The first copy of an id becomes a
   * row (queued for the next flush); a copy from another path is recorded on
   * the existing row; a repeat from the same path is a duplicate.
   */
  offer(
    event: DashboardEvent,
    path: Path | "history",
    delivery: Delivery,
    now: number,
  ): OfferOutcome {
    const gone = this.#gone.get(event.id);
    if (gone !== undefined) {
      const bit = PATH_BITS[path];
      if (gone & bit || path === "history") return "duplicate";
      this.#gone.set(event.id, gone | bit);
      return "merged";
    }
    const known = this.#byId.get(event.id);
    if (known) {
      mergeEvent(known.event, event);
      if (path === "history" || known.seenAt[path] !== undefined) return "duplicate";
      known.seenAt[path] = now;
      if (delivery === "backfill") known.backfilledOn.push(path);
      return "merged";
    }
    const row: TailRow = {
      order: ++this.#order,
      event,
      seenAt: path === "history" ? {} : { [path]: now },
      backfilledOn: path !== "history" && delivery === "backfill" ? [path] : [],
      fromHistory: path === "history",
    };
    this.#byId.set(event.id, row);
    this.#forget(this.#queue.push(row));
    return "new";
  }

  /** A row evicted from a bounded collection: keep its id and paths, drop the event. */
  #forget(row: TailRow | undefined): void {
    if (!row) return;
    this.#byId.delete(row.event.id);
    let mask = 0;
    for (const p of Object.keys(row.seenAt) as Path[]) mask |= PATH_BITS[p];
    this.#gone.set(row.event.id, mask);
    if (this.#gone.size > this.#idCapacity) {
      // Map iteration is insertion order: the first key is the oldest id.
      this.#gone.delete(this.#gone.keys().next().value as string);
    }
  }

  /** The row for an id, while the tail (or the queue, or the pause buffer) holds it. */
  get(id: string): TailRow | undefined {
    return this.#byId.get(id);
  }

  /**
   * Moves queued rows into the tail (or, while paused, into the pause
   * buffer). Returns true when the visible view changed.
   */
  flush(): boolean {
    this.addedOnTop = 0;
    if (this.#queue.size === 0) return false;
    const rows = this.#queue.drain();
    if (this.#paused) {
      for (const row of rows) this.#forget(this.#waiting.push(row));
      return false;
    }
    this.#append(rows);
    return true;
  }

  #append(rows: TailRow[]): void {
    for (const row of rows) this.#forget(this.#tail.push(row));
    const fresh: TailRow[] = [];
    for (let i = rows.length - 1; i >= 0; i--) {
      const row = rows[i]!;
      if (row.order >= (this.#tail.oldest()?.order ?? 0) && matchesFilter(row, this.#filter)) {
        fresh.push(row);
      }
    }
    this.addedOnTop = fresh.length;
    const oldestKept = this.#tail.oldest()?.order ?? 0;
    let keep = this.#view.length;
    while (keep > 0 && this.#view[keep - 1]!.order < oldestKept) keep--;
    this.#view = fresh.length === 0
      ? this.#view.slice(0, keep)
      : fresh.concat(keep === this.#view.length ? this.#view : this.#view.slice(0, keep));
  }

  /** The filtered tail, newest first. Do not mutate. */
  get view(): readonly TailRow[] {
    return this.#view;
  }

  /** Rows in the tail (before filtering). */
  get size(): number {
    return this.#tail.size;
  }

  get filter(): TailFilter {
    return this.#filter;
  }

  /** Applies a new filter to the whole tail. */
  setFilter(filter: TailFilter): void {
    this.#filter = filter;
    const all = this.#tail.toArray();
    const out: TailRow[] = [];
    const pass = isEmptyFilter(filter) ? () => true : (r: TailRow) => matchesFilter(r, filter);
    for (let i = all.length - 1; i >= 0; i--) if (pass(all[i]!)) out.push(all[i]!);
    this.#view = out;
    this.addedOnTop = 0;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Rows captured while paused, waiting to be shown. */
  get waiting(): number {
    return this.#waiting.size + this.#queue.size * (this.#paused ? 1 : 0);
  }

  /** Rows captured while paused but dropped because the pause buffer was full. */
  get waitingDropped(): number {
    return this.#waiting.evicted;
  }

  pause(): void {
    this.#paused = true;
  }

  /** Shows everything captured while paused, in arrival order. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const rows = this.#waiting.drain().concat(this.#queue.drain());
    this.#append(rows);
  }

  /** Forgets every row (the id index too). */
  clear(): void {
    this.#tail.clear();
    this.#queue.clear();
    this.#waiting.clear();
    this.#byId.clear();
    this.#gone.clear();
    this.#view = [];
    this.addedOnTop = 0;
  }
}
