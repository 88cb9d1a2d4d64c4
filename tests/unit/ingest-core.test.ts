import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { builtInDefaults, ConfigEnvError, defaultsFromEnv } from "../../shared/config/settings.ts";
import type { LoadedConfig } from "../../shared/config/source.ts";
import { createClassifier } from "../../shared/events/classify.ts";
import { deriveEventId, uuidV5 } from "../../shared/events/event-id.ts";
import { DEFAULT_INGEST_LIMITS } from "../../shared/ingest/limits.ts";
import { prepareEvents, unpackBody } from "../../shared/ingest/prepare.ts";

const RULES = [
  { pattern: "^legacy[._]", category: "system" as const, legacy: true, priority: 10 },
  {
    pattern: "(^|[._])(error|exception)([._]|$)",
    category: "critical" as const,
    legacy: false,
    priority: 30,
  },
  {
    pattern: "(^|[._])(cache|latency)([._]|$)",
    category: "performance" as const,
    legacy: false,
    priority: 40,
  },
];

function loaded(): LoadedConfig {
  const d = builtInDefaults();
  return {
    version: 1,
    categories: d.categories,
    settings: d.settings,
    rules: RULES,
    classifier: createClassifier(RULES),
    routing: {
      categories: d.categories,
      globalOverride: null,
      primary: "websocket",
      routingKey: "source",
    },
    loadedAt: 0,
  };
}

const NOW = Date.parse("2026-06-01T12:00:00Z");
const HORIZON = Date.parse("2026-05-01T00:00:00Z");
const good = (over: Record<string, unknown> = {}) => ({
  source: "svc",
  sequence_id: 1,
  event_type: "db.error",
  timestamp: "2026-06-01T11:59:00+02:00",
  data: { msg: "boom" },
  ...over,
});

describe("event ids", () => {
  it("derives RFC 9562 UUIDv5 (same as Python uuid.uuid5 for the DNS namespace)", async () => {
    expect(await uuidV5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.example.com")).toBe(
      "2ed6657d-e927-568b-95e1-2665a8aea6a2",
    );
  });
  it("is deterministic per source + sequence_id and distinct across them", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 10 }), fc.nat(), fc.nat(), async (s, a, b) => {
        expect(await deriveEventId(s, a)).toBe(await deriveEventId(s, a));
        if (a !== b) expect(await deriveEventId(s, a)).not.toBe(await deriveEventId(s, b));
      }),
      { numRuns: 50 },
    );
  });
});

describe("classification", () => {
  const c = createClassifier(RULES);
  it.each([
    ["db.error", "critical", false],
    ["cache.miss", "performance", false],
    ["legacy.old_metric", "system", true],
    ["something_else", "system", false],
    ["terror", "system", false],
  ])("%s → %s", (type, category, legacy) => {
    expect(c.classify(type)).toMatchObject({ category, legacy });
  });
  it("skips an invalid pattern instead of failing", () => {
    const bad: string[] = [];
    const c2 = createClassifier([
      { pattern: "(", category: "debug", legacy: false, priority: 1 },
      ...RULES,
    ], (r) => bad.push(r.pattern));
    expect(bad).toEqual(["("]);
    expect(c2.classify("x.error").category).toBe("critical");
  });
});

describe("unpackBody", () => {
  const limits = { ...DEFAULT_INGEST_LIMITS, maxEvents: 3 };
  it("accepts one event or a batch, refuses other shapes", () => {
    expect(unpackBody(good(), limits)).toEqual({ ok: true, items: [good()] });
    expect(unpackBody({ events: [good(), good()] }, limits)).toMatchObject({ ok: true });
    expect(unpackBody([good()], limits)).toMatchObject({ ok: false, code: "malformed_body" });
    expect(unpackBody({ events: {} }, limits)).toMatchObject({ ok: false, code: "malformed_body" });
    expect(unpackBody({ events: [] }, limits)).toMatchObject({ ok: false, code: "no_events" });
    expect(unpackBody({ events: [1, 2, 3, 4] }, limits)).toMatchObject({
      ok: false,
      code: "too_many_events",
    });
    expect(unpackBody(null, limits)).toMatchObject({ ok: false });
  });
});

describe("prepareEvents", () => {
  const run = (items: unknown[], limits = DEFAULT_INGEST_LIMITS) =>
    prepareEvents(items, loaded(), limits, NOW, HORIZON);

  it("normalises the timestamp to UTC ISO and classifies, checksums and routes", async () => {
    const [p] = await run([good()]);
    expect(p).toMatchObject({ ok: true });
    if (!p?.ok) throw new Error("expected ok");
    expect(p.event.timestamp).toBe("2026-06-01T09:59:00.000Z");
    expect(p.event.category).toBe("critical");
    expect(p.event.checksum_alg).toBe("sha256");
    expect(p.event.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(p.event.routes).toEqual(["websocket", "realtime"]);
    expect(p.event.id).toBe(await deriveEventId("svc", 1));
  });

  it.each([
    [{ sequence_id: "1" }, "invalid_event", "sequence_id must be an integer"],
    [{ sequence_id: 1.5 }, "invalid_event", "sequence_id must be an integer"],
    [{ source: undefined }, "invalid_event", "source is required"],
    [{ source: "" }, "invalid_event", "source must not be empty"],
    [{ timestamp: "yesterday" }, "invalid_event", "timestamp must be an ISO-8601"],
    [{ timestamp: "2026-06-01T11:00:00" }, "invalid_event", "timestamp must be an ISO-8601"],
    [{ category: "urgent" }, "invalid_event", 'unknown category "urgent"'],
    [{ data: [1] }, "invalid_event", "data must be a JSON object"],
    [{ id: "not-a-uuid" }, "invalid_event", "id must be a UUID"],
    [{ colour: "red" }, "invalid_event", "unknown field(s): colour"],
    [{ timestamp: "2026-06-01T14:00:00Z" }, "timestamp_in_future", "ahead of the server clock"],
    [{ timestamp: "2026-04-30T23:59:59Z" }, "timestamp_too_old", "older than the retention period"],
  ])("rejects %j with %s", async (over, code, message) => {
    const [p] = await run([good(over)]);
    expect(p).toMatchObject({ ok: false, code });
    if (p && !p.ok) expect(p.message).toContain(message);
  });

  it("rejects an event over the per-event size limit, naming sizes", async () => {
    const [p] = await run([good({ data: { blob: "x".repeat(200) } })], {
      ...DEFAULT_INGEST_LIMITS,
      maxEventBytes: 100,
    });
    expect(p).toMatchObject({ ok: false, code: "event_too_large" });
    if (p && !p.ok) expect(p.message).toMatch(/the limit is 100 bytes/);
  });

  it("marks a repeated event within one request as a duplicate of the first", async () => {
    const out = await run([good(), good({ sequence_id: 2 }), good()]);
    expect(out.map((p) => p.ok && p.duplicateOf)).toEqual([undefined, undefined, 0]);
  });

  it("uses the producer's category and the legacy rule", async () => {
    const [a, b] = await run([
      good({ category: "debug" }),
      good({ event_type: "legacy.thing", sequence_id: 2 }),
    ]);
    expect(a).toMatchObject({
      ok: true,
      event: { category: "debug", checksum_alg: "crc32", routes: ["websocket"] },
    });
    expect(b).toMatchObject({ ok: true, event: { legacy: true, routes: [] } });
  });
});

describe("defaultsFromEnv", () => {
  it("takes the seeds' variable names", () => {
    const d = defaultsFromEnv({
      DUAL_WRITE_PERFORMANCE_PERCENTAGE: "75",
      DUAL_WRITE_GLOBAL_OVERRIDE: "realtime_only",
      ADAPTER_REALTIME_LATENCY_THRESHOLD_MS: "300",
      CIRCUIT_BREAKER_RECOVERY_TIME_S: "10",
      DUAL_WRITE_DEBUG_ADAPTERS: "realtime",
    });
    expect(d.categories.performance.percentage).toBe(75);
    expect(d.categories.debug.adapters).toEqual(["realtime"]);
    expect(d.settings.global_override).toBe("realtime_only");
    expect(d.settings.adapter_health.realtime.latency_threshold_ms).toBe(300);
    expect(d.settings.circuit_breaker.recovery_time_s).toBe(10);
    expect(defaultsFromEnv({ DUAL_WRITE_ENABLED: "false" }).categories.critical.enabled).toBe(
      false,
    );
    expect(defaultsFromEnv({ DUAL_WRITE_GLOBAL_OVERRIDE: "null" }).settings.global_override)
      .toBeNull();
  });
  it.each([
    ["DUAL_WRITE_CRITICAL_PERCENTAGE", "150"],
    ["DUAL_WRITE_GLOBAL_OVERRIDE", "kafka_only"],
    ["ADAPTER_WEBSOCKET_ERROR_THRESHOLD", "abc"],
    ["DUAL_WRITE_SYSTEM_ADAPTERS", "websocket,carrier-pigeon"],
    ["CIRCUIT_BREAKER_ENABLED", "maybe"],
  ])("refuses %s=%s naming the variable", (name, value) => {
    expect(() => defaultsFromEnv({ [name]: value })).toThrow(ConfigEnvError);
    expect(() => defaultsFromEnv({ [name]: value })).toThrow(name);
  });
});
