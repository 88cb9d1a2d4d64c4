/**
 * One client WebSocket — the Phoenix socket layer: decodes frames for the
 * socket's serializer version, answers `phoenix`/`heartbeat`, routes
 * `phx_join` and per-topic messages to channels, and answers messages for
 * topics it has not joined with Phoenix's "unmatched topic" error. Frames are
 * handled one after another, in arrival order, as a Phoenix socket does.
 */
import type { WebSocket } from "ws";
import { Channel, type ChannelSocket, joinChannel, type RealtimeContext } from "./channel.ts";
import {
  decodeFrame,
  encodeMessage,
  type InboundFrame,
  MalformedFrameError,
  type PhoenixMessage,
  replyMessage,
  type Vsn,
} from "./protocol.ts";

export class Connection implements ChannelSocket {
  readonly #channels = new Map<string, Channel>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(
    readonly context: RealtimeContext,
    readonly ws: WebSocket,
    readonly vsn: Vsn,
    readonly socketToken: string,
    readonly headers: Record<string, string>,
  ) {
    ws.on("message", (data, isBinary) => {
      const bytes = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
        ? data
        : Buffer.from(data);
      this.#queue = this.#queue.then(() => this.#onFrame(bytes, isBinary)).catch((error) => {
        context.log(`[realtime] error handling a frame: ${(error as Error).stack ?? error}`);
      });
    });
    ws.on("close", () => this.#teardown());
    ws.on("error", (error) => {
      context.log(`[realtime] socket error: ${error.message}`);
      this.#teardown();
    });
  }

  send(message: PhoenixMessage): void {
    this.sendFrame(encodeMessage(this.vsn, message));
  }

  sendFrame(frame: string | Buffer): void {
    if (this.#closed || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(frame, { binary: typeof frame !== "string" });
  }

  channelClosed(channel: Channel): void {
    if (this.#channels.get(channel.topic) === channel) this.#channels.delete(channel.topic);
  }

  /** Closes the socket (the server is stopping). */
  close(code: number, reason: string): void {
    this.#teardown();
    this.ws.close(code, reason);
  }

  #teardown(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const channel of this.#channels.values()) channel.close(false);
    this.#channels.clear();
  }

  async #onFrame(bytes: Buffer, isBinary: boolean): Promise<void> {
    if (this.#closed) return;
    let frame: InboundFrame;
    try {
      frame = decodeFrame(this.vsn, bytes, isBinary);
    } catch (error) {
      if (!(error instanceof MalformedFrameError)) throw error;
      // Hosted logs MalformedWebSocketMessage and carries on; there is no ref to reply to.
      this.context.log(`[realtime] MalformedWebSocketMessage: ${error.message}`);
      return;
    }
    if (frame.kind === "user_broadcast_push") {
      const { push } = frame;
      const channel = this.#channelFor(push.topic, push.joinRef);
      if (!channel) {
        this.send(replyMessage(push, "error", { reason: "unmatched topic" }));
        return;
      }
      return await channel.handleUserBroadcast(push);
    }
    const { message } = frame;
    if (message.topic === "phoenix" && message.event === "heartbeat") {
      this.send(replyMessage({ joinRef: null, ref: message.ref, topic: "phoenix" }, "ok", {}));
      return;
    }
    if (message.event === "phx_join") return await this.#join(message);
    const channel = this.#channelFor(message.topic, message.joinRef);
    if (!channel) {
      // Phoenix acknowledges leaving a topic that is not joined, and refuses anything else.
      if (message.event === "phx_leave") this.send(replyMessage(message, "ok", {}));
      else this.send(replyMessage(message, "error", { reason: "unmatched topic" }));
      return;
    }
    await channel.handle(message);
  }

  #channelFor(topic: string, joinRef: string | null): Channel | null {
    const channel = this.#channels.get(topic);
    if (!channel) return null;
    // A message for an earlier join of the topic is stale.
    if (joinRef !== null && channel.joinRef !== null && joinRef !== channel.joinRef) return null;
    return channel;
  }

  async #join(message: PhoenixMessage): Promise<void> {
    if (!message.topic.startsWith("realtime:")) {
      // No channel route matches (hosted routes only "realtime:*").
      this.send(replyMessage(message, "error", { reason: "unmatched topic" }));
      return;
    }
    // Joining a joined topic again replaces the earlier join, as in Phoenix.
    const previous = this.#channels.get(message.topic);
    if (previous) {
      previous.close(true);
      this.#channels.delete(message.topic);
    }
    const channel = await joinChannel(this.context, this, message);
    if (!channel) return;
    if (this.#closed) {
      channel.close(false);
      return;
    }
    this.#channels.set(message.topic, channel);
  }
}
