/**
 * One joined channel and what a client may do with it — the local
 * counterpart of hosted's `RealtimeWeb.RealtimeChannel`:
 *
 * - `phx_join`: token check, private-channel read policy, `postgres_changes`
 *   bindings; the reply carries the binding ids; then the `system` messages
 *   hosted sends ("Subscribed to PostgreSQL", "Replication connection
 *   established" when asked for);
 * - `broadcast`: relayed to the topic's other channels (`self` includes the
 *   sender; `ack` gets a reply); private channels need the write policy;
 * - `access_token`: re-verified and re-authorised; a refused token closes the
 *   channel with a `system` error, as hosted does;
 * - `phx_leave`; and an error reply for what the emulator does not do
 *   (Presence, replay, column selection, unknown events).
 *
 * The token is re-checked when it expires (at most every 5 minutes), as hosted
 * does, and the channel is closed when it has.
 */
import type postgres from "postgres";
import {
  authorizeBroadcastWrite,
  authorizeRead,
  type ChannelPolicies,
  checkSubscription,
  PolicyError,
} from "./authorization.ts";
import { fanOutBroadcast, type OutgoingBroadcast } from "./broadcast.ts";
import { parseSubscriptionParams } from "./filters.ts";
import { type Claims, type TokenCheck, verifyToken } from "./jwt.ts";
import { type PhoenixMessage, replyMessage, type UserBroadcastPush, type Vsn } from "./protocol.ts";
import {
  broadcastTopicOf,
  type ChannelRegistry,
  type PgSubscription,
  type Subscriber,
} from "./registry.ts";

/** What channels share across the server. */
export interface RealtimeContext {
  sql: postgres.Sql;
  secret: Uint8Array;
  registry: ChannelRegistry;
  log: (line: string) => void;
}

/** The socket a channel lives on. */
export interface ChannelSocket {
  readonly vsn: Vsn;
  /** The token the socket connected with (the `apikey`), used when a join carries none. */
  readonly socketToken: string;
  readonly headers: Record<string, string>;
  send(message: PhoenixMessage): void;
  sendFrame(frame: string | Buffer): void;
  /** Called when the channel ends on its own (token expiry, revoked access). */
  channelClosed(channel: Channel): void;
}

const CONFIRM_TOKEN_INTERVAL_MS = 5 * 60_000;

/** Hosted's FlexibleBoolean: booleans and the strings "true"/"false". */
function flag(value: unknown): boolean {
  return value === true || value === "true";
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : {};
}

/**
 * The id of a binding: a stable hash of its params, in the range of the
 * `:erlang.phash2/1` hosted uses (0..2^27-1). Identical params share an id, as
 * on hosted.
 */
export function bindingId(params: Record<string, unknown>): number {
  const canonical = JSON.stringify(
    Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1))),
  );
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(canonical)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash & 0x7ffffff;
}

/** `16/B374D848` → the 64-bit position. */
export function parseLsn(lsn: string): bigint {
  const [high, low] = lsn.split("/");
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

/** The access token a join uses: its own, else the socket's; `sb_` keys mean the socket's. */
function joinToken(payload: Record<string, unknown>, socketToken: string): string {
  const token = payload.access_token ?? payload.user_token;
  if (typeof token !== "string" || token.startsWith("sb_")) return socketToken;
  return token;
}

function refusal(check: Extract<TokenCheck, { ok: false }>): string {
  return `${check.code}: ${check.message}`;
}

export class Channel implements Subscriber {
  readonly broadcastTopic: string;
  readonly vsn: Vsn;
  readonly since: bigint;
  #claims: Claims;
  #accessToken: string;
  #policies: ChannelPolicies | null;
  #pg: PgSubscription[];
  #tokenTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    readonly context: RealtimeContext,
    readonly socket: ChannelSocket,
    readonly topic: string,
    readonly joinRef: string | null,
    readonly options: { isPrivate: boolean; self: boolean; ack: boolean },
    state: {
      claims: Claims;
      accessToken: string;
      policies: ChannelPolicies | null;
      pg: PgSubscription[];
      since: bigint;
    },
  ) {
    this.vsn = socket.vsn;
    this.since = state.since;
    this.broadcastTopic = broadcastTopicOf(this.subTopic, options.isPrivate);
    this.#claims = state.claims;
    this.#accessToken = state.accessToken;
    this.#policies = state.policies;
    this.#pg = state.pg;
  }

  get subTopic(): string {
    return this.topic.slice("realtime:".length);
  }

  claims(): Claims {
    return this.#claims;
  }

  canReadBroadcast(): boolean {
    return !this.options.isPrivate || this.#policies?.broadcastRead === true;
  }

  pgSubscriptions(): readonly PgSubscription[] {
    return this.#pg;
  }

  sendFrame(frame: string | Buffer): void {
    this.socket.sendFrame(frame);
  }

  /** Pushes a server message on this channel (join_ref set, no ref), like Phoenix's `push/3`. */
  push(event: string, payload: unknown): void {
    this.socket.send({ joinRef: this.joinRef, ref: null, topic: this.topic, event, payload });
  }

  pushSystem(extension: string, status: "ok" | "error", message: string): void {
    this.push("system", { extension, status, message, channel: this.subTopic });
  }

  /** Starts delivering to this channel and schedules the token re-check. */
  start(): void {
    this.context.registry.add(this);
    this.#scheduleTokenCheck();
  }

  /** Stops delivering; `notify` sends `phx_close` (the channel ended on the server's side). */
  close(notify: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#tokenTimer);
    this.context.registry.remove(this);
    if (notify) {
      // Phoenix's close message: ref = join_ref, empty payload.
      this.socket.send({
        joinRef: this.joinRef,
        ref: this.joinRef,
        topic: this.topic,
        event: "phx_close",
        payload: {},
      });
    }
  }

  /** Hosted's `shutdown_response`: a system error, then the channel closes. */
  shutdown(message: string): void {
    this.context.log(`[realtime] closing ${this.topic}: ${message}`);
    this.pushSystem("system", "error", message);
    this.close(true);
    this.socket.channelClosed(this);
  }

  #scheduleTokenCheck(): void {
    clearTimeout(this.#tokenTimer);
    const secondsLeft = this.#claims.exp - Math.floor(Date.now() / 1000);
    const delay = Math.max(0, Math.min(CONFIRM_TOKEN_INTERVAL_MS, secondsLeft * 1000));
    this.#tokenTimer = setTimeout(async () => {
      const check = await verifyToken(this.#accessToken, this.context.secret);
      if (this.#closed) return;
      if (check.ok) {
        this.#claims = check.claims;
        this.#scheduleTokenCheck();
      } else this.shutdown(check.message);
    }, delay);
    this.#tokenTimer.unref();
  }

  /** Handles a message the client sent on this joined channel. */
  async handle(message: PhoenixMessage): Promise<void> {
    switch (message.event) {
      case "phx_leave":
        this.socket.send(replyMessage(message, "ok", {}));
        this.close(false);
        this.socket.channelClosed(this);
        return;
      case "broadcast":
        return await this.#broadcast(message, { kind: "json", payload: message.payload });
      case "access_token":
        return await this.#refreshToken(asObject(message.payload).access_token);
      case "presence":
        this.socket.send(replyMessage(message, "error", {
          reason:
            "PresenceNotSupported: the local Realtime emulator does not implement Presence (see local/realtime/README.md)",
        }));
        return;
      default:
        // Hosted logs and ignores unknown events; the emulator answers so nothing is silent.
        this.socket.send(replyMessage(message, "error", {
          reason: `UnsupportedMessage: unexpected message from client of type \`${message.event}\``,
        }));
    }
  }

  /** Handles a V2 binary user broadcast push. */
  async handleUserBroadcast(push: UserBroadcastPush): Promise<void> {
    await this.#broadcast(push, {
      kind: "user",
      broadcast: {
        userEvent: push.userEvent,
        encoding: push.encoding,
        body: push.body,
        // Hosted drops client metadata (it builds the UserBroadcast without it).
        metadata: null,
      },
    });
  }

  async #broadcast(
    request: { joinRef: string | null; ref: string | null; topic: string },
    message: OutgoingBroadcast,
  ): Promise<void> {
    if (this.options.isPrivate) {
      const policies = this.#policies ??
        { broadcastRead: null, presenceRead: null, broadcastWrite: null };
      if (policies.broadcastWrite === null) {
        try {
          policies.broadcastWrite = await authorizeBroadcastWrite(
            this.context.sql,
            this.#authContext(),
          );
        } catch (error) {
          this.context.log(
            `[realtime] RlsPolicyError on ${this.topic}: ${(error as Error).message}`,
          );
          return;
        }
        this.#policies = policies;
      }
      if (!policies.broadcastWrite) {
        // Hosted drops it without a reply (even with ack); the log says why.
        this.context.log(
          `[realtime] broadcast on private ${this.topic} dropped: the write policy on realtime.messages refuses role ${this.#claims.role}`,
        );
        return;
      }
    }
    fanOutBroadcast(
      this.context.registry,
      this.broadcastTopic,
      message,
      this.options.self ? null : this,
    );
    if (this.options.ack) this.socket.send(replyMessage(request, "ok", {}));
  }

  #authContext() {
    return { subTopic: this.subTopic, claims: this.#claims, headers: this.socket.headers };
  }

  async #refreshToken(token: unknown): Promise<void> {
    if (typeof token !== "string" || token.startsWith("sb_") || token === this.#accessToken) return;
    const check = await verifyToken(token, this.context.secret);
    if (!check.ok) {
      // Hosted's messages here: the reason's text; a bad signature surfaces as its atom.
      return this.shutdown(check.kind === "signature_error" ? ":signature_error" : check.message);
    }
    const previous = this.#policies;
    this.#accessToken = token;
    this.#claims = check.claims;
    if (this.options.isPrivate) {
      let read: Awaited<ReturnType<typeof authorizeRead>>;
      try {
        read = await authorizeRead(this.context.sql, this.#authContext(), false);
      } catch {
        read = { broadcastRead: false, presenceRead: null };
      }
      if (!read.broadcastRead) {
        return this.shutdown(
          previous?.broadcastRead
            ? `You no longer have permission to read from this Channel topic: ${this.subTopic}`
            : `You do not have permissions to read from this Channel topic: ${this.subTopic}`,
        );
      }
      this.#policies = { ...read, broadcastWrite: null };
    }
    this.#scheduleTokenCheck();
    // Hosted re-subscribes the bindings with the new claims and says so again.
    if (this.#pg.length > 0) {
      this.pushSystem("postgres_changes", "ok", "Subscribed to PostgreSQL");
    }
  }
}

/**
 * Handles `phx_join`. On success the channel is registered and returned; the
 * reply (ok or error) has been sent either way.
 */
export async function joinChannel(
  context: RealtimeContext,
  socket: ChannelSocket,
  message: PhoenixMessage,
): Promise<Channel | null> {
  const fail = (reason: string) => {
    context.log(`[realtime] join ${message.topic} refused: ${reason}`);
    socket.send(replyMessage(message, "error", { reason }));
    return null;
  };
  const subTopic = message.topic.slice("realtime:".length);
  if (subTopic === "") return fail("TopicNameRequired: You must provide a topic name");
  const payload = asObject(message.payload);
  const config = asObject(payload.config);
  const broadcastConfig = asObject(config.broadcast);
  const isPrivate = flag(config.private);

  const accessToken = joinToken(payload, socket.socketToken);
  const check = await verifyToken(accessToken, context.secret);
  if (!check.ok) return fail(refusal(check));
  const claims = check.claims;

  if (flag(asObject(config.presence).enabled)) {
    return fail(
      "PresenceNotSupported: the local Realtime emulator does not implement Presence (see local/realtime/README.md)",
    );
  }
  if (broadcastConfig.replay !== undefined && broadcastConfig.replay !== null) {
    return fail(
      isPrivate
        ? "UnableToReplayMessages: broadcast replay is not supported by the local Realtime emulator"
        : "UnableToReplayMessages: Replay is not allowed for public channels",
    );
  }

  let policies: ChannelPolicies | null = null;
  if (isPrivate) {
    const unauthorized =
      `Unauthorized: You do not have permissions to read from this Channel topic: ${subTopic}`;
    try {
      const read = await authorizeRead(
        context.sql,
        { subTopic, claims, headers: socket.headers },
        false,
      );
      if (!read.broadcastRead && !read.presenceRead) return fail(unauthorized);
      policies = { ...read, broadcastWrite: null };
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      context.log(`[realtime] RlsPolicyError on ${message.topic}: ${error.message}`);
      return fail(unauthorized);
    }
  }

  const bindings = (Array.isArray(config.postgres_changes) ? config.postgres_changes : [])
    .filter((b): b is Record<string, unknown> => b !== null && typeof b === "object");
  const pg: PgSubscription[] = [];
  for (const raw of bindings) {
    const parsed = parseSubscriptionParams(raw);
    // Hosted answers these with a `system` error after an ok join; the emulator
    // refuses the join so the mistake cannot go unnoticed (README).
    if (!parsed.ok) return fail(`RealtimeDisabledForConfiguration: ${parsed.error}`);
    const checked = await checkSubscription(context.sql, parsed.params, claims);
    if (!checked.ok) return fail(`RealtimeDisabledForConfiguration: ${checked.error}`);
    pg.push({ id: bindingId(raw), params: parsed.params, entities: checked.entities });
  }

  // Deliveries start from here: what was committed before the join is not sent.
  // The insert position, not pg_current_wal_lsn(): with asynchronous commit the
  // write position can still be behind a transaction that has committed.
  const [position] = await context.sql<
    { lsn: string }[]
  >`select pg_current_wal_insert_lsn()::text as lsn`;
  const channel = new Channel(context, socket, message.topic, message.joinRef, {
    isPrivate,
    self: flag(broadcastConfig.self),
    ack: flag(broadcastConfig.ack),
  }, { claims, accessToken, policies, pg, since: parseLsn(position!.lsn) });
  channel.start();
  socket.send(replyMessage(message, "ok", {
    postgres_changes: bindings.map((raw, i) => ({ ...raw, id: pg[i]!.id })),
  }));
  if (flag(broadcastConfig.replication_ready)) {
    channel.pushSystem("system", "ok", "Replication connection established");
  }
  if (pg.length > 0) channel.pushSystem("postgres_changes", "ok", "Subscribed to PostgreSQL");
  return channel;
}
