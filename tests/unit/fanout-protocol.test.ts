import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CATEGORIES } from "../../shared/events/schema.ts";
import type { LedgerEntry } from "../../shared/fanout/cursor-stream.ts";
import {
  encodeBatchOnce,
  encodeDeliveries,
  MAX_BATCH_CHARS,
  queueVerdict,
} from "../../shared/fanout/messages.ts";
import { MAX_FILTER_SOURCES, parseStreamQuery } from "../../shared/fanout/query.ts";

const parse = (qs: string) => parseStreamQuery(new URLSearchParams(qs));

describe("connect parameters", () => {
  it("accepts a token alone: live, unfiltered", () => {
    expect(parse("token=t")).toEqual({
      ok: true,
      request: { token: "t", since: null, filter: { categories: null, sources: null } },
    });
  });

  it("parses since and both filters", () => {
    const r = parse("token=t&since=42&categories=critical,system&sources=web-1,%20db");
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.request.since).toBe(42);
    expect([...r.request.filter.categories!]).toEqual(["critical", "system"]);
    expect([...r.request.filter.sources!]).toEqual(["web-1", "db"]);
  });

  it("leaves the token check to the caller: a missing or empty token parses as null", () => {
    expect(parse("since=1").ok && parse("since=1")).toMatchObject({ request: { token: null } });
    expect(parse("token=")).toMatchObject({ ok: true, request: { token: null } });
  });

  it.each([
    ["token=t&since=-1", /since must be a cursor/],
    ["token=t&since=1.5", /since must be a cursor/],
    ["token=t&since=abc", /since must be a cursor/],
    ["token=t&since=", /since must be a cursor/],
    ["token=t&since=99999999999999999", /since must be a cursor/],
    ["token=t&categories=critical,bogus", /unknown category "bogus"/],
    ["token=t&categories=", /categories has an empty item/],
    ["token=t&categories=critical,", /categories has an empty item/],
    ["token=t&sources=a,,b", /sources has an empty item/],
    [`token=t&sources=${"x".repeat(201)}`, /at most 200 characters/],
    ["token=t&categroies=critical", /unknown query parameter "categroies"/],
    ["token=t&since=1&since=2", /given twice/],
  ])("refuses %s", (qs, reason) => {
    const r = parse(qs);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(reason);
  });

  it(`refuses more than ${MAX_FILTER_SOURCES} sources`, () => {
    const many = Array.from({ length: MAX_FILTER_SOURCES + 1 }, (_, i) => `s${i}`).join(",");
    expect(parse(`token=t&sources=${many}`)).toMatchObject({ ok: false });
    const enough = Array.from({ length: MAX_FILTER_SOURCES }, (_, i) => `s${i}`).join(",");
    expect(parse(`token=t&sources=${enough}`)).toMatchObject({ ok: true });
  });

  it("accepts any subset of the known categories and any safe cursor", () => {
    fc.assert(fc.property(
      fc.subarray([...CATEGORIES], { minLength: 1 }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      (cats, since) => {
        const r = parse(`token=t&since=${since}&categories=${cats.join(",")}`);
        expect(r.ok).toBe(true);
        if (r.ok) {
          expect(r.request.since).toBe(since);
          expect([...r.request.filter.categories!].sort()).toEqual([...cats].sort());
        }
      },
    ));
  });
});

const entries = (cursors: number[], size = 10): LedgerEntry[] =>
  cursors.map((cursor) => ({
    cursor,
    source: "s",
    category: "system",
    payload: JSON.stringify({ id: String(cursor), pad: "x".repeat(size) }),
  }));

describe("delivery messages", () => {
  it("sends one entry as an event message carrying its cursor", () => {
    const [text] = encodeDeliveries(entries([7]), 100);
    expect(JSON.parse(text!)).toEqual({
      type: "event",
      cursor: 7,
      event: { id: "7", pad: "x".repeat(10) },
    });
  });

  it("splits entries into batches that keep order, respect the limits and carry their last cursor", () => {
    fc.assert(fc.property(
      fc.uniqueArray(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 2, maxLength: 300 }),
      fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 0, max: 4000 }),
      (raw, maxEvents, size) => {
        const cursors = [...raw].sort((a, b) => a - b);
        const messages = encodeDeliveries(entries(cursors, size), maxEvents).map((m) =>
          JSON.parse(m)
        );
        const seen: string[] = [];
        for (const m of messages) {
          expect(m.type).toBe("batch");
          expect(m.events.length).toBeGreaterThan(0);
          expect(m.events.length).toBeLessThanOrEqual(maxEvents);
          expect(m.cursor).toBe(Number(m.events.at(-1).id));
          if (m.events.length > 1) {
            expect(JSON.stringify(m.events).length).toBeLessThanOrEqual(
              MAX_BATCH_CHARS + 10 * m.events.length,
            );
          }
          seen.push(...m.events.map((e: { id: string }) => e.id));
        }
        expect(seen).toEqual(cursors.map(String));
      },
    ));
  });

  it("encodes a whole tail batch once for every client, identically to a per-client encoding", () => {
    const batch = entries([3, 4, 9]);
    const first = encodeBatchOnce(batch, 2);
    expect(encodeBatchOnce(batch, 2)).toBe(first);
    expect(first).toEqual(encodeDeliveries(batch, 2));
    expect(encodeBatchOnce(entries([3, 4, 9]), 2)).not.toBe(first);
  });

  it("never lets the unsent bytes pass the queue limit, and never blocks an empty queue", () => {
    fc.assert(fc.property(
      fc.nat(10_000_000),
      fc.nat(2_000_000),
      fc.integer({ min: 1, max: 8_000_000 }),
      (buffered, message, max) => {
        const verdict = queueVerdict(buffered, message, max);
        if (buffered === 0) expect(verdict).toBe("send");
        else expect(verdict).toBe(buffered + message > max ? "overflow" : "send");
      },
    ));
  });
});
