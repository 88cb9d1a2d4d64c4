import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CATEGORIES, type Category } from "../../shared/events/schema.ts";
import {
  createCursorStream,
  type LedgerEntry,
  type StreamStep,
} from "../../shared/fanout/cursor-stream.ts";
import { matchesFilter, type StreamFilter } from "../../shared/fanout/protocol.ts";

const SOURCES = ["a", "b", "c"];

const entry = (cursor: number, source = "a", category: Category = "system"): LedgerEntry => ({
  cursor,
  source,
  category,
  payload: `{"n":${cursor}}`,
});

const ALL: StreamFilter = { categories: null, sources: null };

type Action = "commit" | "tail" | "replayStart" | "replayFinish";

interface Scenario {
  /** Append groups (each commits atomically); cursor increments >= 1 (gaps allowed). */
  groups: { step: number; source: string; category: Category }[][];
  /** How many groups were committed and tailed before the client connected. */
  before: number;
  /** Resume point as a fraction of the committed range, or null to join live. */
  sinceAt: number | null;
  schedule: Action[];
  tailPage: number;
  replayPage: number;
  /** Cursor positions one replay read scans at most. */
  scanWindow: number;
  maxBuffered: number;
  filter: StreamFilter;
}

/**
 * Plays a connection against a model of the ledger, the instance's tail and
 * the connection's replay reads, in the given interleaving, then lets
 * everything settle. Returns what was delivered and what should have been.
 */
function simulate(s: Scenario): { delivered: number[]; expected: number[] } {
  const groups: LedgerEntry[][] = [];
  let c = 0;
  for (const g of s.groups) {
    groups.push(g.map((e) => entry(c += e.step, e.source, e.category)));
  }
  const committed: LedgerEntry[] = [];
  let next = 0;
  const commit = () => {
    if (next < groups.length) committed.push(...groups[next++]!);
  };
  while (next < Math.min(s.before, groups.length)) commit();
  const last = () => committed.at(-1)?.cursor ?? 0;
  let tailHead = last();

  const since = s.sinceAt === null ? null : Math.floor(s.sinceAt * last());
  const start = since ?? tailHead;
  const stream = createCursorStream({
    start,
    replay: since !== null,
    filter: s.filter,
    maxBuffered: s.maxBuffered,
  });
  const delivered: number[] = [];
  let needReplay = since !== null;
  let inflight: { entries: LedgerEntry[]; through: number; atEnd: boolean } | null = null;
  const apply = (step: StreamStep) => {
    delivered.push(...step.deliver.map((e) => e.cursor));
    if (step.replay) needReplay = true;
  };
  const run = (action: Action): boolean => {
    switch (action) {
      case "commit": {
        const before = next;
        commit();
        return next !== before;
      }
      case "tail": {
        const entries = committed.filter((e) => e.cursor > tailHead).slice(0, s.tailPage);
        if (entries.length === 0) return false;
        const batch = { prev: tailHead, entries };
        tailHead = entries.at(-1)!.cursor;
        apply(stream.live(batch));
        return true;
      }
      case "replayStart": {
        if (!needReplay || inflight) return false;
        needReplay = false;
        // The server's read: at most replayPage matches within a scan window.
        const upto = Math.min(last(), stream.position + s.scanWindow);
        const read = committed
          .filter((e) =>
            e.cursor > stream.position && e.cursor <= upto &&
            matchesFilter(s.filter, e.source, e.category)
          )
          .slice(0, s.replayPage);
        const full = read.length >= s.replayPage;
        inflight = {
          entries: read,
          through: full ? read.at(-1)!.cursor : Math.max(upto, stream.position),
          atEnd: !full && upto >= last(),
        };
        return true;
      }
      case "replayFinish": {
        if (!inflight) return false;
        const page = inflight;
        inflight = null;
        const step = stream.replayed(page);
        delivered.push(...step.deliver.map((e) => e.cursor));
        needReplay = step.replay;
        return true;
      }
    }
  };
  for (const action of s.schedule) run(action);
  // Settle: everything commits, the tail catches up, replays finish.
  for (let guard = 0; guard < 100_000; guard++) {
    const progressed = run("commit") || run("tail") || run("replayStart") ||
      run("replayFinish");
    if (!progressed) break;
  }
  expect(stream.mode).toBe("live");
  const expected = committed
    .filter((e) => e.cursor > start && matchesFilter(s.filter, e.source, e.category))
    .map((e) => e.cursor);
  return { delivered, expected };
}

const scenario = fc.record({
  groups: fc.array(
    fc.array(
      fc.record({
        step: fc.integer({ min: 1, max: 3 }),
        source: fc.constantFrom(...SOURCES),
        category: fc.constantFrom(...CATEGORIES),
      }),
      { minLength: 1, maxLength: 5 },
    ),
    { maxLength: 25 },
  ),
  before: fc.integer({ min: 0, max: 10 }),
  sinceAt: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
  schedule: fc.array(fc.constantFrom<Action>("commit", "tail", "replayStart", "replayFinish"), {
    maxLength: 80,
  }),
  tailPage: fc.integer({ min: 1, max: 6 }),
  replayPage: fc.integer({ min: 1, max: 6 }),
  scanWindow: fc.integer({ min: 1, max: 40 }),
  maxBuffered: fc.integer({ min: 0, max: 8 }),
  filter: fc.record({
    categories: fc.option(fc.subarray([...CATEGORIES], { minLength: 1 }).map((a) => new Set(a)), {
      nil: null,
    }),
    sources: fc.option(fc.subarray(SOURCES, { minLength: 1 }).map((a) => new Set(a)), {
      nil: null,
    }),
  }),
});

describe("cursor stream (replay/live seam)", () => {
  it("delivers every matching entry after the start exactly once, in order, whatever the interleaving", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { delivered, expected } = simulate(s);
        expect(delivered).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it("drops live entries at or below the replayed position (no duplicate at the seam)", () => {
    const stream = createCursorStream({ start: 0, replay: true, filter: ALL, maxBuffered: 10 });
    // The tail dispatches 3..5 while the replay read (which sees up to 4) is in flight.
    expect(stream.live({ prev: 2, entries: [entry(3), entry(4), entry(5)] }).deliver).toEqual([]);
    const step = stream.replayed({
      entries: [entry(1), entry(2), entry(3), entry(4)],
      through: 4,
      atEnd: true,
    });
    expect(step.deliver.map((e) => e.cursor)).toEqual([1, 2, 3, 4, 5]);
    expect(step.replay).toBe(false);
    expect(stream.mode).toBe("live");
    expect(stream.live({ prev: 5, entries: [entry(5), entry(6)] }).deliver.map((e) => e.cursor))
      .toEqual([6]);
  });

  it("keeps replaying when the buffer overflowed instead of jumping the gap", () => {
    const stream = createCursorStream({ start: 0, replay: true, filter: ALL, maxBuffered: 2 });
    stream.live({ prev: 0, entries: [entry(1), entry(2)] });
    stream.live({ prev: 2, entries: [entry(3), entry(4)] }); // the first batch is dropped
    expect(stream.buffered).toBe(2);
    const first = stream.replayed({ entries: [entry(1)], through: 1, atEnd: false });
    expect(first.deliver.map((e) => e.cursor)).toEqual([1]);
    expect(first.replay).toBe(true); // 2 is neither replayed nor buffered
    const second = stream.replayed({ entries: [entry(2)], through: 2, atEnd: false });
    expect(second.deliver.map((e) => e.cursor)).toEqual([2, 3, 4]);
    expect(second.replay).toBe(false);
  });

  it("falls back to replaying when a live batch does not join its position", () => {
    const stream = createCursorStream({ start: 5, replay: false, filter: ALL, maxBuffered: 10 });
    const step = stream.live({ prev: 7, entries: [entry(8)] });
    expect(step).toEqual({ deliver: [], replay: true });
    expect(stream.mode).toBe("replaying");
  });

  it("advances past filtered-out entries without sending them", () => {
    const filter: StreamFilter = { categories: new Set(["critical"]), sources: null };
    const stream = createCursorStream({ start: 0, replay: false, filter, maxBuffered: 10 });
    const step = stream.live({
      prev: 0,
      entries: [entry(1, "a", "debug"), entry(2, "a", "critical"), entry(3, "b", "system")],
    });
    expect(step.deliver.map((e) => e.cursor)).toEqual([2]);
    expect(stream.position).toBe(3);
  });
});
