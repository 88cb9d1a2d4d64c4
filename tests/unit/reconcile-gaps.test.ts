/**
 * Producer-side loss: holes in a source's sequence ids seen on neither path.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  candidateGaps,
  gapKey,
  holesBetween,
  type SequencePoint,
} from "../../shared/reconcile/gaps.ts";

const pt = (
  source: string,
  sequence_id: number,
  owned = true,
  arrivedAt = 1000,
): SequencePoint => ({
  source,
  sequence_id,
  owned,
  arrivedAt,
});

describe("candidateGaps", () => {
  const cases: [string, SequencePoint[], [string, number][], [string, number, number][]][] = [
    ["no hole", [pt("a", 1), pt("a", 2), pt("a", 3)], [], []],
    ["one hole", [pt("a", 1), pt("a", 2), pt("a", 4)], [], [["a", 2, 4]]],
    ["a hole below the first id read, from the stored predecessor", [pt("a", 7)], [["a", 4]], [[
      "a",
      4,
      7,
    ]]],
    ["a new source starting anywhere is not a gap", [pt("a", 7), pt("a", 8)], [], []],
    ["holes per source", [pt("a", 1), pt("a", 3), pt("b", 10), pt("b", 13)], [], [
      ["a", 1, 3],
      ["b", 10, 13],
    ]],
    [
      "only holes below an id this run read (context ids open none)",
      [pt("a", 1, false), pt("a", 3, false), pt("a", 5, true)],
      [],
      [["a", 3, 5]],
    ],
    ["the same id on both paths counts once", [pt("a", 1), pt("a", 1), pt("a", 3)], [], [[
      "a",
      1,
      3,
    ]]],
  ];
  it.each(cases)("%s", (_, points, preds, expected) => {
    const got = candidateGaps(points, new Map(preds)).map((g) => [g.source, g.after, g.before]);
    expect(got).toEqual(expected);
  });

  it("dates a hole by the earliest arrival of the id above it", () => {
    const [g] = candidateGaps(
      [pt("a", 1), pt("a", 3, true, 5000), pt("a", 3, false, 4000)],
      new Map(),
    );
    expect(g).toMatchObject({ after: 1, before: 3, since: 4000 });
  });

  it("does not depend on the order of the points", () => {
    fc.assert(fc.property(
      fc.array(
        fc.record({
          source: fc.constantFrom("a", "b"),
          sequence_id: fc.integer({ min: 0, max: 30 }),
          owned: fc.boolean(),
          arrivedAt: fc.integer({ min: 0, max: 100 }),
        }),
        { maxLength: 30 },
      ),
      (points) => {
        const a = candidateGaps(points, new Map());
        const b = candidateGaps([...points].reverse(), new Map());
        expect(b).toEqual(a);
      },
    ));
  });
});

describe("holesBetween", () => {
  const cases: [number, number, number[], [number, number][]][] = [
    [1, 2, [], []],
    [1, 3, [], [[2, 2]]],
    [1, 10, [4, 5, 8], [[2, 3], [6, 7], [9, 9]]],
    [1, 10, [2, 3, 4, 5, 6, 7, 8, 9], []],
    [0, 1_000_000, [500_000], [[1, 499_999], [500_001, 999_999]]],
    [5, 9, [1, 5, 9, 12, 7, 7], [[6, 6], [8, 8]]],
  ];
  it.each(cases)("between %i and %i with %j present", (after, before, present, expected) => {
    expect(holesBetween(after, before, present).map((h) => [h.from, h.to])).toEqual(expected);
  });

  it("holes and present ids partition the open range exactly", () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 50 }),
      fc.integer({ min: 0, max: 50 }),
      fc.array(fc.integer({ min: -5, max: 110 }), { maxLength: 40 }),
      (after, span, present) => {
        const before = after + span;
        const holes = holesBetween(after, before, present);
        const missing = holes.flatMap((h) =>
          Array.from({ length: h.to - h.from + 1 }, (_, i) => h.from + i)
        );
        const inside = [...new Set(present)].filter((n) => n > after && n < before);
        expect([...missing, ...inside].sort((a, b) => a - b)).toEqual(
          Array.from({ length: Math.max(0, before - after - 1) }, (_, i) => after + 1 + i),
        );
        for (let i = 1; i < holes.length; i++) {
          expect(holes[i]!.from).toBeGreaterThan(holes[i - 1]!.to + 1);
        }
      },
    ));
  });

  it("keys a hole by source and range", () => {
    expect(gapKey("svc-a", { from: 3, to: 5 })).toBe("svc-a#3-5");
  });
});
