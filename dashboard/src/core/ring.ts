/**
 * A fixed-capacity FIFO: pushing past capacity evicts the oldest item. The
 * dashboard's memory stays bounded however fast events arrive or however long
 * a tab stays open.
 */
export class Ring<T> {
  readonly #items: (T | undefined)[];
  #start = 0;
  #size = 0;
  /** Items evicted since creation (or the last `clear`). */
  evicted = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError("Ring capacity must be a positive integer");
    }
    this.#items = new Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Appends `item`; returns the evicted oldest item when the ring was full. */
  push(item: T): T | undefined {
    if (this.#size < this.capacity) {
      this.#items[(this.#start + this.#size) % this.capacity] = item;
      this.#size++;
      return undefined;
    }
    const out = this.#items[this.#start];
    this.#items[this.#start] = item;
    this.#start = (this.#start + 1) % this.capacity;
    this.evicted++;
    return out;
  }

  /** The i-th item, oldest first (0 = oldest). */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.#size) return undefined;
    return this.#items[(this.#start + i) % this.capacity];
  }

  /** The oldest item, or undefined when empty. */
  oldest(): T | undefined {
    return this.at(0);
  }

  /** Removes and returns every item, oldest first. */
  drain(): T[] {
    const out = this.toArray();
    this.clear();
    return out;
  }

  /** Every item, oldest first. */
  toArray(): T[] {
    const out: T[] = new Array(this.#size);
    for (let i = 0; i < this.#size; i++) out[i] = this.#items[(this.#start + i) % this.capacity]!;
    return out;
  }

  clear(): void {
    this.#items.fill(undefined);
    this.#start = 0;
    this.#size = 0;
    this.evicted = 0;
  }
}
