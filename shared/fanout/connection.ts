/**
 * One client connection on a ws-fanout instance: hello, replay from `since`
 * then live (the seam decided by cursor-stream.ts), heartbeats, the 1012
 * rotation before the wall-clock limit, and the slow-consumer cut-off.
 *
 * Memory per connection is bounded: the socket's unsent bytes by
 * `maxQueueBytes` (checked before every send; past it the client is closed
 * with 1008), live entries held during a replay by `maxBufferedEvents`, and a
 * replay reads the next page only once the socket has drained below half the
 * queue limit.
 */
import {
  createCursorStream,
  type CursorStream,
  type LedgerEntry,
  type ReplayPage,
  type TailBatch,
} from "./cursor-stream.ts";
import type { LedgerBounds } from "./ledger.ts";
import { encodeBatchOnce, encodeDeliveries, queueVerdict } from "./messages.ts";
import {
  CLOSE_CODES,
  type ErrorMessage,
  type HelloMessage,
  type StreamFilter,
} from "./protocol.ts";
import type { FanoutSettings } from "./settings.ts";

/** The server side of a WebSocket, as `Deno.upgradeWebSocket` returns it (WHATWG shape). */
export interface ServerSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "close" | "error" | "message", listener: () => void): void;
}

const OPEN = 1;

/** How long a replay waits for a client to drain its queue before cutting it off. */
const REPLAY_STALL_MS = 10_000;

export interface ConnectionDeps {
  socket: ServerSocket;
  /** Live batches: subscribe returns the unsubscribe function. */
  tail: { readonly head: number; subscribe(listener: (batch: TailBatch) => void): () => void };
  readPage: (
    after: number,
    limit: number,
    filter: StreamFilter,
  ) => Promise<ReplayPage & LedgerBounds>;
  settings: FanoutSettings;
  instance: string;
  since: number | null;
  filter: StreamFilter;
  log: (line: string) => void;
  /** Called once when the connection has ended, however it ended. */
  onEnded: () => void;
}

export interface Connection {
  /** The stream position: everything at or below it was sent or filtered out. */
  readonly position: number;
  /** Closes (idempotent). */
  close(code: number, reason: string): void;
}

/** Serves one upgraded socket; call before the upgrade response is returned. */
export function serveConnection(deps: ConnectionDeps): Connection {
  const { socket, settings } = deps;
  let stream: CursorStream | undefined;
  let ended = false;
  let replaying = false;
  let unsubscribe: (() => void) | undefined;
  let heartbeat: ReturnType<typeof setInterval> | undefined;

  function end(code: number | null, reason: string): void {
    if (ended) return;
    ended = true;
    unsubscribe?.();
    clearTimeout(lifetime);
    clearInterval(heartbeat);
    if (code !== null) {
      try {
        socket.close(code, reason);
      } catch {
        // Already closing: nothing left to tell the client.
      }
    }
    deps.onEnded();
  }

  function fail(error: ErrorMessage, code: number, reason: string): void {
    if (ended) return;
    if (socket.readyState === OPEN) socket.send(JSON.stringify(error));
    end(code, reason);
  }

  function cutOff(): void {
    deps.log(
      `ws-fanout: slow consumer cut off at cursor ${stream?.position} (over ${settings.maxQueueBytes} bytes unsent)`,
    );
    fail(
      {
        type: "error",
        code: "slow_consumer",
        message:
          `more than ${settings.maxQueueBytes} bytes waited to be sent; resume with since=<last cursor>`,
      },
      CLOSE_CODES.POLICY_VIOLATION,
      "slow consumer: send queue limit exceeded",
    );
  }

  /** Sends a message within the queue bound; false when the connection is gone or was cut off. */
  function send(text: string): boolean {
    if (ended || socket.readyState !== OPEN) return false;
    if (queueVerdict(socket.bufferedAmount, text.length, settings.maxQueueBytes) === "overflow") {
      cutOff();
      return false;
    }
    socket.send(text);
    return true;
  }

  function deliver(entries: LedgerEntry[], whole?: TailBatch): void {
    const messages = whole && entries.length === whole.entries.length
      ? encodeBatchOnce(whole.entries, settings.pageSize)
      : encodeDeliveries(entries, settings.pageSize);
    for (const message of messages) {
      if (!send(message)) return;
    }
  }

  async function drained(): Promise<boolean> {
    const started = Date.now();
    while (!ended && socket.bufferedAmount > settings.maxQueueBytes / 2) {
      if (Date.now() - started > REPLAY_STALL_MS) {
        cutOff();
        return false;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return !ended;
  }

  async function replay(first: boolean): Promise<void> {
    if (replaying || !stream) return;
    replaying = true;
    try {
      for (;;) {
        if (!(await drained())) return;
        const page = await deps.readPage(stream.position, settings.pageSize, deps.filter);
        if (ended) return;
        if (first) {
          first = false;
          const since = stream.position;
          if (since < page.prunedThrough) {
            return fail(
              {
                type: "error",
                code: "cursor_expired",
                message:
                  `cursor ${since} is older than the ledger's retention (events up to ${page.prunedThrough} were pruned); reconnect without since and backfill from monitoring_events`,
                oldest_cursor: page.prunedThrough,
                latest_cursor: page.lastCursor,
              },
              CLOSE_CODES.CURSOR_EXPIRED,
              "cursor_expired: since is older than retention",
            );
          }
          if (since > page.lastCursor) {
            return fail(
              {
                type: "error",
                code: "cursor_ahead",
                message:
                  `cursor ${since} is newer than anything delivered (latest ${page.lastCursor}); reconnect without since`,
                oldest_cursor: page.prunedThrough,
                latest_cursor: page.lastCursor,
              },
              CLOSE_CODES.CURSOR_AHEAD,
              "cursor_ahead: since is newer than the ledger",
            );
          }
          hello(since);
        }
        const step = stream.replayed(page);
        deliver(step.deliver);
        if (!step.replay) return;
      }
    } catch (error) {
      deps.log(`ws-fanout: replay failed: ${(error as Error).message}`);
      fail(
        {
          type: "error",
          code: "internal_error",
          message: "reading the ledger failed; resume later",
        },
        CLOSE_CODES.INTERNAL_ERROR,
        "internal error while replaying",
      );
    } finally {
      replaying = false;
    }
  }

  function hello(cursor: number): void {
    const message: HelloMessage = {
      type: "hello",
      instance: deps.instance,
      cursor,
      heartbeat_ms: settings.heartbeatMs,
      max_connection_ms: settings.maxConnectionMs,
    };
    send(JSON.stringify(message));
  }

  // The wall clock runs from the request, not from the open event.
  const lifetime = setTimeout(() => {
    end(CLOSE_CODES.SERVICE_RESTART, "max connection time reached; resume with since");
  }, settings.maxConnectionMs);

  socket.addEventListener("open", () => {
    if (ended) return;
    const resuming = deps.since !== null;
    stream = createCursorStream({
      start: deps.since ?? deps.tail.head,
      replay: resuming,
      filter: deps.filter,
      maxBuffered: settings.maxBufferedEvents,
    });
    const s = stream;
    unsubscribe = deps.tail.subscribe((batch) => {
      if (ended) return;
      const step = s.live(batch);
      deliver(step.deliver, batch);
      if (step.replay) void replay(false);
    });
    heartbeat = setInterval(() => send('{"type":"ping"}'), settings.heartbeatMs);
    if (resuming) void replay(true);
    else hello(s.position);
  });
  socket.addEventListener("close", () => end(null, ""));
  socket.addEventListener("error", () => end(null, ""));

  return {
    get position() {
      return stream?.position ?? deps.since ?? 0;
    },
    close(code, reason) {
      end(code, reason);
    },
  };
}
