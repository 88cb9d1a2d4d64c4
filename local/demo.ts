/**
 * Demo traffic: a synthetic fleet of producers posting a realistic mix of
 * monitoring events through the real ingest endpoint with the producer key,
 * so a newcomer sees the dashboard move (`npm start -- --demo`, or
 * `npm run demo` against a running stack).
 *
 * The mix: eight services, each with its own event types — latencies and
 * resource gauges (performance), logins, page views and clicks
 * (user_activity), heartbeats and jobs (system), errors and lost connections
 * (critical), traces (debug), and one legacy daemon whose events are stored
 * but not relayed. Categories are left for ingest to classify, as most
 * producers do. The rate wanders around the target with occasional bursts.
 *
 * Each source's sequence continues from the last one stored (read from the
 * history API with the service-role key), so restarting the demo neither
 * duplicates events nor leaves sequence gaps for reconciliation to report.
 */

export interface DemoEvent {
  source: string;
  sequence_id: number;
  event_type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

type Maker = (r: () => number) => Record<string, unknown>;

interface Producer {
  source: string;
  weight: number;
  events: [type: string, weight: number, data: Maker][];
}

const pick = <T>(r: () => number, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
/** A log-normal-ish latency around `median` ms. */
const latency = (r: () => number, median: number) =>
  Math.round(median * Math.exp((r() + r() + r() - 1.5) * 0.9) * 10) / 10;
const user = (r: () => number) => `u-${1000 + Math.floor(r() * 9000)}`;
const session = (r: () => number) => `s-${Math.floor(r() * 0xffffff).toString(16)}`;
const trace = (r: () => number) => Math.floor(r() * 2 ** 48).toString(16).padStart(12, "0");

const httpLatency = (routes: string[], median: number): Maker => (r) => ({
  route: pick(r, routes),
  method: pick(r, ["GET", "GET", "GET", "POST"]),
  status: r() < 0.97 ? 200 : pick(r, [404, 429, 500]),
  duration_ms: latency(r, median),
});

export const PRODUCERS: readonly Producer[] = [
  {
    source: "checkout-api",
    weight: 4,
    events: [
      ["http.response_time", 8, httpLatency(["/api/cart", "/api/checkout", "/api/prices"], 42)],
      ["payment.error", 0.3, (r) => ({
        code: pick(r, [502, 504]),
        provider: pick(r, ["stripe", "adyen"]),
        message: "upstream payment provider timed out",
        attempt: 1 + Math.floor(r() * 3),
      })],
      ["cart.user_action", 2, (r) => ({
        user_id: user(r),
        action: pick(r, ["add_item", "remove_item", "apply_coupon"]),
      })],
      ["service.healthcheck", 0.5, () => ({ status: "ok", checks: { db: "ok", cache: "ok" } })],
    ],
  },
  {
    source: "auth-service",
    weight: 3,
    events: [
      ["user.login", 3, (r) => ({
        user_id: user(r),
        method: pick(r, ["password", "sso", "magic_link"]),
        session_id: session(r),
      })],
      ["user.logout", 1, (r) => ({ user_id: user(r), session_id: session(r) })],
      ["token.validation_failed", 0.3, (r) => ({
        reason: pick(r, ["expired", "bad_signature"]),
        client: pick(r, ["web", "ios", "android"]),
      })],
      ["auth.latency", 2, (r) => ({ operation: "verify", duration_ms: latency(r, 8) })],
    ],
  },
  {
    source: "search-api",
    weight: 3,
    events: [
      ["search.latency", 5, httpLatency(["/search", "/suggest"], 65)],
      ["cache.hit_ratio", 1, (r) => ({ ratio: Math.round((0.85 + r() * 0.14) * 1000) / 1000 })],
      ["search.debug.trace", 1.5, (r) => ({ trace_id: trace(r), shards: 1 + Math.floor(r() * 8) })],
      ["index.refreshed", 0.3, (r) => ({ documents: 10_000 + Math.floor(r() * 5000) })],
    ],
  },
  {
    source: "web-frontend",
    weight: 4,
    events: [
      ["page_view", 5, (r) => ({
        user_id: user(r),
        page: pick(r, ["/", "/products", "/cart", "/checkout", "/account"]),
        referrer: pick(r, ["search", "direct", "email"]),
      })],
      ["ui.click", 3, (r) => ({ user_id: user(r), target: pick(r, ["buy", "menu", "filter"]) })],
      ["js.exception", 0.2, (r) => ({
        message: pick(r, ["TypeError: x is undefined", "ChunkLoadError"]),
        browser: pick(r, ["chrome", "firefox", "safari"]),
      })],
      ["web.vitals", 1, (r) => ({ lcp_ms: latency(r, 1800), cls: Math.round(r() * 100) / 1000 })],
    ],
  },
  {
    source: "payments-worker",
    weight: 2,
    events: [
      ["job.completed", 3, (r) => ({ queue: "payouts", duration_ms: latency(r, 300) })],
      [
        "job.failed",
        0.2,
        (r) => ({
          queue: "payouts",
          error: "card_declined",
          retry_in_s: 30 * (1 + Math.floor(r() * 4)),
        }),
      ],
      ["queue.depth", 1, (r) => ({ queue: "payouts", depth: Math.floor(r() * 40) })],
      [
        "worker.heartbeat",
        1,
        (r) => ({ worker: `w-${1 + Math.floor(r() * 4)}`, uptime_s: Math.floor(r() * 86400) }),
      ],
    ],
  },
  {
    source: "db-monitor",
    weight: 2,
    events: [
      [
        "db.cpu",
        2,
        (r) => ({ host: pick(r, ["db-1", "db-2"]), percent: Math.round(20 + r() * 60) }),
      ],
      [
        "db.memory",
        1,
        (r) => ({ host: pick(r, ["db-1", "db-2"]), used_gb: Math.round((12 + r() * 4) * 10) / 10 }),
      ],
      ["replication.lag", 1, (r) => ({ replica: "db-2", lag_ms: latency(r, 40) })],
      ["db.connection.lost", 0.1, (r) => ({ host: pick(r, ["db-1", "db-2"]), pool: "primary" })],
    ],
  },
  {
    source: "cdn-edge",
    weight: 2,
    events: [
      [
        "edge.throughput",
        3,
        (r) => ({ pop: pick(r, ["fra", "lhr", "iad"]), rps: Math.round(800 + r() * 400) }),
      ],
      [
        "edge.debug.verbose",
        1,
        (r) => ({ pop: pick(r, ["fra", "lhr", "iad"]), trace_id: trace(r) }),
      ],
      ["cert.renewed", 0.05, () => ({ domain: "shop.example.com", days_valid: 90 })],
    ],
  },
  {
    source: "legacy-daemon",
    weight: 0.5,
    events: [["legacy.status", 1, (r) => ({ state: pick(r, ["idle", "busy"]) })]],
  },
];

function weighted<T>(r: () => number, items: readonly T[], weight: (t: T) => number): T {
  const total = items.reduce((s, t) => s + weight(t), 0);
  let x = r() * total;
  for (const item of items) {
    x -= weight(item);
    if (x < 0) return item;
  }
  return items[items.length - 1]!;
}

/** Poisson-distributed count with mean `mean` (Knuth; fine for small means). */
export function poisson(r: () => number, mean: number): number {
  if (mean > 50) {
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * (r() + r() + r() - 1.5) * 2));
  }
  const limit = Math.exp(-mean);
  let k = 0;
  let p = r();
  while (p > limit) {
    k++;
    p *= r();
  }
  return k;
}

/**
 * The pure generator: `next(n, now)` returns n events, each source's
 * sequence_id continuing from `startAt[source]` (default 0) without gaps.
 */
export function createDemoGenerator(
  random: () => number = Math.random,
  startAt: Record<string, number> = {},
): { next(n: number, nowMs: number): DemoEvent[]; readonly sequences: Record<string, number> } {
  const sequences: Record<string, number> = {};
  for (const p of PRODUCERS) sequences[p.source] = startAt[p.source] ?? 0;
  return {
    sequences,
    next(n, nowMs) {
      const out: DemoEvent[] = [];
      for (let i = 0; i < n; i++) {
        const producer = weighted(random, PRODUCERS, (p) => p.weight);
        const [type, , make] = weighted(random, producer.events, (e) => e[1]);
        out.push({
          source: producer.source,
          sequence_id: ++sequences[producer.source]!,
          event_type: type,
          // Spread over the tick, so timestamps are not all equal.
          timestamp: new Date(nowMs - Math.floor(random() * 200)).toISOString(),
          data: make(random),
        });
      }
      return out;
    },
  };
}

export interface DemoOptions {
  apiUrl: string;
  producerKey: string;
  /** To continue each source's sequence from history (optional). */
  serviceRoleKey?: string;
  /** Mean events per second (default 12). */
  rate?: number;
  /** Send every `tickMs` (default 250). */
  tickMs?: number;
  log?: (line: string) => void;
}

export interface Demo {
  /** Events acknowledged by ingest so far. */
  readonly sent: number;
  stop(): Promise<void>;
}

/** The last stored sequence_id of each demo source (0 when none, or history unreadable). */
async function lastSequences(apiUrl: string, key: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await Promise.all(PRODUCERS.map(async (p) => {
    try {
      const url = `${apiUrl}/functions/v1/events?source=${
        encodeURIComponent(p.source)
      }&order=desc&limit=1`;
      const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
      if (!res.ok) return;
      const body = await res.json() as { events: { sequence_id: number }[] };
      if (body.events[0]) out[p.source] = body.events[0].sequence_id;
    } catch {
      // Start from 0: duplicates are answered as such, never stored twice.
    }
  }));
  return out;
}

/** Starts producing at once; `stop()` waits for the request in flight. */
export async function startDemo(options: DemoOptions): Promise<Demo> {
  const log = options.log ?? ((line: string) => console.log(line));
  const rate = options.rate ?? 12;
  const tickMs = options.tickMs ?? 250;
  const start = options.serviceRoleKey
    ? await lastSequences(options.apiUrl, options.serviceRoleKey)
    : {};
  const generator = createDemoGenerator(Math.random, start);
  let sent = 0;
  let stopped = false;
  let busy: Promise<void> | undefined;
  let pauseUntil = 0;
  let burstUntil = 0;
  let failures = 0;
  let dropped = 0;
  /** Generated, not yet acknowledged (sequence ids are taken: they must be sent). */
  let backlog: DemoEvent[] = [];
  const MAX_BACKLOG = 20_000;

  async function send(events: DemoEvent[]): Promise<void> {
    try {
      const res = await fetch(`${options.apiUrl}/functions/v1/ingest`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${options.producerKey}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ events }),
      });
      const text = await res.text();
      if (res.ok) {
        sent += events.length;
        if (failures) log(`demo: ingest answers again`);
        failures = 0;
        return;
      }
      if ([429, 502, 503, 504].includes(res.status)) {
        backlog = events.concat(backlog);
        pauseUntil = Date.now() + 1000 * (Number(res.headers.get("retry-after")) || 2);
        if (failures++ === 0) log(`demo: ingest answered ${res.status}; retrying`);
        return;
      }
      log(`demo: ingest refused a batch (${res.status}): ${text.slice(0, 300)}`);
    } catch (error) {
      backlog = events.concat(backlog);
      pauseUntil = Date.now() + 2000;
      if (failures++ === 0) log(`demo: ingest unreachable (${(error as Error).message}); retrying`);
    }
  }

  const timer = setInterval(() => {
    const now = Date.now();
    if (stopped) return;
    // Now and then a burst at three times the rate, for a few seconds.
    if (now > burstUntil && Math.random() < tickMs / 60_000) burstUntil = now + 4000;
    const mean = (rate * tickMs / 1000) * (now < burstUntil ? 3 : 1);
    backlog.push(...generator.next(poisson(Math.random, mean), now));
    if (backlog.length > MAX_BACKLOG) {
      // Ingest has been away for long: the oldest synthetic events are given up.
      if (dropped === 0) log("demo: ingest is behind; dropping the oldest demo events");
      dropped += backlog.length - MAX_BACKLOG;
      backlog = backlog.slice(-MAX_BACKLOG);
    }
    // One request at a time: while one is in flight, the next batch grows (up to ingest's 1,000).
    if (busy || now < pauseUntil || backlog.length === 0) return;
    const batch = backlog.splice(0, 1000);
    busy = send(batch).finally(() => (busy = undefined));
  }, tickMs);

  log(`demo: producing about ${rate} events/s from ${PRODUCERS.length} sources`);
  return {
    get sent() {
      return sent;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await busy;
    },
  };
}
