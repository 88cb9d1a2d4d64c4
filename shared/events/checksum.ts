/**
 * Event checksums over canonical JSON (DESIGN §2.7): CRC-32 (IEEE 802.3, the
 * zlib polynomial) for high-volume categories, SHA-256 where integrity matters
 * most. Hex, lowercase: 8 characters for CRC-32, 64 for SHA-256.
 */
import { canonicalEvent } from "./canonical.ts";
import type { Category, ChecksumAlg, WireEvent } from "./schema.ts";

/** Default algorithm per category (seed 000); the flags may override it. */
export const DEFAULT_CHECKSUM_ALG: Record<Category, ChecksumAlg> = {
  critical: "sha256",
  user_activity: "sha256",
  performance: "crc32",
  system: "crc32",
  debug: "crc32",
};

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 of `bytes` as an unsigned integer (same value as zlib's crc32). */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Checksum of a UTF-8 string with the given algorithm, as lowercase hex. */
export async function checksumText(text: string, alg: ChecksumAlg): Promise<string> {
  const bytes = encoder.encode(text);
  if (alg === "crc32") return crc32(bytes).toString(16).padStart(8, "0");
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** Checksum of an event's canonical JSON. */
export function checksumEvent(event: WireEvent, alg: ChecksumAlg): Promise<string> {
  return checksumText(canonicalEvent(event), alg);
}
