import { createHash } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalEvent, canonicalJson } from "../../shared/events/canonical.ts";
import { checksumEvent, checksumText, crc32 } from "../../shared/events/checksum.ts";
import type { WireEvent } from "../../shared/events/schema.ts";

/** Rebuilds an object with its keys in a random order (same content). */
function shuffleKeys(value: unknown, rand: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, rand));
  if (value && typeof value === "object") {
    const entries = Object.entries(value).sort(() => rand() - 0.5);
    return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, rand)]));
  }
  return value;
}

const jsonValue = fc.jsonValue({ maxDepth: 4 });

/**
 * An independent oracle for RFC 8785 on JSON values: ECMAScript's own string
 * and number serialisation, keys sorted by UTF-16 code units, no whitespace.
 * (JSON.stringify cannot serve: it puts integer-like keys first.)
 */
function referenceJcs(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(referenceJcs).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.keys(value).sort().map((k) =>
      `${JSON.stringify(k)}:${referenceJcs((value as Record<string, unknown>)[k])}`
    );
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}

describe("canonical JSON (RFC 8785)", () => {
  it("matches the RFC's own examples", () => {
    expect(canonicalJson({ b: 1, a: [true, null, "x"], c: { z: 1e21, y: 0.1 } })).toBe(
      '{"a":[true,null,"x"],"b":1,"c":{"y":0.1,"z":1e+21}}',
    );
    expect(canonicalJson({ "\u20ac": 1, "\r": 2, "1": 3 })).toBe('{"\\r":2,"1":3,"€":1}');
    expect(canonicalJson(-0)).toBe("0");
  });

  it("does not depend on key order", () => {
    fc.assert(
      fc.property(jsonValue, fc.integer(), (value, seed) => {
        let s = seed;
        const rand = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
        expect(canonicalJson(shuffleKeys(value, rand))).toBe(canonicalJson(value));
      }),
    );
  });

  it("round-trips: parsing the canonical form and canonicalising again is stable", () => {
    fc.assert(fc.property(jsonValue, (value) => {
      const once = canonicalJson(value);
      expect(canonicalJson(JSON.parse(once))).toBe(once);
      expect(once).toBe(referenceJcs(value));
    }));
  });

  it("covers exactly the wire fields of an event", () => {
    const event = {
      id: "00000000-0000-4000-8000-000000000001",
      source: "s",
      sequence_id: 1,
      event_type: "t",
      category: "system",
      timestamp: "2026-01-01T00:00:00.000Z",
      data: { b: 2, a: 1 },
      checksum: "ignored",
      routes: ["websocket"],
    } as unknown as WireEvent;
    expect(canonicalEvent(event)).toBe(
      '{"category":"system","data":{"a":1,"b":2},"event_type":"t","id":"00000000-0000-4000-8000-000000000001",' +
        '"sequence_id":1,"source":"s","timestamp":"2026-01-01T00:00:00.000Z"}',
    );
  });
});

describe("checksums", () => {
  it("CRC-32 equals zlib's for any bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      expect(crc32(bytes)).toBe(zlibCrc32(bytes));
    }));
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("SHA-256 equals node:crypto's for any string", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "grapheme", maxLength: 200 }), async (text) => {
        expect(await checksumText(text, "sha256")).toBe(
          createHash("sha256").update(text, "utf8").digest("hex"),
        );
      }),
    );
  });

  it("formats as fixed-width lowercase hex", async () => {
    expect(await checksumText("", "crc32")).toBe("00000000");
    expect(await checksumText("a", "crc32")).toBe("e8b7be43");
    expect(await checksumText("abc", "sha256")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  it("an event's checksum ignores key order in data but sees every value change", async () => {
    const base: WireEvent = {
      id: "00000000-0000-4000-8000-000000000002",
      source: "svc",
      sequence_id: 7,
      event_type: "latency",
      category: "performance",
      timestamp: "2026-01-01T00:00:00.000Z",
      data: { p50: 12, p99: 80, host: "a" },
    };
    const reordered = { ...base, data: { host: "a", p99: 80, p50: 12 } };
    for (const alg of ["crc32", "sha256"] as const) {
      expect(await checksumEvent(reordered, alg)).toBe(await checksumEvent(base, alg));
      expect(await checksumEvent({ ...base, data: { ...base.data, p99: 81 } }, alg)).not.toBe(
        await checksumEvent(base, alg),
      );
      expect(await checksumEvent({ ...base, sequence_id: 8 }, alg)).not.toBe(
        await checksumEvent(base, alg),
      );
    }
  });
});
