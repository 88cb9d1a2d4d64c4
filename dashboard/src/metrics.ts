/**
 * Polls the metrics summary (`GET /functions/v1/metrics/summary?window=…`)
 * for the chosen range while the page is visible. The summary's shape is the
 * metrics function's (shared/metrics/summary.ts), imported as types only.
 *
 * A refusal (401/403: the anon key may not read metrics) stops polling until
 * the session changes; other failures keep the last good summary and retry.
 */
import type { ApiError } from "./api.ts";
import type { Dashboard } from "./app.ts";
import type { MetricsSummary, SummaryWindow } from "../../shared/metrics/summary.ts";

export type { MetricsSummary, SummaryWindow };

/** The chart ranges the dashboard offers; "live" reads the 1-minute summary plus this page's own counts. */
export type Range = "live" | "15m" | "1h" | "24h";
export const RANGES: readonly Range[] = ["live", "15m", "1h", "24h"];

const WINDOW_OF: Record<Range, SummaryWindow> = {
  live: "1m",
  "15m": "15m",
  "1h": "1h",
  "24h": "24h",
};
const EVERY_MS: Record<Range, number> = { live: 3_000, "15m": 10_000, "1h": 30_000, "24h": 60_000 };

export class MetricsPoller {
  range: Range = "15m";
  latest: MetricsSummary | null = null;
  error: ApiError | null = null;
  /** When `latest` was read (ms). */
  readAt: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #listeners = new Set<() => void>();
  #inflight = false;

  constructor(private readonly app: Dashboard) {
    app.session.onChange(() => {
      this.error = null;
      this.latest = null;
      this.poll();
    });
    // A flag change moves the flag version (and soon the routes): read again.
    app.on("flags", () => this.poll());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.poll();
    });
  }

  onChange(listener: () => void): void {
    this.#listeners.add(listener);
  }

  setRange(range: Range): void {
    if (range === this.range) return;
    this.range = range;
    this.latest = null;
    this.#emit();
    this.poll();
  }

  /** Reads now, then keeps reading at the range's interval. */
  poll(): void {
    clearTimeout(this.#timer);
    void this.#read();
  }

  get refused(): boolean {
    return this.error?.status === 401 || this.error?.status === 403;
  }

  async #read(): Promise<void> {
    if (this.#inflight) return;
    this.#inflight = true;
    const range = this.range;
    const res = await this.app.api.get<MetricsSummary>("metrics/summary", {
      window: WINDOW_OF[range],
    });
    this.#inflight = false;
    if (range !== this.range) return this.poll();
    if (res.ok) {
      this.latest = res.data;
      this.error = null;
      this.readAt = Date.now();
    } else {
      this.error = res.error;
    }
    this.#emit();
    if (!this.refused && !document.hidden) {
      this.#timer = setTimeout(() => void this.#read(), EVERY_MS[this.range]);
    }
  }

  #emit(): void {
    for (const l of this.#listeners) l();
  }
}

/** Words for a failed summary read, for the panels that depend on it. */
export function metricsProblem(error: ApiError | null, role: string): string | null {
  if (!error) return null;
  if (error.status === 403 || error.status === 401) {
    return role === "anon"
      ? "Health figures are for signed-in operators: sign in with the service-role key."
      : `The metrics API refused this credential: ${error.message}`;
  }
  if (error.status === 404) return "The metrics function is not deployed on this project.";
  if (error.status === 0) return `The metrics API did not answer: ${error.message}`;
  return `The metrics API answered ${error.status}: ${error.message}`;
}
