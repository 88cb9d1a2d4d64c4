/**
 * Encoding deliveries and deciding whether a client may be sent more. Pure.
 *
 * Ledger payloads are JSON text already, so messages are assembled by
 * concatenation: the event bytes a client receives are the ledger's payload
 * bytes, the ones the checksum was computed over (after canonicalisation).
 */
import type { LedgerEntry } from "./cursor-stream.ts";

/** Most bytes (UTF-16 code units, ~bytes for JSON) in one batch message, unless one event is larger. */
export const MAX_BATCH_CHARS = 256 * 1024;

const single = new WeakMap<LedgerEntry, string>();

/** `{"type":"event",...}` for one entry; cached per entry, since every client on the instance sends the same text. */
export function eventMessage(entry: LedgerEntry): string {
  let text = single.get(entry);
  if (text === undefined) {
    text = `{"type":"event","cursor":${entry.cursor},"event":${entry.payload}}`;
    single.set(entry, text);
  }
  return text;
}

/**
 * The messages delivering `entries` (ascending): one `event` message for a
 * lone entry, otherwise `batch` messages of at most `maxEvents` events and
 * about MAX_BATCH_CHARS each, every one carrying the cursor of its last event.
 */
export function encodeDeliveries(entries: LedgerEntry[], maxEvents: number): string[] {
  if (entries.length === 0) return [];
  if (entries.length === 1) return [eventMessage(entries[0]!)];
  const out: string[] = [];
  let parts: string[] = [];
  let chars = 0;
  let last = 0;
  const flush = () => {
    if (parts.length === 0) return;
    out.push(`{"type":"batch","cursor":${last},"events":[${parts.join(",")}]}`);
    parts = [];
    chars = 0;
  };
  for (const entry of entries) {
    if (
      parts.length >= maxEvents ||
      (parts.length > 0 && chars + entry.payload.length > MAX_BATCH_CHARS)
    ) {
      flush();
    }
    parts.push(entry.payload);
    chars += entry.payload.length + 1;
    last = entry.cursor;
  }
  flush();
  return out;
}

const shared = new WeakMap<readonly LedgerEntry[], string[]>();

/**
 * encodeDeliveries for a tail batch delivered whole, cached per batch: the
 * common case (a live client whose filter passes the batch) costs one
 * encoding per instance instead of one per client.
 */
export function encodeBatchOnce(entries: readonly LedgerEntry[], maxEvents: number): string[] {
  let messages = shared.get(entries);
  if (messages === undefined) {
    messages = encodeDeliveries([...entries], maxEvents);
    shared.set(entries, messages);
  }
  return messages;
}

/**
 * Whether a message of `messageChars` may be queued on a socket that already
 * holds `bufferedAmount` unsent bytes: past `maxQueueBytes` the client is a
 * slow consumer and is cut off. A message is always allowed on an empty
 * queue, so one oversized message cannot wedge a healthy client.
 */
export function queueVerdict(
  bufferedAmount: number,
  messageChars: number,
  maxQueueBytes: number,
): "send" | "overflow" {
  if (bufferedAmount === 0) return "send";
  return bufferedAmount + messageChars > maxQueueBytes ? "overflow" : "send";
}
