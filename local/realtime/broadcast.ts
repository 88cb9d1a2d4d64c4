/**
 * Broadcast fan-out: delivering a broadcast to every channel joined to its
 * topic, encoded once per serializer version, the way hosted's
 * `RealtimeChannel.MessageDispatcher` does — skipping the sender unless it
 * asked for `self`, and private subscribers whose read policy said no.
 *
 * Two shapes exist, as on hosted Realtime:
 * - a JSON broadcast (a client pushed `broadcast` as text): relayed verbatim
 *   as `[null, null, topic, "broadcast", payload]`;
 * - a user broadcast (a V2 client's binary push, or a `realtime.messages` row):
 *   a binary kind-4 frame for V2 subscribers, converted to a JSON broadcast
 *   for V1 subscribers (binary payloads cannot reach V1 subscribers).
 */
import { encodeMessage, encodeUserBroadcast, type UserBroadcast, type Vsn } from "./protocol.ts";
import type { ChannelRegistry, Subscriber } from "./registry.ts";
import type { TupleValue } from "./pgoutput.ts";
import type { Change } from "./replication.ts";

export type OutgoingBroadcast =
  | { kind: "json"; payload: unknown }
  | { kind: "user"; broadcast: Omit<UserBroadcast, "topic"> };

/**
 * Delivers `message` to the channels on `broadcastTopic`, except `exclude`
 * and, for a broadcast from the database (`commitLsn` given), channels that
 * joined after it was committed. Returns how many channels it was written to.
 */
export function fanOutBroadcast(
  registry: ChannelRegistry,
  broadcastTopic: string,
  message: OutgoingBroadcast,
  exclude: Subscriber | null,
  commitLsn?: bigint,
): number {
  const encoded = new Map<string, string | Buffer | null>();
  let delivered = 0;
  for (const subscriber of registry.onTopic(broadcastTopic)) {
    if (subscriber === exclude || !subscriber.canReadBroadcast()) continue;
    if (commitLsn !== undefined && commitLsn < subscriber.since) continue;
    const key = `${subscriber.vsn}|${subscriber.topic}`;
    if (!encoded.has(key)) encoded.set(key, encode(subscriber.vsn, subscriber.topic, message));
    const frame = encoded.get(key);
    if (frame === null || frame === undefined) continue;
    subscriber.sendFrame(frame);
    delivered++;
  }
  return delivered;
}

function encode(vsn: Vsn, topic: string, message: OutgoingBroadcast): string | Buffer | null {
  if (message.kind === "json") {
    return encodeMessage(vsn, {
      joinRef: null,
      ref: null,
      topic,
      event: "broadcast",
      payload: message.payload,
    });
  }
  return encodeUserBroadcast(vsn, { ...message.broadcast, topic });
}

/** A broadcast read from a `realtime.messages` row, ready for fan-out. */
export interface DatabaseBroadcast {
  broadcastTopic: string;
  message: OutgoingBroadcast;
}

/** Whether a replicated change belongs to `realtime.messages` (hosted also accepts its partitions). */
export function isMessagesChange(change: Change): boolean {
  return change.relation.schema === "realtime" && change.relation.table.startsWith("messages");
}

/**
 * Turns an inserted `realtime.messages` row into the broadcast hosted sends:
 * event, payload (JSON, or `binary_payload` bytes), metadata `{id}`, on the
 * private or public topic. Returns an error string for rows hosted would reject
 * (missing topic, event, id, private flag or payload).
 */
export function databaseBroadcastOf(
  change: Change,
  broadcastTopicOf: (topic: string, isPrivate: boolean) => string,
): DatabaseBroadcast | { error: string } | null {
  if (change.kind !== "insert" || !change.newTuple) return null;
  const row = new Map<string, string | null>();
  change.relation.columns.forEach((column, i) => {
    const value: TupleValue | undefined = change.newTuple![i];
    row.set(column.name, value?.kind === "text" ? value.text : null);
  });
  for (const required of ["inserted_at", "event", "id", "topic", "private"]) {
    if (row.get(required) == null) return { error: `${required}_missing` };
  }
  const binary = row.get("binary_payload");
  const json = row.get("payload");
  let broadcast: Omit<UserBroadcast, "topic">;
  const base = { userEvent: row.get("event")!, metadata: { id: row.get("id")! } };
  if (binary != null) {
    // bytea in text form is hex: \x0a0b...
    broadcast = { ...base, encoding: "binary", body: Buffer.from(binary.slice(2), "hex") };
  } else if (json != null) {
    broadcast = { ...base, encoding: "json", body: Buffer.from(json, "utf8") };
  } else {
    return { error: "payload_missing" };
  }
  return {
    broadcastTopic: broadcastTopicOf(row.get("topic")!, row.get("private") === "t"),
    message: { kind: "user", broadcast },
  };
}
