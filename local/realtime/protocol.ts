/**
 * The Phoenix wire format as Supabase Realtime speaks it, for both serializer
 * versions `@supabase/realtime-js` offers:
 *
 * - `vsn=1.0.0` — Phoenix's V1 JSON serializer: every frame is a JSON object
 *   `{topic, event, payload, ref}` (the server never sends `join_ref`).
 * - `vsn=2.0.0` — Realtime's V2 serializer (a superset of Phoenix's V2 JSON
 *   serializer): text frames are JSON arrays `[join_ref, ref, topic, event,
 *   payload]`; binary frames carry user broadcasts — kind 3 (client → server
 *   "user broadcast push") and kind 4 (server → client "user broadcast").
 *
 * Pure: no I/O. Mirrors supabase/realtime `lib/realtime_web/socket/v2_serializer.ex`
 * and realtime-js `src/lib/serializer.ts`.
 */

export type Vsn = "1.0.0" | "2.0.0";

export const SUPPORTED_VSNS: readonly Vsn[] = ["1.0.0", "2.0.0"];

/** A text message in either serializer. */
export interface PhoenixMessage {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: unknown;
}

/** A broadcast pushed by a V2 client as a binary frame (kind 3). */
export interface UserBroadcastPush {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  userEvent: string;
  encoding: "json" | "binary";
  /** The user payload bytes: JSON text when `encoding` is "json". */
  body: Uint8Array;
  metadata: Record<string, unknown>;
}

export type InboundFrame =
  | { kind: "message"; message: PhoenixMessage }
  | { kind: "user_broadcast_push"; push: UserBroadcastPush };

/** A frame that could not be decoded; the server logs it and drops it, as hosted does. */
export class MalformedFrameError extends Error {
  override name = "MalformedFrameError";
}

const KIND_PUSH = 0;
const KIND_USER_BROADCAST_PUSH = 3;
const KIND_USER_BROADCAST = 4;

function refOrNull(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return String(value);
}

/**
 * Decodes one WebSocket frame sent by a client. Throws `MalformedFrameError`
 * when the frame is not a valid message for `vsn`.
 */
export function decodeFrame(vsn: Vsn, data: Uint8Array, isBinary: boolean): InboundFrame {
  if (isBinary) {
    if (vsn !== "2.0.0") throw new MalformedFrameError("binary frames need vsn 2.0.0");
    return decodeBinary(data);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data).toString("utf8"));
  } catch (error) {
    throw new MalformedFrameError(`invalid JSON: ${(error as Error).message}`);
  }
  if (vsn === "2.0.0") {
    if (!Array.isArray(parsed) || parsed.length < 5) {
      throw new MalformedFrameError("expected V2 array [join_ref, ref, topic, event, payload]");
    }
    const [joinRef, ref, topic, event, payload] = parsed as unknown[];
    if (typeof topic !== "string" || typeof event !== "string") {
      throw new MalformedFrameError("topic and event must be strings");
    }
    return {
      kind: "message",
      message: { joinRef: refOrNull(joinRef), ref: refOrNull(ref), topic, event, payload },
    };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new MalformedFrameError("expected V1 object {topic, event, payload, ref}");
  }
  const object = parsed as Record<string, unknown>;
  if (typeof object.topic !== "string" || typeof object.event !== "string") {
    throw new MalformedFrameError("topic and event must be strings");
  }
  return {
    kind: "message",
    message: {
      joinRef: refOrNull(object.join_ref),
      ref: refOrNull(object.ref),
      topic: object.topic,
      event: object.event,
      payload: object.payload,
    },
  };
}

function decodeBinary(data: Uint8Array): InboundFrame {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const kind = bytes[0];
  const text = (start: number, length: number) => {
    if (start + length > bytes.length) throw new MalformedFrameError("truncated binary frame");
    return bytes.toString("utf8", start, start + length);
  };
  if (kind === KIND_USER_BROADCAST_PUSH) {
    if (bytes.length < 7) throw new MalformedFrameError("truncated binary frame");
    const [joinRefSize, refSize, topicSize, eventSize, metadataSize, encoding] = [
      bytes[1]!,
      bytes[2]!,
      bytes[3]!,
      bytes[4]!,
      bytes[5]!,
      bytes[6]!,
    ];
    let offset = 7;
    const joinRef = text(offset, joinRefSize);
    offset += joinRefSize;
    const ref = text(offset, refSize);
    offset += refSize;
    const topic = text(offset, topicSize);
    offset += topicSize;
    const userEvent = text(offset, eventSize);
    offset += eventSize;
    const metadataText = text(offset, metadataSize);
    offset += metadataSize;
    let metadata: Record<string, unknown> = {};
    if (metadataSize > 0) {
      try {
        metadata = JSON.parse(metadataText) as Record<string, unknown>;
      } catch {
        throw new MalformedFrameError("metadata is not JSON");
      }
    }
    return {
      kind: "user_broadcast_push",
      push: {
        joinRef: joinRef || null,
        ref: ref || null,
        topic,
        userEvent,
        encoding: encoding === 0 ? "binary" : "json",
        body: new Uint8Array(bytes.subarray(offset)),
        metadata,
      },
    };
  }
  if (kind === KIND_PUSH) {
    // Phoenix's binary push (an event with a binary payload). realtime-js never
    // sends one; it is decoded so the server can answer it with an error reply.
    if (bytes.length < 5) throw new MalformedFrameError("truncated binary frame");
    const [joinRefSize, topicSize, eventSize] = [bytes[1]!, bytes[2]!, bytes[3]!];
    let offset = 4;
    const joinRef = text(offset, joinRefSize);
    offset += joinRefSize;
    const topic = text(offset, topicSize);
    offset += topicSize;
    const event = text(offset, eventSize);
    offset += eventSize;
    return {
      kind: "message",
      message: {
        joinRef: joinRef || null,
        ref: null,
        topic,
        event,
        payload: { binary: true },
      },
    };
  }
  throw new MalformedFrameError(`unknown binary frame kind ${kind}`);
}

/** Encodes a text message (push, reply or JSON broadcast) for `vsn`. */
export function encodeMessage(vsn: Vsn, message: PhoenixMessage): string {
  if (vsn === "2.0.0") {
    return JSON.stringify([
      message.joinRef,
      message.ref,
      message.topic,
      message.event,
      message.payload,
    ]);
  }
  // Phoenix V1 takes exactly these keys; join_ref is never sent.
  return JSON.stringify({
    event: message.event,
    payload: message.payload,
    ref: message.ref,
    topic: message.topic,
  });
}

/** A `phx_reply` message. */
export function replyMessage(
  request: { joinRef: string | null; ref: string | null; topic: string },
  status: "ok" | "error",
  response: unknown,
): PhoenixMessage {
  return {
    joinRef: request.joinRef,
    ref: request.ref,
    topic: request.topic,
    event: "phx_reply",
    payload: { status, response },
  };
}

/** A user broadcast as delivered to subscribers. */
export interface UserBroadcast {
  /** The channel topic as the subscriber joined it (`realtime:<sub topic>`). */
  topic: string;
  userEvent: string;
  encoding: "json" | "binary";
  body: Uint8Array;
  metadata: Record<string, unknown> | null;
}

function checkedLength(value: string, what: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length > 255) throw new Error(`${what} is longer than 255 bytes`);
  return bytes;
}

/**
 * Encodes a user broadcast for a subscriber: a binary kind-4 frame for V2, or
 * for V1 the JSON broadcast hosted converts it to (`{event, payload, type,
 * meta?}`). Returns null when V1 cannot represent it (binary payloads), in which
 * case hosted skips that subscriber too.
 */
export function encodeUserBroadcast(vsn: Vsn, broadcast: UserBroadcast): string | Buffer | null {
  if (vsn === "1.0.0") {
    if (broadcast.encoding !== "json") return null;
    const payload: Record<string, unknown> = {
      event: broadcast.userEvent,
      payload: JSON.parse(Buffer.from(broadcast.body).toString("utf8")),
      type: "broadcast",
    };
    if (broadcast.metadata) payload.meta = broadcast.metadata;
    return encodeMessage(vsn, {
      joinRef: null,
      ref: null,
      topic: broadcast.topic,
      event: "broadcast",
      payload,
    });
  }
  const topic = checkedLength(broadcast.topic, "topic");
  const event = checkedLength(broadcast.userEvent, "user event");
  const metadata = broadcast.metadata
    ? checkedLength(JSON.stringify(broadcast.metadata), "metadata")
    : Buffer.alloc(0);
  const header = Buffer.from([
    KIND_USER_BROADCAST,
    topic.length,
    event.length,
    metadata.length,
    broadcast.encoding === "json" ? 1 : 0,
  ]);
  return Buffer.concat([header, topic, event, metadata, Buffer.from(broadcast.body)]);
}
