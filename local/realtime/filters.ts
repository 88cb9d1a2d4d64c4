/**
 * Parsing of a `postgres_changes` binding from a join payload — `{event,
 * schema, table, filter}` — exactly as hosted Realtime parses it
 * (`Extensions.PostgresCdcRls.Subscriptions.parse_subscription_params`):
 * PostgREST-style `column=op.value` filters joined by top-level commas (AND),
 * `not.` negation, `in.(a,b)` lists, double-quoted values. Pure.
 *
 * Every operator hosted supports is supported here; the predicate is evaluated
 * by Postgres itself (see `filterPredicateSql`), so the typing of values is
 * Postgres's, not a JavaScript approximation.
 */

export const FILTER_OPERATORS = [
  "eq",
  "neq",
  "lt",
  "lte",
  "gt",
  "gte",
  "in",
  "like",
  "ilike",
  "is",
  "match",
  "imatch",
  "isdistinct",
] as const;

export type FilterOperator = typeof FILTER_OPERATORS[number];

export interface ColumnFilter {
  column: string;
  op: FilterOperator;
  /** The value as hosted stores it: unquoted; for `in`, a Postgres array literal `{a,b}`. */
  value: string;
  negate: boolean;
}

export type ActionFilter = "*" | "INSERT" | "UPDATE" | "DELETE";

export interface SubscriptionParams {
  action: ActionFilter;
  /** `*` matches every schema. */
  schema: string;
  /** `*` matches every table. */
  table: string;
  filters: ColumnFilter[];
}

export type ParseResult = { ok: true; params: SubscriptionParams } | { ok: false; error: string };

/**
 * Parses one binding. The error messages are hosted's, so a subscriber gets the
 * same reason locally.
 */
export function parseSubscriptionParams(raw: Record<string, unknown>): ParseResult {
  const action = actionFilter(raw.event);
  if ("select" in raw && raw.select !== undefined && raw.select !== null) {
    // Column selection (`select: [...]`) is recent in hosted Realtime and not emulated.
    return {
      ok: false,
      error:
        "LocalRealtimeUnsupported: `select` (column selection) is not supported by the local Realtime emulator",
    };
  }
  const { schema, table, filter } = raw;
  const has = (key: string) => key in raw && raw[key] !== undefined;
  if (typeof schema === "string" && typeof table === "string" && typeof filter === "string") {
    const parsed = parseFilters(filter);
    if (!parsed.ok) return { ok: false, error: `Error parsing \`filter\` params: ${parsed.error}` };
    return { ok: true, params: { action, schema, table, filters: parsed.filters } };
  }
  if (typeof schema === "string" && typeof table === "string" && !has("filter")) {
    return { ok: true, params: { action, schema, table, filters: [] } };
  }
  if (typeof schema === "string" && !has("table") && !has("filter")) {
    return { ok: true, params: { action, schema, table: "*", filters: [] } };
  }
  if (typeof table === "string" && !has("schema") && !has("filter")) {
    return { ok: true, params: { action, schema: "public", table, filters: [] } };
  }
  return {
    ok: false,
    error:
      `No subscription params provided. Please provide at least a \`schema\` or \`table\` to subscribe to: ${
        inspectTerm(raw)
      }`,
  };
}

/** Elixir's `inspect` of a decoded JSON value (maps with sorted keys), as hosted's messages show params. */
export function inspectTerm(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(inspectTerm).join(", ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1));
    return `%{${entries.map(([k, v]) => `${JSON.stringify(k)} => ${inspectTerm(v)}`).join(", ")}}`;
  }
  return String(value);
}

function actionFilter(event: unknown): ActionFilter {
  if (typeof event !== "string" || event === "*") return "*";
  const upper = event.toUpperCase();
  return upper === "INSERT" || upper === "UPDATE" || upper === "DELETE" ? upper : "*";
}

function parseFilters(
  filter: string,
): { ok: true; filters: ColumnFilter[] } | { ok: false; error: string } {
  const trimmed = filter.trim();
  if (trimmed === "") return { ok: true, filters: [] };
  const filters: ColumnFilter[] = [];
  for (const segment of splitTopLevel(trimmed)) {
    const parsed = parseSegment(segment);
    if (!parsed.ok) return parsed;
    filters.push(parsed.filter);
  }
  return { ok: true, filters };
}

/** Splits on commas outside parentheses and double quotes, as hosted does. */
export function splitTopLevel(filter: string): string[] {
  const out: string[] = [];
  let current = "";
  let depth = 0;
  let quoted = false;
  let prev = "";
  for (let i = 0; i < filter.length; i++) {
    const char = filter[i]!;
    if (quoted) {
      if (char === "\\" && i + 1 < filter.length) {
        current += char + filter[i + 1];
        prev = filter[i + 1]!;
        i++;
        continue;
      }
      if (char === '"') quoted = false;
      current += char;
      prev = char;
      continue;
    }
    if (char === '"' && (prev === "." || prev === "(" || prev === ",")) {
      quoted = true;
    } else if (char === "(") {
      depth++;
    } else if (char === ")") {
      depth = Math.max(0, depth - 1);
    } else if (char === "," && depth === 0) {
      out.push(current);
      current = "";
      prev = "";
      continue;
    }
    current += char;
    prev = char;
  }
  out.push(current);
  return out;
}

function parseSegment(
  segment: string,
): { ok: true; filter: ColumnFilter } | { ok: false; error: string } {
  const trimmed = segment.trim();
  if (trimmed === "") {
    return { ok: false, error: "filter must not contain empty segments (check for extra commas)" };
  }
  const eq = trimmed.indexOf("=");
  if (eq < 0) return { ok: false, error: inspectList([trimmed]) };
  const column = trimmed.slice(0, eq);
  let rest = trimmed.slice(eq + 1);
  let negate = false;
  if (rest.startsWith("not.")) {
    negate = true;
    rest = rest.slice(4);
  }
  const dot = rest.indexOf(".");
  if (dot < 0) return { ok: false, error: inspectList([rest]) };
  const op = rest.slice(0, dot);
  const value = rest.slice(dot + 1);
  if (!(FILTER_OPERATORS as readonly string[]).includes(op)) {
    return { ok: false, error: inspectList([op, value]) };
  }
  if (op === "in") {
    if (value.length < 2 || !value.startsWith("(") || !value.endsWith(")")) {
      return { ok: false, error: "`in` filter value must be wrapped by parentheses" };
    }
    return {
      ok: true,
      filter: { column, op, value: `{${value.slice(1, -1)}}`, negate },
    };
  }
  return { ok: true, filter: { column, op: op as FilterOperator, value: unquote(value), negate } };
}

// Elixir's inspect of a list of strings, which hosted puts in its error message.
function inspectList(items: string[]): string {
  return `[${items.map((s) => JSON.stringify(s)).join(", ")}]`;
}

function unquote(value: string): string {
  if (!value.startsWith('"')) return value;
  let out = "";
  for (let i = 1; i < value.length; i++) {
    const char = value[i]!;
    if (char === "\\" && i + 1 < value.length) {
      out += value[++i];
      continue;
    }
    if (char === '"') return i === value.length - 1 ? out : value;
    out += char;
  }
  return value;
}

/**
 * The SQL predicate for one filter over a typed operand, with `$value`
 * standing for the filter value's placeholder. Mirrors hosted's
 * `realtime.check_equality_op`: both sides cast to the column's type.
 * `operand` must already be a typed SQL expression, `castType` a safe type name.
 */
export function filterPredicateSql(
  filter: ColumnFilter,
  operand: string,
  castType: string,
  valuePlaceholder: string,
): string {
  const value = `${valuePlaceholder}::text::${castType}`;
  let predicate: string;
  switch (filter.op) {
    case "isdistinct":
      return `(${operand} ${filter.negate ? "is not distinct from" : "is distinct from"} ${value})`;
    case "is": {
      const keyword = { null: "null", true: "true", false: "false", unknown: "unknown" }[
        filter.value as "null"
      ];
      // Validated at join, so the keyword is one of the four.
      return `(${operand} ${filter.negate ? "is not" : "is"} ${keyword ?? "null"})`;
    }
    case "in":
      predicate = `${operand} = any(${valuePlaceholder}::text::${castType}[])`;
      break;
    default: {
      const symbol = {
        eq: "=",
        neq: "!=",
        lt: "<",
        lte: "<=",
        gt: ">",
        gte: ">=",
        like: "like",
        ilike: "ilike",
        match: "~",
        imatch: "~*",
      }[filter.op];
      predicate = `${operand} ${symbol} ${value}`;
    }
  }
  return filter.negate ? `(not (${predicate}))` : `(${predicate})`;
}
