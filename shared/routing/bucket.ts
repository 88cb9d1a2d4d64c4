/**
 * Sticky percentage bucketing (DESIGN §2.3).
 *
 * The formula, published so any client can reproduce a decision:
 *
 *     bucket(key, category) = murmur3_x86_32(utf8(category + ":" + key), seed 0) mod 10000
 *     inSplit(key, category, percentage) = bucket(key, category) < round(percentage × 100)
 *
 * The category salts the hash so that the same source does not fall into the
 * same split in every category. A key's bucket never changes, so the same key
 * always takes the same route (sticky), and raising a percentage only adds
 * keys to the split (monotonic). Same scheme as Unleash's gradual rollout
 * (murmur3, normalised) with a finer 0.01 % grain.
 */

const encoder = new TextEncoder();

/** MurmurHash3 x86 32-bit of `bytes` with `seed`, as an unsigned integer. */
export function murmur3(bytes: Uint8Array, seed = 0): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const blocks = bytes.length >>> 2;
  for (let i = 0; i < blocks; i++) {
    const o = i << 2;
    let k = bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks << 2;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[tail + 2]! << 16;
    if (rest >= 2) k ^= bytes[tail + 1]! << 8;
    k ^= bytes[tail]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Number of buckets: percentages have a 0.01 % grain. */
export const BUCKETS = 10_000;

/** The bucket (0..9999) of a routing key within a category. */
export function bucketOf(key: string, category: string): number {
  return murmur3(encoder.encode(`${category}:${key}`)) % BUCKETS;
}

/** The split's threshold: a key is inside a `percentage` (0–100) split when its bucket is below it. */
export function splitThreshold(percentage: number): number {
  return Math.round(percentage * 100);
}

/** True when the key falls inside a `percentage` (0–100) split of the category. */
export function inSplit(key: string, category: string, percentage: number): boolean {
  return bucketOf(key, category) < splitThreshold(percentage);
}
