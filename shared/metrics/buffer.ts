/**
 * A recorder's in-memory aggregation: counts per 10-second bucket, ready to
 * be added to the stats tables in one statement. Bounded: at most
 * `maxBuckets` buckets (when the database stays unreachable, the OLDEST
 * buckets are dropped first) and `maxKeysPerBucket` adapter/operation and
 * category keys per bucket; everything dropped is counted, so a flush can
 * report the loss instead of hiding it. A pure state machine: no clock, no I/O.
 */
import type { Adapter } from "../events/schema.ts";
import { observe } from "./histogram.ts";
import {
  type AdapterCounts,
  adapterKey,
  addAdapterCounts,
  addIngestCounts,
  emptyAdapterCounts,
  type IngestCounts,
  type StatsCategory,
} from "./stats.ts";

/** One bucket's adapter counts, keyed. */
export interface AdapterRow extends AdapterCounts {
  bucket_start: number;
  adapter: Adapter;
  operation: string;
}

/** One bucket's ingest counts, keyed. */
export interface IngestRow extends IngestCounts {
  bucket_start: number;
  category: StatsCategory;
}

/** What one flush adds to the database. */
export interface StatsBatch {
  adapters: AdapterRow[];
  ingest: IngestRow[];
  /**
   * Since the last flush: buckets evicted to stay within bounds, and the
   * records lost (calls, and received events, in evicted buckets or refused
   * for want of room).
   */
  dropped: { buckets: number; records: number };
}

export interface BufferLimits {
  maxBuckets: number;
  maxKeysPerBucket: number;
}

interface Bucket {
  adapters: Map<string, AdapterRow>;
  ingest: Map<StatsCategory, IngestRow>;
}

/** A call as observed: which adapter operation, how it went, how long, how many events. */
export interface AdapterCall {
  adapter: Adapter;
  operation: string;
  ok: boolean;
  latencyMs: number;
  /** Events the call carried (default 1). */
  events?: number;
  /** Whether the call was slower than the adapter's threshold. */
  slow: boolean;
}

/** Mutable aggregation; see the module comment for its bounds. */
export class StatsBuffer {
  readonly #limits: BufferLimits;
  readonly #buckets = new Map<number, Bucket>();
  #droppedBuckets = 0;
  #droppedRecords = 0;

  constructor(limits: BufferLimits) {
    if (!(limits.maxBuckets >= 1 && limits.maxKeysPerBucket >= 1)) {
      throw new RangeError("StatsBuffer: maxBuckets and maxKeysPerBucket must be >= 1");
    }
    this.#limits = limits;
  }

  /** Buckets held. */
  get size(): number {
    return this.#buckets.size;
  }

  /** True when nothing is held and nothing was dropped since the last take(). */
  get isEmpty(): boolean {
    return this.#buckets.size === 0 && this.#droppedBuckets === 0 && this.#droppedRecords === 0;
  }

  /** Adds one call to the bucket starting at `bucketStart`. */
  addCall(bucketStart: number, call: AdapterCall): void {
    const events = Math.max(0, Math.round(call.events ?? 1));
    const latency = Number.isFinite(call.latencyMs) ? Math.max(0, call.latencyMs) : 0;
    const c = emptyAdapterCounts();
    c.calls = 1;
    c.failures = call.ok ? 0 : 1;
    c.slow_calls = call.slow ? 1 : 0;
    c.events = call.ok ? events : 0;
    c.failed_events = call.ok ? 0 : events;
    c.latency_sum_ms = latency;
    c.latency_max_ms = latency;
    observe(c.histogram, latency);
    this.#addAdapter({
      bucket_start: bucketStart,
      adapter: call.adapter,
      operation: call.operation,
      ...c,
    });
  }

  /** Adds ingest counts for one category to the bucket starting at `bucketStart`. */
  addIngest(bucketStart: number, category: StatsCategory, counts: IngestCounts): void {
    this.#addIngest({ bucket_start: bucketStart, category, ...counts });
  }

  /** Removes and returns everything held, with the drop counts since the last take(). */
  take(): StatsBatch {
    const batch: StatsBatch = { adapters: [], ingest: [], dropped: this.#takeDropped() };
    for (const bucket of this.#buckets.values()) {
      batch.adapters.push(...bucket.adapters.values());
      batch.ingest.push(...bucket.ingest.values());
    }
    this.#buckets.clear();
    return batch;
  }

  /**
   * Puts back a batch whose flush failed, merging it with what arrived
   * meanwhile; the same bounds apply (oldest buckets go first).
   */
  restore(batch: StatsBatch): void {
    this.#droppedBuckets += batch.dropped.buckets;
    this.#droppedRecords += batch.dropped.records;
    for (const row of batch.adapters) this.#addAdapter(row);
    for (const row of batch.ingest) this.#addIngest(row);
  }

  #takeDropped(): StatsBatch["dropped"] {
    const dropped = { buckets: this.#droppedBuckets, records: this.#droppedRecords };
    this.#droppedBuckets = 0;
    this.#droppedRecords = 0;
    return dropped;
  }

  #addAdapter(row: AdapterRow): void {
    const bucket = this.#bucket(row.bucket_start);
    if (!bucket) return this.#dropRecords(row.calls);
    const key = adapterKey(row.adapter, row.operation);
    const have = bucket.adapters.get(key);
    if (have) {
      bucket.adapters.set(key, { ...have, ...addAdapterCounts(have, row) });
    } else if (this.#keys(bucket) < this.#limits.maxKeysPerBucket) {
      bucket.adapters.set(key, { ...row, histogram: [...row.histogram] });
    } else {
      this.#dropRecords(row.calls);
    }
    this.#enforceBucketLimit();
  }

  #addIngest(row: IngestRow): void {
    const bucket = this.#bucket(row.bucket_start);
    if (!bucket) return this.#dropRecords(row.received);
    const have = bucket.ingest.get(row.category);
    if (have) {
      bucket.ingest.set(row.category, { ...have, ...addIngestCounts(have, row) });
    } else if (this.#keys(bucket) < this.#limits.maxKeysPerBucket) {
      bucket.ingest.set(row.category, { ...row });
    } else {
      this.#dropRecords(row.received);
    }
    this.#enforceBucketLimit();
  }

  /** The bucket to add to, creating it; undefined when it would be older than everything kept in a full buffer. */
  #bucket(start: number): Bucket | undefined {
    let bucket = this.#buckets.get(start);
    if (bucket) return bucket;
    // Late data for a bucket already evicted: its records count as dropped.
    if (this.#buckets.size >= this.#limits.maxBuckets && start < this.#oldest()) return undefined;
    bucket = { adapters: new Map(), ingest: new Map() };
    this.#buckets.set(start, bucket);
    return bucket;
  }

  #keys(bucket: Bucket): number {
    return bucket.adapters.size + bucket.ingest.size;
  }

  #oldest(): number {
    let oldest = Infinity;
    for (const start of this.#buckets.keys()) oldest = Math.min(oldest, start);
    return oldest;
  }

  #enforceBucketLimit(): void {
    while (this.#buckets.size > this.#limits.maxBuckets) {
      const start = this.#oldest();
      const bucket = this.#buckets.get(start)!;
      this.#buckets.delete(start);
      this.#droppedBuckets++;
      for (const row of bucket.adapters.values()) this.#droppedRecords += row.calls;
      for (const row of bucket.ingest.values()) this.#droppedRecords += row.received;
    }
  }

  #dropRecords(n: number): void {
    this.#droppedRecords += n;
  }
}
