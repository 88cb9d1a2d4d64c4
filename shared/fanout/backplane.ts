/**
 * The backplane reader: how one ws-fanout instance learns about every ledger
 * row, whichever instance appended it.
 *
 * Why Postgres: the ledger is already the durable, totally ordered record of
 * the stream (cursors are assigned in commit order, see the migration), so
 * every instance can simply read it forward from the highest cursor it has
 * seen — no second broker to run, nothing held only in one instance's memory,
 * and a restarted or new instance catches up by reading. NOTIFY (sent in the
 * appending transaction, so only after commit) makes the read prompt; a poll
 * every `pollMs` covers notifications lost while the LISTEN connection was
 * down. Because the committed cursors are a gap-free prefix, "read rows above
 * my head" can never skip a row that commits later.
 */
import type { Sql } from "../db/client.ts";
import type { LedgerEntry, TailBatch } from "./cursor-stream.ts";
import { ledgerBounds, readLedgerAfter } from "./ledger.ts";

/** The NOTIFY channel cutover.append_ws_deliveries signals (payload: the new last cursor). */
export const LEDGER_CHANNEL = "cutover_ws_ledger";

export interface LedgerTailOptions {
  sql: Sql;
  /** Poll period covering lost notifications. */
  pollMs: number;
  /** Rows per read. */
  pageSize: number;
  log: (line: string) => void;
  /** Read entries after a cursor (default: the ledger table). */
  read?: (after: number, limit: number) => Promise<LedgerEntry[]>;
}

export interface LedgerTail {
  /** Reads the ledger's current end (the tail starts there) and starts listening. */
  start(): Promise<void>;
  /** The highest cursor read and dispatched. */
  readonly head: number;
  /** When the last read succeeded (ms since epoch), for health reporting. */
  readonly lastReadAt: number;
  /** Receives every batch read, in order; returns the unsubscribe function. */
  subscribe(listener: (batch: TailBatch) => void): () => void;
  /** Requests a read now (coalesced with one in progress). */
  poke(): void;
  stop(): Promise<void>;
}

/** Creates the tail; nothing happens until `start`. */
export function createLedgerTail(options: LedgerTailOptions): LedgerTail {
  const read = options.read ??
    ((after: number, limit: number) => readLedgerAfter(options.sql, after, limit));
  const listeners = new Set<(batch: TailBatch) => void>();
  let head = 0;
  let lastReadAt = 0;
  let reading = false;
  let again = false;
  let stopped = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  let unlisten: (() => Promise<void>) | undefined;

  async function pump(): Promise<void> {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        for (;;) {
          const entries = await read(head, options.pageSize);
          lastReadAt = Date.now();
          if (entries.length === 0 || stopped) break;
          const batch: TailBatch = { prev: head, entries };
          head = entries.at(-1)!.cursor;
          for (const listener of listeners) {
            try {
              listener(batch);
            } catch (error) {
              options.log(`ws-fanout: a connection failed on a batch: ${(error as Error).message}`);
            }
          }
          if (entries.length < options.pageSize) break;
        }
      } while (again && !stopped);
    } catch (error) {
      options.log(`ws-fanout: reading the ledger failed (retrying): ${(error as Error).message}`);
    } finally {
      reading = false;
    }
  }

  const tail: LedgerTail = {
    async start() {
      head = (await ledgerBounds(options.sql)).lastCursor;
      lastReadAt = Date.now();
      try {
        const listening = await options.sql.listen(
          LEDGER_CHANNEL,
          (payload) => {
            if (Number(payload) > head) void pump();
          },
          // Runs on every (re)connect of the LISTEN connection: catch up on
          // whatever was notified while it was down.
          () => void pump(),
        );
        unlisten = listening.unlisten;
      } catch (error) {
        // E.g. a transaction-mode pooler, which cannot LISTEN: the poll alone
        // still delivers everything, only later.
        options.log(
          `ws-fanout: LISTEN ${LEDGER_CHANNEL} failed; relying on the ${options.pollMs} ms poll: ${
            (error as Error).message
          }`,
        );
      }
      timer = setInterval(() => void pump(), options.pollMs);
    },
    get head() {
      return head;
    },
    get lastReadAt() {
      return lastReadAt;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    poke() {
      void pump();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      listeners.clear();
      await unlisten?.().catch(() => {});
    },
  };
  return tail;
}
