/**
 * Event identity. An event without an `id` gets one derived
 * deterministically from `source` + `sequence_id` (a UUIDv5, RFC 9562), so a
 * producer's retry of the same event maps to the same id and is recognised as
 * a duplicate.
 */

/** The namespace of derived event ids (a fixed random UUID; never change it). */
export const EVENT_ID_NAMESPACE = "3f0c8a52-6c1e-4b8e-9a51-7c2d5d9e0b41";

function uuidBytes(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, "");
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

function formatUuid(bytes: Uint8Array): string {
  const h = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
    h.slice(20, 32)
  }`;
}

/** UUIDv5 of `name` in `namespace`. */
export async function uuidV5(namespace: string, name: string): Promise<string> {
  const ns = uuidBytes(namespace);
  const nameBytes = new TextEncoder().encode(name);
  const input = new Uint8Array(ns.length + nameBytes.length);
  input.set(ns);
  input.set(nameBytes, ns.length);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-1", input)).slice(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  return formatUuid(hash);
}

/** The id of an event that came without one: UUIDv5 of `source` NUL `sequence_id`. */
export function deriveEventId(source: string, sequenceId: number): Promise<string> {
  return uuidV5(EVENT_ID_NAMESPACE, `${source}\u0000${sequenceId}`);
}
