/**
 * Adaptive batching by event frequency (seed 003): a stream's observed rate
 * picks a tier — high frequency: batches of up to 100 flushed every 0.1 s;
 * medium: 50 / 0.5 s; low: 10 / 2 s. Batching never delays an idle stream:
 * while fewer than MAX_FLUSHES_IN_FLIGHT of the stream's flushes are in
 * flight, what arrives goes out at once (the leading edge, as group commit
 * does); beyond that, arrivals accumulate and go out when a flush settles,
 * when the batch is full, or when its oldest entry has waited the tier's
 * `max_wait_ms`, whichever comes first. So batch size follows the rate (busy streams make few large calls)
 * while a lone critical event pays no added latency — the tiers bound the
 * wait, they do not impose it.
 *
 * The policy (rate estimate, tier choice, flush decision) is pure; the
 * batcher below is its thin imperative shell: timers, bounded memory, and a
 * `flushAll` for shutdown. Memory is bounded by `max_pending` entries held
 * (buffered plus in flight): once half of it is buffered, batches are flushed
 * at once, and entries past the bound are handed to `onOverflow` rather than
 * held (for relays that is safe: the outbox row is committed, and ws-fanout's
 * drain or dlq-retry delivers it).
 */

/** One tier: streams at or above `min_rate` events/s batch up to `max_events` for up to `max_wait_ms`. */
export interface BatchTier {
  min_rate: number;
  max_events: number;
  max_wait_ms: number;
}

/** The `batching` setting. */
export interface BatchingSettings {
  enabled: boolean;
  high: BatchTier;
  medium: BatchTier;
  low: BatchTier;
  /** Most entries one batcher holds (all streams together). */
  max_pending: number;
}

/**
 * Flushes of one stream allowed in flight before arrivals start to
 * accumulate: enough to keep the relay pipelined, few enough that a burst
 * becomes a handful of large calls rather than many small ones.
 */
export const MAX_FLUSHES_IN_FLIGHT = 4;

export type TierName = "high" | "medium" | "low";

/** The time constant of the rate estimate: the rate follows a change within a few seconds. */
export const RATE_TAU_MS = 2_000;

/** A stream's decaying rate estimate. */
export interface RateEstimate {
  /** Events per second. */
  rate: number;
  at: number;
}

/**
 * Adds `n` events observed at `now` to an exponentially decaying rate
 * (time constant `tauMs`): rate' = rate · e^(-dt/τ) + n / τ. A steady stream of
 * r events/s converges to r. Pure.
 */
export function observeRate(
  previous: RateEstimate | undefined,
  n: number,
  now: number,
  tauMs = RATE_TAU_MS,
): RateEstimate {
  const decayed = previous ? previous.rate * Math.exp(-Math.max(0, now - previous.at) / tauMs) : 0;
  return { rate: decayed + (n * 1000) / tauMs, at: Math.max(now, previous?.at ?? now) };
}

/** The rate now, decayed since the last observation. Pure. */
export function currentRate(
  estimate: RateEstimate | undefined,
  now: number,
  tauMs = RATE_TAU_MS,
): number {
  if (!estimate) return 0;
  return estimate.rate * Math.exp(-Math.max(0, now - estimate.at) / tauMs);
}

/** The tier for a rate: the highest whose `min_rate` it reaches (low always qualifies). Pure. */
export function chooseTier(rate: number, settings: BatchingSettings): TierName {
  if (rate >= settings.high.min_rate) return "high";
  if (rate >= settings.medium.min_rate) return "medium";
  return "low";
}

/**
 * When a batch of `size` entries whose oldest arrived at `oldestAt` is due:
 * now when the stream is not saturated (`busy` false) or the
 * batch is full, else at `oldestAt + max_wait_ms`. Returns the epoch ms
 * (≤ now means flush now); Infinity for an empty batch. Pure.
 */
export function flushDueAt(size: number, oldestAt: number, tier: BatchTier, busy = true): number {
  if (size <= 0) return Infinity;
  if (!busy || size >= tier.max_events) return -Infinity;
  return oldestAt + tier.max_wait_ms;
}

export interface BatcherOptions<T> {
  settings: () => BatchingSettings;
  /** Delivers one batch; must not reject (errors are its own business). */
  flush: (stream: string, items: T[]) => Promise<void>;
  /** Entries memory could not hold (see the module comment). */
  onOverflow?: (stream: string, items: T[]) => void;
  now?: () => number;
}

export interface BatcherStatus {
  /** Entries buffered. */
  pending: number;
  /** Entries in flushes not yet settled. */
  inFlight: number;
  streams: Record<string, { pending: number; rate: number; tier: TierName }>;
}

export interface Batcher<T> {
  /** Queues items of `stream`; resolves when the batch holding them has been flushed. */
  add(stream: string, items: T[]): Promise<void>;
  /** Flushes everything now and waits for every flush in flight (shutdown). */
  flushAll(): Promise<void>;
  status(): BatcherStatus;
}

interface StreamBatch<T> {
  items: T[];
  oldestAt: number;
  waiters: (() => void)[];
  timer?: ReturnType<typeof setTimeout>;
  rate?: RateEstimate;
  /** This stream's flushes not yet settled. */
  flying: number;
}

/** Creates a batcher; with batching disabled every `add` flushes at once. */
export function createBatcher<T>(options: BatcherOptions<T>): Batcher<T> {
  const now = options.now ?? Date.now;
  const streams = new Map<string, StreamBatch<T>>();
  const inFlight = new Set<Promise<void>>();
  /** Entries buffered, and entries in flushes not yet settled. */
  let pending = 0;
  let flying = 0;

  function stream(name: string): StreamBatch<T> {
    let s = streams.get(name);
    if (!s) {
      s = { items: [], oldestAt: 0, waiters: [], flying: 0 };
      streams.set(name, s);
    }
    return s;
  }

  function flushStream(name: string): Promise<void> {
    const s = streams.get(name);
    if (!s || s.items.length === 0) return Promise.resolve();
    clearTimeout(s.timer);
    s.timer = undefined;
    const items = s.items;
    const waiters = s.waiters;
    s.items = [];
    s.waiters = [];
    pending -= items.length;
    flying += items.length;
    s.flying++;
    const stream_ = s;
    const done = options.flush(name, items).catch(() => {}).finally(() => {
      flying -= items.length;
      stream_.flying--;
      inFlight.delete(done);
      for (const w of waiters) w();
      // What accumulated behind this flush goes out now that the stream is idle.
      if (stream_.items.length > 0 && stream_.flying < MAX_FLUSHES_IN_FLIGHT) {
        schedule(name, stream_);
      }
    });
    inFlight.add(done);
    return done;
  }

  function schedule(name: string, s: StreamBatch<T>): void {
    const settings = options.settings();
    const tier = settings[chooseTier(currentRate(s.rate, now()), settings)];
    const due = flushDueAt(s.items.length, s.oldestAt, tier, s.flying >= MAX_FLUSHES_IN_FLIGHT);
    if (due <= now() || pending * 2 >= settings.max_pending) {
      void flushStream(name);
      return;
    }
    if (s.timer === undefined) {
      s.timer = setTimeout(() => {
        s.timer = undefined;
        void flushStream(name);
      }, Math.max(0, due - now()));
    }
  }

  return {
    add(name, items) {
      if (items.length === 0) return Promise.resolve();
      const settings = options.settings();
      const s = stream(name);
      s.rate = observeRate(s.rate, items.length, now());
      if (!settings.enabled) {
        s.items.push(...items);
        pending += items.length;
        return flushStream(name);
      }
      // Bounded memory: what cannot be held while flushes are in flight is
      // left to the overflow handler instead of growing the buffer.
      const room = Math.max(0, settings.max_pending - pending - flying);
      const kept = items.length <= room ? items : items.slice(0, room);
      if (kept.length < items.length) options.onOverflow?.(name, items.slice(kept.length));
      if (kept.length === 0) return Promise.resolve();
      if (s.items.length === 0) s.oldestAt = now();
      s.items.push(...kept);
      pending += kept.length;
      const settled = new Promise<void>((resolve) => s.waiters.push(resolve));
      schedule(name, s);
      return settled;
    },
    async flushAll() {
      for (const name of streams.keys()) void flushStream(name);
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    status() {
      const settings = options.settings();
      const out: BatcherStatus["streams"] = {};
      for (const [name, s] of streams) {
        const rate = currentRate(s.rate, now());
        out[name] = { pending: s.items.length, rate, tier: chooseTier(rate, settings) };
      }
      return { pending, inFlight: flying, streams: out };
    },
  };
}
