/**
 * Dual mode's live agreement between the two paths, by event id: which
 * events this dashboard saw on both, only on the WebSocket path, only on
 * Realtime. Pure; the caller passes the clock.
 *
 * An event is judged once `graceMs` have passed since its first sighting
 * (the other path may simply be slower). A sighting after the judgement moves
 * it from "only on one" to "both" and counts as late. Realtime copies carry
 * the routes ingest chose, so an event seen only on Realtime is split into
 * "routed to Realtime only" (expected) and "routed to both" (the WebSocket
 * path has not delivered it). WebSocket copies carry no routes.
 *
 * Bounded: at most `capacity` ids are remembered (oldest forgotten first).
 */
import type { Path } from "./events.ts";
import { Ring } from "./ring.ts";

interface Entry {
  id: string;
  first: number;
  websocket?: number;
  realtime?: number;
  /** Paths whose copy came live (not from a history backfill). */
  live?: number;
  routes?: string[];
  verdict?: "both" | "websocket" | "realtime";
}

export interface AgreementCounts {
  /** Judged events seen on both paths. */
  both: number;
  /** Judged events seen only on the WebSocket path. */
  websocketOnly: number;
  /** Judged events seen only on Realtime. */
  realtimeOnly: number;
  /** Of `realtimeOnly`: events whose routes include the WebSocket path (it has not delivered them). */
  realtimeOnlyRoutedToBoth: number;
  /** Seen on one path, not judged yet. */
  pending: number;
  /** Judged one-sided, then seen on the other path. */
  late: number;
  /** How much later Realtime delivered than WebSocket (ms; negative = earlier), over recent pairs. */
  realtimeLagMs: { p50: number; p95: number; samples: number } | null;
}

export interface OneSided {
  id: string;
  path: Path;
  at: number;
  routes?: string[];
}

export class AgreementTracker {
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Entry>();
  readonly #lags: Ring<number>;
  readonly #recent: Ring<OneSided>;
  #both = 0;
  #websocketOnly = 0;
  #realtimeOnly = 0;
  #routedToBoth = 0;
  #late = 0;

  constructor(
    private readonly graceMs = 5_000,
    private readonly capacity = 50_000,
    recentCapacity = 20,
  ) {
    this.#lags = new Ring(1_000);
    this.#recent = new Ring(recentCapacity);
  }

  /**
   * Records that `path` delivered `id` at `at` (ms), live or through its
   * gap-closing backfill (which counts as delivered; only live pairs feed
   * the latency comparison). Repeats on the same path are ignored.
   */
  see(id: string, path: Path, at: number, routes?: string[], live = true): void {
    let entry = this.#entries.get(id);
    if (!entry) {
      entry = { id, first: at };
      this.#entries.set(id, entry);
      this.#pending.set(id, entry);
      if (this.#entries.size > this.capacity) {
        const oldest = this.#entries.keys().next().value as string;
        this.#entries.delete(oldest);
        this.#pending.delete(oldest);
      }
    }
    if (entry[path] !== undefined) return;
    entry[path] = at;
    if (live) entry.live = (entry.live ?? 0) + 1;
    if (routes) entry.routes = routes;
    if (entry.websocket !== undefined && entry.realtime !== undefined) {
      if (entry.live === 2) this.#lags.push(entry.realtime - entry.websocket);
      if (entry.verdict === "websocket" || entry.verdict === "realtime") {
        this.#unjudge(entry);
        entry.verdict = "both";
        this.#both++;
        this.#late++;
      }
    }
  }

  #unjudge(entry: Entry): void {
    if (entry.verdict === "websocket") this.#websocketOnly--;
    if (entry.verdict === "realtime") {
      this.#realtimeOnly--;
      if (entry.routes?.includes("websocket")) this.#routedToBoth--;
    }
  }

  /** Whether `id` is being tracked (seen on some path and not forgotten). */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** Judges every event first seen at least `graceMs` before `now`. */
  settle(now: number): void {
    for (const [id, entry] of this.#pending) {
      if (entry.first + this.graceMs > now) break;
      this.#pending.delete(id);
      if (entry.websocket !== undefined && entry.realtime !== undefined) {
        entry.verdict = "both";
        this.#both++;
      } else if (entry.websocket !== undefined) {
        entry.verdict = "websocket";
        this.#websocketOnly++;
        this.#recent.push({ id, path: "websocket", at: entry.first });
      } else {
        entry.verdict = "realtime";
        this.#realtimeOnly++;
        if (entry.routes?.includes("websocket")) this.#routedToBoth++;
        this.#recent.push({ id, path: "realtime", at: entry.first, routes: entry.routes });
      }
    }
  }

  counts(): AgreementCounts {
    const lags = this.#lags.toArray().sort((a, b) => a - b);
    const pick = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!;
    return {
      both: this.#both,
      websocketOnly: this.#websocketOnly,
      realtimeOnly: this.#realtimeOnly,
      realtimeOnlyRoutedToBoth: this.#routedToBoth,
      pending: this.#pending.size,
      late: this.#late,
      realtimeLagMs: lags.length ? { p50: pick(0.5), p95: pick(0.95), samples: lags.length } : null,
    };
  }

  /** The most recent one-sided verdicts, newest first (still one-sided). */
  recentOneSided(): OneSided[] {
    return this.#recent.toArray().reverse().filter((o) =>
      this.#entries.get(o.id)?.verdict === o.path
    );
  }

  reset(): void {
    this.#entries.clear();
    this.#pending.clear();
    this.#lags.clear();
    this.#recent.clear();
    this.#both =
      this.#websocketOnly =
      this.#realtimeOnly =
      this.#routedToBoth =
      this.#late =
        0;
  }
}
