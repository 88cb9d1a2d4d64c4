import { ExponentialBackoff, noJitterGenerator } from "cockatiel";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Adapter, ADAPTERS } from "../../shared/events/schema.ts";
import { type StatsBatch, StatsBuffer } from "../../shared/metrics/buffer.ts";
import { histogramCount } from "../../shared/metrics/histogram.ts";
import { createStatsRecorder } from "../../shared/metrics/recorder.ts";
import { STATS_BUCKET_MS } from "../../shared/metrics/stats.ts";

const sumCalls = (b: StatsBatch) => b.adapters.reduce((n, r) => n + r.calls, 0);
const sumReceived = (b: StatsBatch) => b.ingest.reduce((n, r) => n + r.received, 0);

describe("StatsBuffer", () => {
  const op = fc.record({
    kind: fc.constantFrom("call", "ingest", "flush_ok", "flush_fail"),
    bucket: fc.integer({ min: 0, max: 12 }),
    adapter: fc.constantFrom(...ADAPTERS),
    operation: fc.constantFrom("relay", "write", "send"),
    ok: fc.boolean(),
    latency: fc.double({ min: 0, max: 5000, noNaN: true }),
    received: fc.integer({ min: 1, max: 50 }),
  });

  it("accounts for every record: flushed + dropped = recorded, and never holds more than maxBuckets", () => {
    fc.assert(fc.property(
      fc.array(op, { maxLength: 200 }),
      fc.integer({ min: 1, max: 6 }),
      (ops, maxBuckets) => {
        const buffer = new StatsBuffer({ maxBuckets, maxKeysPerBucket: 64 });
        let recorded = 0;
        let flushed = 0;
        let dropped = 0;
        for (const o of ops) {
          const start = o.bucket * STATS_BUCKET_MS;
          if (o.kind === "call") {
            buffer.addCall(start, { ...o, latencyMs: o.latency, slow: false });
            recorded++;
          } else if (o.kind === "ingest") {
            buffer.addIngest(start, "critical", {
              received: o.received,
              stored: o.received,
              duplicates: 0,
              rejected: 0,
              bytes: 10,
            });
            recorded += o.received;
          } else {
            const batch = buffer.take();
            if (o.kind === "flush_ok") {
              flushed += sumCalls(batch) + sumReceived(batch);
              dropped += batch.dropped.records;
            } else {
              buffer.restore(batch);
            }
          }
          expect(buffer.size).toBeLessThanOrEqual(maxBuckets);
        }
        const last = buffer.take();
        flushed += sumCalls(last) + sumReceived(last);
        dropped += last.dropped.records;
        expect(flushed + dropped).toBe(recorded);
      },
    ));
  });

  it("aggregates calls of one key in one bucket into one row", () => {
    const buffer = new StatsBuffer({ maxBuckets: 10, maxKeysPerBucket: 10 });
    buffer.addCall(0, {
      adapter: "websocket",
      operation: "relay",
      ok: true,
      latencyMs: 5,
      events: 3,
      slow: false,
    });
    buffer.addCall(0, {
      adapter: "websocket",
      operation: "relay",
      ok: false,
      latencyMs: 300,
      events: 2,
      slow: true,
    });
    buffer.addCall(STATS_BUCKET_MS, {
      adapter: "websocket",
      operation: "relay",
      ok: true,
      latencyMs: 1,
      slow: false,
    });
    const batch = buffer.take();
    expect(batch.adapters).toHaveLength(2);
    const first = batch.adapters.find((r) => r.bucket_start === 0)!;
    expect(first).toMatchObject({
      calls: 2,
      failures: 1,
      slow_calls: 1,
      events: 3,
      failed_events: 2,
      latency_sum_ms: 305,
      latency_max_ms: 300,
    });
    expect(histogramCount(first.histogram)).toBe(2);
    expect(buffer.isEmpty).toBe(true);
  });

  it("drops the oldest buckets first and counts them", () => {
    const buffer = new StatsBuffer({ maxBuckets: 2, maxKeysPerBucket: 10 });
    for (let b = 0; b < 5; b++) {
      for (let i = 0; i <= b; i++) {
        buffer.addCall(b * STATS_BUCKET_MS, {
          adapter: "realtime",
          operation: "write",
          ok: true,
          latencyMs: 1,
          slow: false,
        });
      }
    }
    const batch = buffer.take();
    expect(batch.adapters.map((r) => r.bucket_start).sort()).toEqual([
      3 * STATS_BUCKET_MS,
      4 * STATS_BUCKET_MS,
    ]);
    expect(batch.dropped).toEqual({ buckets: 3, records: 1 + 2 + 3 });
  });

  it("refuses keys past maxKeysPerBucket, counting the records", () => {
    const buffer = new StatsBuffer({ maxBuckets: 2, maxKeysPerBucket: 1 });
    const call = (operation: string) =>
      buffer.addCall(0, { adapter: "websocket", operation, ok: true, latencyMs: 1, slow: false });
    call("a");
    call("b");
    call("a");
    const batch = buffer.take();
    expect(batch.adapters).toHaveLength(1);
    expect(batch.adapters[0]!.calls).toBe(2);
    expect(batch.dropped.records).toBe(1);
  });
});

describe("createStatsRecorder", () => {
  function setup(options: { fail?: () => boolean; maxBuckets?: number } = {}) {
    let clock = 1_000_000;
    const writes: { batch: StatsBatch; failures: number }[] = [];
    const logs: string[] = [];
    let attempts = 0;
    const recorder = createStatsRecorder({
      name: "test",
      autoFlush: false,
      maxBuckets: options.maxBuckets,
      backoff: new ExponentialBackoff({
        generator: noJitterGenerator,
        initialDelay: 1_000,
        maxDelay: 8_000,
      }),
      now: () => clock,
      log: (line) => logs.push(line),
      write: (batch, failures) => {
        attempts++;
        if (options.fail?.()) return Promise.reject(new Error("connect ECONNREFUSED"));
        writes.push({ batch, failures });
        return Promise.resolve();
      },
    });
    return {
      recorder,
      writes,
      logs,
      attempts: () => attempts,
      advance: (ms: number) => {
        clock += ms;
      },
    };
  }

  it("writes what was recorded, with slow calls judged by the adapter's threshold", async () => {
    const { recorder, writes } = setup();
    recorder.recordAdapterCall("websocket", "relay", true, 10, 4);
    recorder.recordAdapterCall("websocket", "relay", true, 250, 1); // over 200 ms
    recorder.recordAdapterCall("realtime", "write", false, 100, 7);
    recorder.recordIngest({
      critical: { received: 3, stored: 2, duplicates: 1, rejected: 0, bytes: 300 },
    });
    expect(await recorder.flush()).toEqual({ ok: true, written: { adapters: 2, ingest: 1 } });
    const batch = writes[0]!.batch;
    const ws = batch.adapters.find((r) => r.adapter === "websocket")!;
    expect(ws).toMatchObject({ calls: 2, failures: 0, slow_calls: 1, events: 5 });
    expect(batch.adapters.find((r) => r.adapter === "realtime")).toMatchObject({
      calls: 1,
      failures: 1,
      events: 0,
      failed_events: 7,
    });
    expect(batch.ingest).toEqual([{
      bucket_start: 1_000_000,
      category: "critical",
      received: 3,
      stored: 2,
      duplicates: 1,
      rejected: 0,
      bytes: 300,
    }]);
    expect(await recorder.flush()).toEqual({ ok: true, skipped: "empty" });
  });

  it("keeps a failed batch, backs off exponentially, and reports the failures when it recovers", async () => {
    let down = true;
    const { recorder, writes, advance, attempts, logs } = setup({ fail: () => down });
    recorder.recordAdapterCall("websocket", "relay", true, 5);
    const first = await recorder.flush();
    expect(first).toMatchObject({ ok: false, retryInMs: 1_000 });
    recorder.recordAdapterCall("websocket", "relay", false, 5);
    expect(await recorder.flush()).toMatchObject({ ok: false, skipped: "backoff" });
    expect(attempts()).toBe(1);
    advance(1_000);
    expect(await recorder.flush()).toMatchObject({ ok: false, retryInMs: 2_000 });
    advance(2_000);
    expect(await recorder.flush()).toMatchObject({ ok: false, retryInMs: 4_000 });
    expect(recorder.status()).toMatchObject({ consecutiveFailures: 3, pendingBuckets: 1 });
    down = false;
    advance(4_000);
    expect(await recorder.flush()).toMatchObject({ ok: true });
    expect(writes).toHaveLength(1);
    expect(writes[0]!.failures).toBe(3);
    expect(writes[0]!.batch.adapters[0]).toMatchObject({ calls: 2, failures: 1 });
    expect(recorder.status()).toMatchObject({ consecutiveFailures: 0, nextAttemptAt: 0 });
    expect(logs.filter((l) => l.includes("flush failed"))).toHaveLength(1);
  });

  it("bounds memory while the database is down and reports what it dropped", async () => {
    let down = true;
    const { recorder, writes, advance } = setup({ fail: () => down, maxBuckets: 3 });
    for (let b = 0; b < 6; b++) {
      recorder.recordAdapterCall("realtime", "write", true, 5);
      recorder.recordAdapterCall("realtime", "write", true, 5);
      await recorder.flush(true);
      expect(recorder.status().pendingBuckets).toBeLessThanOrEqual(3);
      advance(STATS_BUCKET_MS);
    }
    down = false;
    await recorder.flush(true);
    const batch = writes[0]!.batch;
    expect(batch.adapters).toHaveLength(3);
    expect(batch.adapters.reduce((n, r) => n + r.calls, 0)).toBe(6);
    expect(batch.dropped).toEqual({ buckets: 3, records: 6 });
  });

  it("never throws at the caller, and refuses invalid names without poisoning the flush", async () => {
    const { recorder, writes, logs } = setup();
    expect(() => recorder.recordAdapterCall("ftp" as Adapter, "relay", true, 1)).not.toThrow();
    expect(() => recorder.recordAdapterCall("websocket", "Bad-Op", true, 1)).not.toThrow();
    expect(() => recorder.recordAdapterCall("websocket", "Bad-Op", true, 1)).not.toThrow();
    expect(() =>
      recorder.recordIngest({
        ["nope" as "critical"]: { received: 1, stored: 1, duplicates: 0, rejected: 0, bytes: 1 },
      })
    ).not.toThrow();
    recorder.recordAdapterCall("websocket", "relay", true, NaN);
    await recorder.flush();
    expect(writes[0]!.batch.adapters).toHaveLength(1);
    expect(writes[0]!.batch.ingest).toHaveLength(0);
    expect(logs.filter((l) => l.includes("invalid"))).toHaveLength(3);
  });

  it("shares one write between concurrent flushes", async () => {
    const { recorder, attempts } = setup();
    recorder.recordAdapterCall("websocket", "relay", true, 1);
    const [a, b] = await Promise.all([recorder.flush(), recorder.flush()]);
    expect(a).toEqual(b);
    expect(attempts()).toBe(1);
  });

  it("close() flushes despite a backoff, and gives up after its timeout", async () => {
    let down = true;
    const { recorder, writes } = setup({ fail: () => down });
    recorder.recordAdapterCall("websocket", "relay", true, 1);
    await recorder.flush();
    down = false;
    expect(await recorder.close()).toMatchObject({ ok: true });
    expect(writes).toHaveLength(1);

    // Recorded after close (e.g. by work the platform lets finish): flushed at once.
    recorder.recordAdapterCall("websocket", "relay", false, 3);
    await new Promise((r) => setTimeout(r, 0));
    expect(writes).toHaveLength(2);
    expect(writes[1]!.batch.adapters[0]).toMatchObject({ calls: 1, failures: 1 });

    const hanging = createStatsRecorder({
      name: "test",
      autoFlush: false,
      closeTimeoutMs: 50,
      write: () => new Promise(() => {}),
    });
    hanging.recordAdapterCall("websocket", "relay", true, 1);
    expect(await hanging.close()).toMatchObject({ ok: false, error: "final flush timed out" });
  });
});
