/**
 * Whether the two copies of one event agree, by the category's match
 * criterion (seed 000 `match_criteria`):
 *
 * - `exact` — the checksums over canonical JSON (RFC 8785) are equal, with
 *   the same algorithm. ingest computed one over the event it stored,
 *   ws-fanout the other over the payload it sent; equal checksums mean equal
 *   bytes on both paths (DESIGN §2.7).
 * - `semantic` — the `data` objects have the same keys at every level, equal
 *   strings, booleans and nulls, arrays of the same length, and numbers within
 *   a relative tolerance: |a − b| ≤ tolerance × max(|a|, |b|). Also the same
 *   category. For metrics whose numbers may be re-encoded on the way.
 * - `presence` — a counterpart exists; its content is not compared.
 *
 * Pure.
 */
import type { MatchCriterion } from "../config/settings.ts";
import type { Category, ChecksumAlg } from "../events/schema.ts";

/** What a comparison needs from either copy. `data` is needed only by `semantic`. */
export interface Copy {
  category: Category;
  checksum: string;
  checksumAlg: ChecksumAlg;
  data?: unknown;
}

export type Comparison =
  | { equal: true }
  | { equal: false; reason: string; path?: string };

/**
 * Compares the Realtime copy (`event`) with the WebSocket copy (`ledger`).
 * Throws a TypeError when `semantic` is asked for and either `data` is
 * missing (the caller must load it for semantic categories).
 */
export function compareCopies(
  event: Copy,
  ledger: Copy,
  criterion: MatchCriterion,
  tolerance: number,
): Comparison {
  if (criterion === "presence") return { equal: true };
  if (criterion === "exact") {
    if (event.checksumAlg !== ledger.checksumAlg) {
      return {
        equal: false,
        reason: `checksum algorithms differ (${event.checksumAlg} vs ${ledger.checksumAlg})`,
      };
    }
    return event.checksum === ledger.checksum
      ? { equal: true }
      : { equal: false, reason: "checksums over canonical JSON differ" };
  }
  if (event.data === undefined || ledger.data === undefined) {
    throw new TypeError("compareCopies: semantic comparison needs both copies' data");
  }
  if (event.category !== ledger.category) {
    return {
      equal: false,
      reason: `categories differ (${event.category} vs ${ledger.category})`,
      path: "category",
    };
  }
  const path = semanticDifference(event.data, ledger.data, tolerance);
  return path === null
    ? { equal: true }
    : { equal: false, reason: "data differs beyond the semantic rules", path };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** True when two numbers are equal within `tolerance` relative to the larger magnitude. */
export function numbersClose(a: number, b: number, tolerance: number): boolean {
  if (a === b) return true;
  return Math.abs(a - b) <= tolerance * Math.max(Math.abs(a), Math.abs(b));
}

/**
 * The path (`data.a.b[2]`) of the first place where `a` and `b` differ under
 * the semantic rules, or null when they are equivalent. Keys are visited in
 * sorted order, so the answer does not depend on key order.
 */
export function semanticDifference(
  a: unknown,
  b: unknown,
  tolerance: number,
  path = "data",
): string | null {
  if (typeof a === "number" && typeof b === "number") {
    return numbersClose(a, b, tolerance) ? null : path;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return path;
    for (let i = 0; i < a.length; i++) {
      const d = semanticDifference(a[i], b[i], tolerance, `${path}[${i}]`);
      if (d !== null) return d;
    }
    return null;
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const key of keys) {
      if (!Object.hasOwn(a, key) || !Object.hasOwn(b, key)) return `${path}.${key}`;
      const d = semanticDifference(a[key], b[key], tolerance, `${path}.${key}`);
      if (d !== null) return d;
    }
    return null;
  }
  return a === b ? null : path;
}
