/**
 * The replication feed: a logical replication stream (`pgoutput`) of the given
 * publications over a temporary slot — the mechanism Supabase Realtime uses —
 * delivered as committed transactions, in commit order, one batch at a time.
 *
 * The connection is postgres.js's (a `replication=database` connection and its
 * COPY BOTH stream); the messages are decoded by `pgoutput.ts`. The slot is
 * TEMPORARY: it disappears with the connection, so changes committed while the
 * feed is down (stopped, or reconnecting after an error) are not replayed.
 */
import type { Duplex } from "node:stream";
import postgres from "postgres";
import {
  decodePgOutput,
  pgTimestampToUnixMicros,
  type Relation,
  type TupleValue,
} from "./pgoutput.ts";

export interface Change {
  kind: "insert" | "update" | "delete";
  relation: Relation;
  /** The new row (insert, update). */
  newTuple: TupleValue[] | null;
  /** For update/delete: which old values were sent ("K" key columns, "O" whole row). */
  oldKind: "K" | "O" | null;
  oldTuple: TupleValue[] | null;
}

export interface Transaction {
  /** Commit time, microseconds since the Unix epoch. */
  commitTimeMicros: bigint;
  /** The LSN of the commit record: later transactions have higher ones. */
  commitLsn: bigint;
  changes: Change[];
}

export interface ReplicationFeedOptions {
  dbUrl: string;
  publications: string[];
  /**
   * Handles the transactions committed since the previous call, in commit
   * order. The feed waits for it before handing over the next batch, so a slow
   * handler batches naturally instead of running concurrently.
   */
  onTransactions: (transactions: Transaction[]) => Promise<void>;
  log: (line: string) => void;
}

export interface ReplicationFeed {
  stop(): Promise<void>;
}

const STATUS_INTERVAL_MS = 10_000;
const MAX_BACKOFF_MS = 10_000;

/**
 * Opens the stream and resolves once it is streaming (so changes committed
 * after this resolves are delivered). Rejects when the first connection fails;
 * later failures are logged and retried with backoff.
 */
export async function startReplicationFeed(
  options: ReplicationFeedOptions,
): Promise<ReplicationFeed> {
  const relations = new Map<number, Relation>();
  const pending: Transaction[] = [];
  let current: Transaction | null = null;
  let draining: Promise<void> | null = null;
  let stopping = false;
  let receivedLsn = 0n;
  let session: { sql: postgres.Sql; stream: Duplex } | null = null;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;

  const drain = () => {
    if (draining || pending.length === 0) return;
    const batch = pending.splice(0, pending.length);
    draining = options.onTransactions(batch)
      .catch((error) => {
        options.log(`[realtime] failed to deliver changes: ${(error as Error).stack ?? error}`);
      })
      .finally(() => {
        draining = null;
        drain();
      });
  };

  function handleMessage(buffer: Buffer): void {
    const message = decodePgOutput(buffer);
    switch (message.type) {
      case "relation":
        relations.set(message.relation.id, message.relation);
        return;
      case "begin":
        current = {
          commitTimeMicros: pgTimestampToUnixMicros(message.commitTime),
          commitLsn: message.finalLsn,
          changes: [],
        };
        return;
      case "commit":
        if (current && current.changes.length > 0) pending.push(current);
        current = null;
        drain();
        return;
      case "insert":
      case "update":
      case "delete": {
        const relation = relations.get(message.relationId);
        if (!relation || !current) return;
        current.changes.push({
          kind: message.type,
          relation,
          newTuple: message.type === "delete" ? null : message.newTuple,
          oldKind: message.type === "insert" ? null : message.oldKind,
          oldTuple: message.type === "insert" ? null : message.oldTuple,
        });
        return;
      }
      default:
        // Truncate and other messages have no Realtime counterpart (hosted ignores them too).
        return;
    }
  }

  function sendStatus(stream: Duplex, replyRequested: boolean): void {
    // Standby status update: written/flushed/applied LSN, clock, reply flag.
    // The slot is temporary and never restarted from, so everything received
    // counts as flushed: the server may recycle that WAL at once.
    const flushed = receivedLsn;
    const status = Buffer.alloc(34);
    status[0] = "r".charCodeAt(0);
    status.writeBigUInt64BE(receivedLsn, 1);
    status.writeBigUInt64BE(flushed, 9);
    status.writeBigUInt64BE(flushed, 17);
    status.writeBigInt64BE(BigInt(Date.now() - Date.UTC(2000, 0, 1)) * 1000n, 25);
    status[33] = replyRequested ? 1 : 0;
    stream.write(status);
  }

  async function connect(): Promise<void> {
    const sql = postgres(options.dbUrl, {
      max: 1,
      fetch_types: false,
      idle_timeout: 0,
      max_lifetime: null,
      onnotice: () => {},
      connection: {
        replication: "database",
        application_name: "local-realtime-replication",
        // Timestamps in the stream's text values are rendered in this zone; UTC
        // like hosted Supabase.
        TimeZone: "UTC",
      },
    });
    try {
      const slot = `local_realtime_${process.pid}_${Date.now().toString(36)}`;
      await sql.unsafe(
        `CREATE_REPLICATION_SLOT ${slot} TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT`,
      )
        .simple();
      const stream = await sql.unsafe(
        `START_REPLICATION SLOT ${slot} LOGICAL 0/0 (proto_version '1', publication_names '${
          options.publications.join(",")
        }')`,
      ).writable() as unknown as Duplex;
      const statusTimer = setInterval(() => sendStatus(stream, false), STATUS_INTERVAL_MS);
      stream.on("data", (chunk: Buffer) => {
        try {
          if (chunk[0] === 0x77) { // XLogData
            const walEnd = chunk.readBigUInt64BE(9);
            if (walEnd > receivedLsn) receivedLsn = walEnd;
            handleMessage(chunk.subarray(25));
          } else if (chunk[0] === 0x6b) { // Primary keepalive
            const walEnd = chunk.readBigUInt64BE(1);
            if (walEnd > receivedLsn) receivedLsn = walEnd;
            if (chunk[17] === 1) sendStatus(stream, false);
          }
        } catch (error) {
          options.log(
            `[realtime] could not decode a replication message: ${(error as Error).message}`,
          );
        }
      });
      const lost = (reason: string) => {
        clearInterval(statusTimer);
        if (session?.stream !== stream) return;
        session = null;
        void sql.end({ timeout: 1 }).catch(() => {});
        if (stopping) return;
        options.log(`[realtime] replication stream lost (${reason}); reconnecting`);
        scheduleRetry();
      };
      stream.on("error", (error: Error) => lost(error.message));
      stream.on("close", () => lost("closed"));
      session = { sql, stream };
      failures = 0;
    } catch (error) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw error;
    }
  }

  function scheduleRetry(): void {
    failures++;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 5));
    retryTimer = setTimeout(() => {
      if (stopping) return;
      // A transaction cut off mid-stream is never completed; drop it.
      current = null;
      connect().catch((error) => {
        options.log(`[realtime] replication reconnect failed: ${(error as Error).message}`);
        scheduleRetry();
      });
    }, delay);
  }

  await connect();

  return {
    async stop() {
      stopping = true;
      clearTimeout(retryTimer);
      const open = session;
      session = null;
      if (open) {
        // CopyDone ends the replication stream cleanly (destroy would send CopyFail,
        // which a walsender rejects with a FATAL in the server log).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000);
          open.stream.once("close", () => {
            clearTimeout(timer);
            resolve();
          });
          open.stream.end();
        });
        await open.sql.end({ timeout: 2 }).catch(() => {});
      }
      await draining;
    },
  };
}
