/**
 * Per-category match criteria: exact (checksums over canonical JSON),
 * semantic (same keys, numbers within a relative tolerance), presence.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../shared/events/canonical.ts";
import { checksumEvent } from "../../shared/events/checksum.ts";
import type { WireEvent } from "../../shared/events/schema.ts";
import {
  compareCopies,
  type Copy,
  numbersClose,
  semanticDifference,
} from "../../shared/reconcile/compare.ts";

const copy = (over: Partial<Copy> = {}): Copy => ({
  category: "performance",
  checksum: "abc",
  checksumAlg: "crc32",
  data: {},
  ...over,
});

describe("semanticDifference", () => {
  const cases: [string, unknown, unknown, number, string | null][] = [
    ["equal objects", { a: 1, b: "x" }, { b: "x", a: 1 }, 0, null],
    ["numbers within tolerance", { ms: 100 }, { ms: 100.09 }, 0.001, null],
    ["numbers just beyond tolerance", { ms: 100 }, { ms: 100.2 }, 0.001, "data.ms"],
    ["zero against zero", { n: 0 }, { n: -0 }, 0, null],
    ["zero against a tiny number (relative)", { n: 0 }, { n: 1e-12 }, 0.001, "data.n"],
    ["exact tolerance 0", { n: 1 }, { n: 1 + 1e-15 }, 0, "data.n"],
    ["a missing key", { a: 1, b: 2 }, { a: 1 }, 0.5, "data.b"],
    ["an extra key", { a: 1 }, { a: 1, c: null }, 0.5, "data.c"],
    ["a number against its string", { n: 1 }, { n: "1" }, 0.5, "data.n"],
    ["null against missing", { n: null }, {}, 0, "data.n"],
    ["arrays of different length", { xs: [1, 2] }, { xs: [1, 2, 3] }, 0, "data.xs"],
    ["nested arrays within tolerance", { xs: [[1000]] }, { xs: [[1000.5]] }, 0.001, null],
    [
      "nested difference",
      { a: { b: [1, { c: "x" }] } },
      { a: { b: [1, { c: "y" }] } },
      0,
      "data.a.b[1].c",
    ],
    ["booleans", { ok: true }, { ok: false }, 1, "data.ok"],
    ["object against array", { a: {} }, { a: [] }, 0, "data.a"],
    ["a __proto__ key", JSON.parse('{"__proto__": 1}'), {}, 0, "data.__proto__"],
  ];
  it.each(cases)("%s", (_, a, b, tol, expected) => {
    expect(semanticDifference(a, b, tol)).toBe(expected);
    // Symmetric: which copy is which does not matter.
    expect(semanticDifference(b, a, tol)).toBe(expected);
  });

  it("finds every JSON value equivalent to itself and to its key-reordered self", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      const reordered = JSON.parse(canonicalJson(v));
      expect(semanticDifference(v, reordered, 0)).toBeNull();
    }));
  });

  it("numbersClose is symmetric and scale-free", () => {
    // Normal doubles only: scaling a subnormal by 1000 is not exact, so
    // "scale-free" cannot hold for them (and no metric lives down there).
    const normal = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 })
      .filter((x) => x === 0 || Math.abs(x) >= 1e-300);
    fc.assert(fc.property(
      normal,
      normal,
      fc.constantFrom(0, 1e-6, 0.001, 0.05),
      (a, b, tol) => {
        expect(numbersClose(a, b, tol)).toBe(numbersClose(b, a, tol));
        expect(numbersClose(a * 1000, b * 1000, tol)).toBe(numbersClose(a, b, tol));
      },
    ));
  });
});

describe("compareCopies", () => {
  it("exact: equal checksums and algorithm match, anything else does not", () => {
    expect(compareCopies(copy(), copy(), "exact", 0)).toEqual({ equal: true });
    expect(compareCopies(copy(), copy({ checksum: "abd" }), "exact", 0).equal).toBe(false);
    expect(compareCopies(copy(), copy({ checksumAlg: "sha256" }), "exact", 0)).toMatchObject({
      equal: false,
      reason: expect.stringContaining("algorithms"),
    });
  });

  it("exact: two paths checksumming the same event agree (whatever its key order)", async () => {
    const event: WireEvent = {
      id: "4b0e2f06-3ac5-4f2e-9c1a-0d0a7c7e5a11",
      source: "api",
      sequence_id: 7,
      event_type: "service.error",
      category: "critical",
      timestamp: "2026-11-23T12:00:00.000Z",
      data: { z: 1, a: { y: [1, 2], b: "é" } },
    };
    const sent = JSON.parse(JSON.stringify({ ...event, data: { a: { b: "é", y: [1, 2] }, z: 1 } }));
    const a = { category: event.category, checksumAlg: "sha256" as const };
    const realtime = { ...a, checksum: await checksumEvent(event, "sha256") };
    const websocket = { ...a, checksum: await checksumEvent(sent, "sha256") };
    expect(compareCopies(realtime, websocket, "exact", 0)).toEqual({ equal: true });
    const corrupted = {
      ...a,
      checksum: await checksumEvent({ ...sent, data: { z: 2 } }, "sha256"),
    };
    expect(compareCopies(realtime, corrupted, "exact", 0).equal).toBe(false);
  });

  it("semantic: compares data and category, ignores checksums", () => {
    const a = copy({ data: { ms: 10 } });
    expect(compareCopies(a, copy({ checksum: "zzz", data: { ms: 10.001 } }), "semantic", 0.001))
      .toEqual({ equal: true });
    expect(compareCopies(a, copy({ data: { ms: 11 } }), "semantic", 0.001)).toMatchObject({
      equal: false,
      path: "data.ms",
    });
    expect(compareCopies(a, copy({ category: "debug", data: { ms: 10 } }), "semantic", 0.001))
      .toMatchObject({ equal: false, path: "category" });
  });

  it("semantic: refuses to guess when data was not loaded", () => {
    expect(() => compareCopies(copy({ data: undefined }), copy(), "semantic", 0)).toThrow(
      TypeError,
    );
  });

  it("presence: any two copies match", () => {
    fc.assert(fc.property(fc.string(), fc.string(), (x, y) => {
      expect(
        compareCopies(copy({ checksum: x }), copy({ checksum: y, data: undefined }), "presence", 0),
      ).toEqual({ equal: true });
    }));
  });
});
