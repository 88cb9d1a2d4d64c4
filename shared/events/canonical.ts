/**
 * Canonical JSON (RFC 8785, JCS): sorted keys, no insignificant whitespace,
 * ECMAScript number formatting. Both delivery paths checksum this form, so the
 * same event yields the same bytes in Deno, Node and the browser.
 * The serialisation is the `canonicalize` package (the RFC author's
 * implementation); this module fixes which fields of an event it covers.
 */
import canonicalizeImpl from "canonicalize";
import type { WireEvent } from "./schema.ts";

// The package's CommonJS default export is typed loosely; pin the contract.
const canonicalize = canonicalizeImpl as unknown as (value: unknown) => string | undefined;

/** RFC 8785 serialisation of any JSON value. Throws on values JSON cannot carry (NaN, Infinity). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError("value has no JSON representation");
  return text;
}

/** The canonical form of an event: exactly the wire fields, nothing added by either path. */
export function canonicalEvent(event: WireEvent): string {
  return canonicalJson({
    id: event.id,
    source: event.source,
    sequence_id: event.sequence_id,
    event_type: event.event_type,
    category: event.category,
    timestamp: event.timestamp,
    data: event.data,
  });
}
