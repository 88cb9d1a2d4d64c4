/**
 * Who is subscribed to what: the joined channels of every connection, indexed
 * by broadcast topic (hosted's "tenant topic": public and private channels of
 * the same name are different topics) and by whether they have
 * `postgres_changes` subscriptions. Pure in-memory state; the dispatchers ask
 * it whom to deliver to.
 */
import type { Claims } from "./jwt.ts";
import type { SubscriptionParams } from "./filters.ts";
import type { Vsn } from "./protocol.ts";

/** One `postgres_changes` binding of a joined channel. */
export interface PgSubscription {
  /** The id the join reply gave the client and `postgres_changes` messages carry in `ids`. */
  id: number;
  params: SubscriptionParams;
  /** The tables (`schema.table`) it matched in the publication at join time, as hosted resolves them. */
  entities: Set<string>;
}

/** A joined channel as the dispatchers see it. */
export interface Subscriber {
  /** The channel topic on the wire, `realtime:<name>`. */
  readonly topic: string;
  /** Whose broadcasts it receives: `public:<name>` or `private:<name>`. */
  readonly broadcastTopic: string;
  readonly vsn: Vsn;
  /**
   * The WAL position when it joined: it receives database changes and
   * broadcasts committed from there on, never ones committed before it joined.
   */
  readonly since: bigint;
  /** The claims of its current access token (updated by `access_token`). */
  claims(): Claims;
  /** False for a private channel whose policies deny reading broadcasts. */
  canReadBroadcast(): boolean;
  pgSubscriptions(): readonly PgSubscription[];
  /** Writes an encoded frame to the subscriber's socket. */
  sendFrame(frame: string | Buffer): void;
}

/** The broadcast topic of a channel: hosted keeps public and private namespaces apart. */
export function broadcastTopicOf(subTopic: string, isPrivate: boolean): string {
  return `${isPrivate ? "private" : "public"}:${subTopic}`;
}

export class ChannelRegistry {
  readonly #byTopic = new Map<string, Set<Subscriber>>();
  readonly #withPgChanges = new Set<Subscriber>();

  add(subscriber: Subscriber): void {
    let set = this.#byTopic.get(subscriber.broadcastTopic);
    if (!set) this.#byTopic.set(subscriber.broadcastTopic, set = new Set());
    set.add(subscriber);
    if (subscriber.pgSubscriptions().length > 0) this.#withPgChanges.add(subscriber);
  }

  remove(subscriber: Subscriber): void {
    const set = this.#byTopic.get(subscriber.broadcastTopic);
    set?.delete(subscriber);
    if (set?.size === 0) this.#byTopic.delete(subscriber.broadcastTopic);
    this.#withPgChanges.delete(subscriber);
  }

  /** Channels receiving broadcasts on `broadcastTopic` (a snapshot). */
  onTopic(broadcastTopic: string): Subscriber[] {
    return [...(this.#byTopic.get(broadcastTopic) ?? [])];
  }

  /** Channels with at least one `postgres_changes` subscription (a snapshot). */
  pgSubscribers(): Subscriber[] {
    return [...this.#withPgChanges];
  }

  get size(): number {
    let n = 0;
    for (const set of this.#byTopic.values()) n += set.size;
    return n;
  }
}
