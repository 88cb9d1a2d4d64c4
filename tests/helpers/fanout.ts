/**
 * Helpers for ws-fanout tests: producing events through ingest, raw protocol
 * connections (no client-library dedupe, so server mistakes show), and the
 * client library with a tracked `ws` constructor (so a test can cut its
 * socket).
 */
import type { IncomingMessage } from "node:http";
import WS from "ws";
import type { StackInfo } from "../../local/stack.ts";
import type { WireEvent } from "../../shared/events/schema.ts";
import type { ServerMessage } from "../../shared/fanout/protocol.ts";

export interface EventSpec {
  source: string;
  sequence_id: number;
  event_type?: string;
  category?: string;
  data?: Record<string, unknown>;
  timestamp?: string;
}

/** Events `from..to` of `source` (system category unless given). */
export function events(
  source: string,
  from: number,
  to: number,
  extra: Partial<EventSpec> = {},
): EventSpec[] {
  const out: EventSpec[] = [];
  for (let i = from; i <= to; i++) {
    out.push({ source, sequence_id: i, event_type: "system.tick", category: "system", ...extra });
  }
  return out;
}

export interface IngestAnswer {
  stored: number;
  duplicates: number;
  rejected: number;
  results: { id: string; status: string; routes?: string[] }[];
}

/** POSTs events to ingest with the stack's producer key; throws on a non-200 answer. */
export async function produce(info: StackInfo, specs: EventSpec[]): Promise<IngestAnswer> {
  const now = new Date().toISOString();
  const body = {
    events: specs.map((s) => ({
      source: s.source,
      sequence_id: s.sequence_id,
      event_type: s.event_type ?? "system.tick",
      ...(s.category ? { category: s.category } : {}),
      timestamp: s.timestamp ?? now,
      data: s.data ?? { n: s.sequence_id },
    })),
  };
  const res = await fetch(`${info.apiUrl}/functions/v1/ingest`, {
    method: "POST",
    headers: { authorization: `Bearer ${info.producerKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as IngestAnswer;
}

/** The stream URL for raw connections. */
export function streamUrl(info: StackInfo, query: Record<string, string | number>): string {
  const url = new URL(`${info.apiUrl.replace(/^http/, "ws")}/functions/v1/ws-fanout`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
  return url.toString();
}

/** A raw protocol connection that records everything it receives. */
export interface RawConnection {
  socket: WS;
  /** The instance from the upgrade response header. */
  instance: string | null;
  messages: ServerMessage[];
  /** Every delivered event with the cursor of the message that carried it. */
  delivered: { cursor: number; event: WireEvent }[];
  /** Message cursors, in arrival order. */
  cursors: number[];
  pings: number[];
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** Opens a raw connection; resolves once the server's hello arrived. Rejects with the HTTP status when refused. */
export function openRaw(
  info: StackInfo,
  query: Record<string, string | number>,
  options: { waitHello?: boolean } = {},
): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = new WS(streamUrl(info, query));
    let instance: string | null = null;
    let settled = false;
    const conn: RawConnection = {
      socket,
      get instance() {
        return instance;
      },
      messages: [],
      delivered: [],
      cursors: [],
      pings: [],
      closed: new Promise((r) =>
        socket.on("close", (code, reason) => {
          r({ code, reason: reason.toString() });
          if (!settled) {
            settled = true;
            reject(new Error(`closed before hello: ${code} ${reason}`));
          }
        })
      ),
      close: () => socket.close(),
    };
    socket.on("upgrade", (res: IncomingMessage) => {
      instance = (res.headers["x-cutover-instance"] as string | undefined) ?? null;
    });
    socket.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d));
      res.on("end", () => {
        settled = true;
        reject(Object.assign(new Error(`refused: ${res.statusCode}`), {
          status: res.statusCode,
          body: (() => {
            try {
              return JSON.parse(body);
            } catch {
              return body;
            }
          })(),
        }));
      });
    });
    socket.on("error", (error) => {
      if (!settled) {
        settled = true;
        reject(error);
      }
    });
    socket.on("message", (data) => {
      const message = JSON.parse(data.toString()) as ServerMessage;
      conn.messages.push(message);
      if (message.type === "event") {
        conn.cursors.push(message.cursor);
        conn.delivered.push({ cursor: message.cursor, event: message.event });
      } else if (message.type === "batch") {
        conn.cursors.push(message.cursor);
        for (const event of message.events) conn.delivered.push({ cursor: message.cursor, event });
      } else if (message.type === "ping") {
        conn.pings.push(Date.now());
      }
      if (message.type === "hello" && !settled) {
        settled = true;
        resolve(conn);
      }
    });
    if (options.waitHello === false) {
      socket.on("open", () => {
        if (!settled) {
          settled = true;
          resolve(conn);
        }
      });
    }
  });
}

/**
 * Resolves when `check()` holds; throws after `timeoutMs` with `what` (a
 * function is called then, so the message can say how far things got).
 */
export async function until(
  check: () => boolean,
  what: string | (() => string),
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The `ws` constructor, recording every socket it makes (so tests can cut one). */
export function trackedWebSocket(): { Ctor: typeof WS; sockets: WS[] } {
  const sockets: WS[] = [];
  class Tracked extends WS {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { Ctor: Tracked as typeof WS, sockets };
}

/** A unique source name for one test. */
export function uniqueSource(label: string): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
