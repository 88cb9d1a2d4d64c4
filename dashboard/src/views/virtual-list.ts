/**
 * A virtualised, keyboard-operable list of fixed-height rows: only the rows
 * in view (plus a few) exist in the DOM, recycled from a small pool, and a
 * row already showing an item is moved, not redrawn. Thousands of items and
 * hundreds of new ones per second cost the same per frame.
 *
 * New items on top do not move what the reader is looking at: when the list
 * is scrolled away from the top, the scroll position follows the rows.
 *
 * Keyboard (listbox pattern with aria-activedescendant): ↑/↓ move, PgUp/PgDn
 * jump a page, Home/End, Enter or Space opens the active item.
 */
import { h } from "./dom.ts";

export interface VirtualListOptions<T> {
  rowHeight: number;
  label: string;
  /** Draws `item` into `row` (called only when the row starts showing a different item). */
  render(row: HTMLElement, item: T): void;
  onActivate(item: T): void;
  /** A value that changes when an item's drawing must change (items are redrawn when it does). */
  stamp?(item: T): number;
  overscan?: number;
}

interface Slot<T> {
  el: HTMLElement;
  item: T | undefined;
  stamp?: number;
  index?: number;
  size?: number;
}

let lists = 0;

export class VirtualList<T extends object> {
  readonly element: HTMLElement;
  readonly #spacer: HTMLElement;
  readonly #slots: Slot<T>[] = [];
  readonly #idPrefix = `vl${++lists}-`;
  #items: readonly T[] = [];
  #active: T | undefined;
  #activeIndex = -1;
  #frame = 0;

  constructor(private readonly options: VirtualListOptions<T>) {
    this.#spacer = h("div", { class: "vl-spacer" });
    this.element = h("div", {
      class: "vl",
      role: "listbox",
      tabindex: "0",
      "aria-label": options.label,
    }, this.#spacer);
    this.element.addEventListener("scroll", () => this.#schedule(), { passive: true });
    this.element.addEventListener("keydown", (e) => this.#key(e));
    this.element.addEventListener("click", (e) => {
      const el = (e.target as HTMLElement).closest<HTMLElement>("[data-slot]");
      const item = el ? this.#slots[Number(el.dataset.slot)]?.item : undefined;
      if (item) {
        this.#setActive(item, this.#items.indexOf(item));
        this.options.onActivate(item);
      }
    });
    this.element.addEventListener("focus", () => {
      if (!this.#active && this.#items.length) this.#setActive(this.#items[0]!, 0);
    });
    new ResizeObserver(() => this.#schedule()).observe(this.element);
  }

  get items(): readonly T[] {
    return this.#items;
  }

  /** Replaces the items; `addedOnTop` new ones were put before the previous first. */
  setItems(items: readonly T[], addedOnTop = 0): void {
    const { rowHeight } = this.options;
    this.#items = items;
    this.#spacer.style.height = `${items.length * rowHeight}px`;
    if (addedOnTop > 0 && this.element.scrollTop > 0) {
      this.element.scrollTop += addedOnTop * rowHeight;
    }
    if (this.#active) {
      const guess = this.#activeIndex + addedOnTop;
      this.#activeIndex = items[guess] === this.#active ? guess : items.indexOf(this.#active);
      if (this.#activeIndex < 0) this.#active = undefined;
    }
    this.#draw();
  }

  /** Redraws every visible row (e.g. when an item changed in place). */
  refresh(): void {
    for (const slot of this.#slots) slot.item = undefined;
    this.#draw();
  }

  #schedule(): void {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#draw();
    });
  }

  #draw(): void {
    const { rowHeight } = this.options;
    const overscan = this.options.overscan ?? 6;
    const height = this.element.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.element.scrollTop / rowHeight) - overscan);
    const last = Math.min(
      this.#items.length,
      Math.ceil((this.element.scrollTop + height) / rowHeight) + overscan,
    );
    const needed = last - first;
    while (this.#slots.length < needed) {
      const el = h("div", {
        class: "vl-row",
        role: "option",
        "aria-selected": "false",
        id: `${this.#idPrefix}${this.#slots.length}`,
        "data-slot": String(this.#slots.length),
      });
      this.element.appendChild(el);
      this.#slots.push({ el, item: undefined });
    }
    // Rows already showing a visible item keep it; the others are reused.
    const visible = new Map<T, number>();
    for (let i = first; i < last; i++) visible.set(this.#items[i]!, i);
    const free: Slot<T>[] = [];
    for (const slot of this.#slots) {
      const index = slot.item === undefined ? undefined : visible.get(slot.item);
      if (index === undefined) free.push(slot);
      else {
        visible.delete(slot.item!);
        const stamp = this.options.stamp?.(slot.item!);
        if (stamp !== slot.stamp) {
          slot.stamp = stamp;
          this.options.render(slot.el, slot.item!);
        }
        this.#place(slot, index);
      }
    }
    for (const [item, index] of visible) {
      const slot = free.pop()!;
      slot.item = item;
      slot.stamp = this.options.stamp?.(item);
      this.options.render(slot.el, item);
      this.#place(slot, index);
    }
    for (const slot of free) {
      slot.item = undefined;
      slot.index = undefined;
      slot.el.hidden = true;
    }
    this.#markActive();
  }

  #place(slot: Slot<T>, index: number): void {
    if (slot.el.hidden) slot.el.hidden = false;
    if (slot.index !== index) {
      slot.index = index;
      slot.el.style.transform = `translateY(${index * this.options.rowHeight}px)`;
      slot.el.setAttribute("aria-posinset", String(index + 1));
    }
    if (slot.size !== this.#items.length) {
      slot.size = this.#items.length;
      slot.el.setAttribute("aria-setsize", String(this.#items.length));
    }
  }

  #markActive(): void {
    let activeId = "";
    for (const slot of this.#slots) {
      const on = slot.item !== undefined && slot.item === this.#active;
      if (on) activeId = slot.el.id;
      if ((slot.el.getAttribute("aria-selected") === "true") !== on) {
        slot.el.setAttribute("aria-selected", String(on));
      }
    }
    if (activeId) this.element.setAttribute("aria-activedescendant", activeId);
    else this.element.removeAttribute("aria-activedescendant");
  }

  #setActive(item: T, index: number): void {
    this.#active = item;
    this.#activeIndex = index;
    const { rowHeight } = this.options;
    const top = index * rowHeight;
    if (top < this.element.scrollTop) this.element.scrollTop = top;
    const bottom = top + rowHeight - this.element.clientHeight;
    if (bottom > this.element.scrollTop) this.element.scrollTop = bottom;
    this.#draw();
  }

  #key(e: KeyboardEvent): void {
    const n = this.#items.length;
    if (n === 0) return;
    const page = Math.max(1, Math.floor(this.element.clientHeight / this.options.rowHeight) - 1);
    const at = this.#activeIndex < 0 ? -1 : this.#activeIndex;
    let next: number | undefined;
    switch (e.key) {
      case "ArrowDown":
        next = Math.min(n - 1, at + 1);
        break;
      case "ArrowUp":
        next = Math.max(0, at - 1);
        break;
      case "PageDown":
        next = Math.min(n - 1, at + page);
        break;
      case "PageUp":
        next = Math.max(0, at - page);
        break;
      case "Home":
        next = 0;
        break;
      case "End":
        next = n - 1;
        break;
      case "Enter":
      case " ":
        if (this.#active) {
          e.preventDefault();
          this.options.onActivate(this.#active);
        }
        return;
      default:
        return;
    }
    e.preventDefault();
    this.#setActive(this.#items[next]!, next);
  }
}
