/**
 * Pending edits to the flags, as a diff over the snapshot the operator
 * loaded, and the one batch request that applies them all or nothing. Pure.
 *
 * The flags API names a bad field by its path in the batch
 * (`changes.<i>.changes.<field>` or `changes.<i>.value…`); `fieldOfIssue`
 * maps it back to the input the operator typed into.
 */
import type { Category } from "./events.ts";
import { CATEGORY_LIST } from "./events.ts";

export interface CategoryFlagValues {
  enabled: boolean;
  percentage: number;
  adapters: string[];
  delivery_mode: string;
  checksum_alg: string;
}

export interface FlagEdits {
  categories: Partial<Record<Category, Partial<CategoryFlagValues>>>;
  settings: Record<string, unknown>;
}

export interface Snapshot {
  version: number;
  categories: Record<Category, CategoryFlagValues>;
  settings: Record<string, unknown>;
}

export type BatchChange =
  | { type: "category"; category: Category; changes: Partial<CategoryFlagValues> }
  | { type: "setting"; key: string; value: unknown };

export function emptyEdits(): FlagEdits {
  return { categories: {}, settings: {} };
}

/** JSON equality with object keys in any order and adapters compared as sets. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x) => b.some((y) => sameValue(x, y)));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length &&
      ka.every((k) =>
        sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
      );
  }
  return a === b;
}

/** Sets (or, when equal to the snapshot, clears) one category field's edit. */
export function editCategory<K extends keyof CategoryFlagValues>(
  edits: FlagEdits,
  snapshot: Snapshot,
  category: Category,
  field: K,
  value: CategoryFlagValues[K],
): void {
  const current = edits.categories[category] ?? {};
  if (sameValue(snapshot.categories[category][field], value)) delete current[field];
  else current[field] = value;
  if (Object.keys(current).length) edits.categories[category] = current;
  else delete edits.categories[category];
}

/** Sets (or clears) a setting's edit. */
export function editSetting(
  edits: FlagEdits,
  snapshot: Snapshot,
  key: string,
  value: unknown,
): void {
  if (sameValue(snapshot.settings[key], value)) delete edits.settings[key];
  else edits.settings[key] = value;
}

/** Drops edits that the (re)loaded snapshot already holds. */
export function rebase(edits: FlagEdits, snapshot: Snapshot): FlagEdits {
  const next = emptyEdits();
  for (
    const [c, fields] of Object.entries(edits.categories) as [
      Category,
      Partial<CategoryFlagValues>,
    ][]
  ) {
    for (const [f, v] of Object.entries(fields)) {
      editCategory(next, snapshot, c, f as keyof CategoryFlagValues, v as never);
    }
  }
  for (const [k, v] of Object.entries(edits.settings)) editSetting(next, snapshot, k, v);
  return next;
}

/** The batch's changes, categories first in display order, then settings. */
export function batchChanges(edits: FlagEdits): BatchChange[] {
  const out: BatchChange[] = [];
  for (const category of CATEGORY_LIST) {
    const changes = edits.categories[category];
    if (changes && Object.keys(changes).length) out.push({ type: "category", category, changes });
  }
  for (const [key, value] of Object.entries(edits.settings)) {
    out.push({ type: "setting", key, value });
  }
  return out;
}

/** How many fields the edits change. */
export function editCount(edits: FlagEdits): number {
  return Object.values(edits.categories).reduce((n, c) => n + Object.keys(c ?? {}).length, 0) +
    Object.keys(edits.settings).length;
}

/** Human lines for the pending changes: `performance.percentage: 50 → 75`. */
export function describeEdits(edits: FlagEdits, snapshot: Snapshot): string[] {
  const show = (v: unknown) => (Array.isArray(v) ? `[${v.join(", ")}]` : JSON.stringify(v));
  const lines: string[] = [];
  for (const change of batchChanges(edits)) {
    if (change.type === "category") {
      for (const [f, v] of Object.entries(change.changes)) {
        const before = snapshot.categories[change.category][f as keyof CategoryFlagValues];
        lines.push(`${change.category}.${f}: ${show(before)} → ${show(v)}`);
      }
    } else {
      lines.push(`${change.key}: ${show(snapshot.settings[change.key])} → ${show(change.value)}`);
    }
  }
  return lines;
}

/** The input an API issue path points at, in the batch built from `changes`. */
export function fieldOfIssue(
  path: string,
  changes: BatchChange[],
): { kind: "category"; category: Category; field: string } | { kind: "setting"; key: string } | {
  kind: "reason";
} | null {
  if (path === "reason") return { kind: "reason" };
  const m = /^changes\.(\d+)(?:\.(changes|value)(?:\.([^.]+))?)?/.exec(path);
  if (!m) return null;
  const change = changes[Number(m[1])];
  if (!change) return null;
  if (change.type === "category") {
    const field = m[3] ?? Object.keys(change.changes)[0] ?? "";
    return { kind: "category", category: change.category, field };
  }
  return { kind: "setting", key: change.key };
}
