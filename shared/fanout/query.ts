/**
 * Parsing a client's connect parameters (`token`, `since`, `categories`,
 * `sources`). Pure: fed the URL's search parameters, returns the parsed
 * request or the precise reason it is refused (answered with 400).
 */
import { CATEGORIES, type Category, MAX_NAME_LENGTH } from "../events/schema.ts";
import type { StreamFilter } from "./protocol.ts";

/** At most this many sources in one `sources` filter. */
export const MAX_FILTER_SOURCES = 100;

/** Parameters besides these are refused, so that a typo (`categroies`) cannot silently widen a filter. */
const KNOWN = new Set(["token", "since", "categories", "sources", "apikey"]);

export interface StreamRequest {
  /** null when absent (the caller answers 401). */
  token: string | null;
  /** Resume after this cursor; null = join live. */
  since: number | null;
  filter: StreamFilter;
}

export type ParsedStreamRequest =
  | { ok: true; request: StreamRequest }
  | { ok: false; code: "invalid_query"; message: string };

function fail(message: string): ParsedStreamRequest {
  return { ok: false, code: "invalid_query", message };
}

function list(raw: string): string[] {
  return raw.split(",").map((s) => s.trim());
}

/**
 * Parses connect parameters. `since` is a non-negative integer (at most
 * 2^53-1); `categories` a comma list of known categories; `sources` a comma
 * list of at most MAX_FILTER_SOURCES non-empty names. A parameter given twice,
 * an empty list item, or an unknown parameter is refused. `apikey` is
 * accepted and ignored (hosted Supabase clients may add it).
 */
export function parseStreamQuery(params: URLSearchParams): ParsedStreamRequest {
  for (const key of new Set(params.keys())) {
    if (!KNOWN.has(key)) {
      return fail(
        `unknown query parameter "${key}" (expected token, since, categories, sources)`,
      );
    }
    if (params.getAll(key).length > 1) return fail(`query parameter "${key}" is given twice`);
  }

  const token = params.get("token") || null;

  let since: number | null = null;
  const rawSince = params.get("since");
  if (rawSince !== null) {
    if (!/^\d{1,16}$/.test(rawSince) || !Number.isSafeInteger(Number(rawSince))) {
      return fail(`since must be a cursor: a non-negative integer, got "${rawSince}"`);
    }
    since = Number(rawSince);
  }

  let categories: Set<Category> | null = null;
  const rawCategories = params.get("categories");
  if (rawCategories !== null) {
    categories = new Set();
    for (const item of list(rawCategories)) {
      if (!(CATEGORIES as readonly string[]).includes(item)) {
        return fail(
          item === ""
            ? "categories has an empty item"
            : `unknown category "${item}" (expected one of ${CATEGORIES.join(", ")})`,
        );
      }
      categories.add(item as Category);
    }
  }

  let sources: Set<string> | null = null;
  const rawSources = params.get("sources");
  if (rawSources !== null) {
    const items = list(rawSources);
    if (items.some((s) => s === "")) return fail("sources has an empty item");
    if (items.some((s) => s.length > MAX_NAME_LENGTH)) {
      return fail(`a source is at most ${MAX_NAME_LENGTH} characters`);
    }
    sources = new Set(items);
    if (sources.size > MAX_FILTER_SOURCES) {
      return fail(`sources lists at most ${MAX_FILTER_SOURCES} names, got ${sources.size}`);
    }
  }

  return { ok: true, request: { token, since, filter: { categories, sources } } };
}
