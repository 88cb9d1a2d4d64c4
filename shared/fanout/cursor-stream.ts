/**
 * The per-connection decision core: which ledger entries a connection sends,
 * so that it gets every entry after its start cursor that matches its filter
 * exactly once, in cursor order, across the seam between replay (reading the
 * ledger from Postgres) and the live tail (what this instance's backplane
 * reader pushes). No I/O: fed tail batches and replay pages, returns what to
 * send and whether another replay page is needed.
 *
 * The seam: while replaying, live batches are buffered (bounded, oldest
 * dropped). Each tail batch knows `prev`, the cursor the tail had reached
 * before it, and the tail's batches are contiguous. After a replay page has
 * advanced `position`, the buffer joins seamlessly when its first batch's
 * `prev <= position`: then nothing lies between what replay sent and what the
 * buffer holds. Entries at or below `position` are dropped (no duplicate at
 * the seam). When the buffer overflowed, its first batch starts above
 * `position` and replay simply continues until it catches up. In live mode a
 * batch whose `prev` lies above `position` means something was skipped; the
 * stream falls back to replaying rather than leave a gap.
 */
import type { Category } from "../events/schema.ts";
import { matchesFilter, type StreamFilter } from "./protocol.ts";

/** One ledger row as the fanout sends it. */
export interface LedgerEntry {
  cursor: number;
  source: string;
  category: Category;
  /** The event's JSON text, exactly as sent. */
  payload: string;
}

/** A contiguous run of the ledger as this instance's tail read it. */
export interface TailBatch {
  /** The cursor the tail had reached before this batch. */
  prev: number;
  /** Ascending; every ledger row in (prev, last cursor]. */
  entries: LedgerEntry[];
}

/** One replay read: entries with cursor > the stream's position (filtered or not), ascending. */
export interface ReplayPage {
  entries: LedgerEntry[];
  /** The read covered every ledger row up to this cursor (its last entry when it hit its row limit, else the end of its scan window). */
  through: number;
  /** The read reached the ledger's last cursor (in its own snapshot): nothing committed lies beyond `through`. */
  atEnd: boolean;
}

export interface StreamStep {
  /** Entries to send now, ascending by cursor, all matching the filter. */
  deliver: LedgerEntry[];
  /** True when the caller must read another replay page (from `position`). */
  replay: boolean;
}

export interface CursorStreamOptions {
  /** The stream starts after this cursor. */
  start: number;
  /** Begin by replaying from the ledger (a client resuming with `since`). */
  replay: boolean;
  filter: StreamFilter;
  /** Most live entries buffered while replaying; past it the oldest are dropped. */
  maxBuffered: number;
}

export interface CursorStream {
  /** Everything at or below this cursor has been dealt with (sent or filtered out). */
  readonly position: number;
  readonly mode: "replaying" | "live";
  /** Live entries held while replaying. */
  readonly buffered: number;
  /** A batch from the tail. */
  live(batch: TailBatch): StreamStep;
  /** The result of reading the ledger after `position`. */
  replayed(page: ReplayPage): StreamStep;
}

/** Creates the stream state for one connection. */
export function createCursorStream(options: CursorStreamOptions): CursorStream {
  let position = options.start;
  let mode: "replaying" | "live" = options.replay ? "replaying" : "live";
  let buffer: TailBatch[] = [];
  let buffered = 0;
  // The highest cursor dropped from a full buffer: replay must pass it before going live.
  let droppedThrough = 0;

  const take = (entries: LedgerEntry[], out: LedgerEntry[]) => {
    for (const entry of entries) {
      if (entry.cursor <= position) continue;
      if (matchesFilter(options.filter, entry.source, entry.category)) out.push(entry);
      position = entry.cursor;
    }
  };

  const push = (batch: TailBatch) => {
    buffer.push(batch);
    buffered += batch.entries.length;
    while (buffered > options.maxBuffered && buffer.length > 0) {
      const dropped = buffer.shift()!;
      buffered -= dropped.entries.length;
      droppedThrough = Math.max(droppedThrough, dropped.entries.at(-1)!.cursor);
    }
  };

  return {
    get position() {
      return position;
    },
    get mode() {
      return mode;
    },
    get buffered() {
      return buffered;
    },
    live(batch) {
      if (batch.entries.length === 0) return { deliver: [], replay: false };
      if (mode === "replaying") {
        push(batch);
        return { deliver: [], replay: false };
      }
      if (batch.prev > position) {
        mode = "replaying";
        push(batch);
        return { deliver: [], replay: true };
      }
      const deliver: LedgerEntry[] = [];
      take(batch.entries, deliver);
      return { deliver, replay: false };
    },
    replayed(page) {
      const deliver: LedgerEntry[] = [];
      take(page.entries, deliver);
      if (page.through > position) position = page.through;
      // Drop buffered batches wholly behind the replay.
      while (buffer.length > 0 && buffer[0]!.entries.at(-1)!.cursor <= position) {
        buffered -= buffer.shift()!.entries.length;
      }
      const first = buffer[0];
      if (first ? first.prev <= position : page.atEnd && droppedThrough <= position) {
        for (const batch of buffer) take(batch.entries, deliver);
        buffer = [];
        buffered = 0;
        mode = "live";
        return { deliver, replay: false };
      }
      return { deliver, replay: true };
    },
  };
}
