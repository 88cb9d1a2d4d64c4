/**
 * What an operator may ask the flags API to change, validated before anything
 * touches the database, and the pure comparisons that decide whether a write
 * changes anything at all. One request shape per endpoint, all built from the
 * one home of every flag's and setting's shape (shared/config/settings.ts).
 */
import { z } from "zod";
import {
  type CategoryFlags,
  categoryFlagsSchema,
  type Settings,
  settingsSchema,
} from "../config/settings.ts";
import { canonicalJson } from "../events/canonical.ts";
import { ADAPTERS, CATEGORIES, type Category } from "../events/schema.ts";

/** The name of a global setting (a row of `cutover.settings`). */
export type SettingKey = keyof Settings;
export const SETTING_KEYS = Object.keys(settingsSchema.shape) as SettingKey[];

/** The fields of a category's flags, in the order the API reports them. */
export const CATEGORY_FIELDS = Object.keys(categoryFlagsSchema.shape) as (keyof CategoryFlags)[];

/** One change to the configuration. */
export type FlagChange =
  | { type: "category"; category: Category; changes: Partial<CategoryFlags> }
  | { type: "setting"; key: SettingKey; value: Settings[SettingKey] };

/** A validated write: applied only when the configuration is still at `expectedVersion`. */
export interface WriteRequest {
  expectedVersion: number;
  reason: string;
  changes: FlagChange[];
}

/** A validation failure: the first issue as a sentence, and every issue by path. */
export interface Invalid {
  message: string;
  issues: { path: string; message: string }[];
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: Invalid };

/** True when `name` is a category the pipeline knows. */
export function isCategory(name: string): name is Category {
  return (CATEGORIES as readonly string[]).includes(name);
}

/** True when `name` is a global setting the pipeline knows. */
export function isSettingKey(name: string): name is SettingKey {
  return (SETTING_KEYS as string[]).includes(name);
}

/** Most changes to the whole configuration one batch may carry. */
export const MAX_BATCH_CHANGES = 50;

const unknownKeys = (what: string) => ({
  error: (i: { code: string; keys?: string[] }) =>
    i.code === "unrecognized_keys"
      ? `unknown field(s): ${i.keys?.join(", ")}`
      : `${what} must be a JSON object`,
});

const expectedVersionSchema = z.number({
  error: (i) =>
    i.input === undefined
      ? "expected_version is required (the version you read, from GET /flags)"
      : "expected_version must be an integer",
}).int("expected_version must be an integer").min(0, "expected_version must be >= 0").max(
  Number.MAX_SAFE_INTEGER,
  "expected_version is too large",
);

const reasonSchema = z.string({
  error: (i) =>
    i.input === undefined
      ? "reason is required (it is kept in the audit log)"
      : "reason must be a string",
}).trim().min(3, "reason must be at least 3 characters").max(
  500,
  "reason must be at most 500 characters",
);

const categoryChangesSchema = z.strictObject(
  categoryFlagsSchema.partial().shape,
  unknownKeys("changes"),
).refine(
  (changes) => Object.keys(changes).length > 0,
  `changes must name at least one of ${CATEGORY_FIELDS.join(", ")}`,
);

/** A setting's value validated by its own schema; issues keep their path under `value`. */
function settingValue(key: SettingKey) {
  const shape = settingsSchema.shape[key] as z.ZodType<Settings[SettingKey]>;
  return z.unknown().transform((value, ctx) => {
    if (value === undefined) {
      ctx.addIssue({ code: "custom", message: `value is required (the new ${key})` });
      return z.NEVER;
    }
    const parsed = shape.safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) {
      ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    }
    return z.NEVER;
  });
}

const categoryPatchSchema = z.strictObject({
  expected_version: expectedVersionSchema,
  reason: reasonSchema,
  changes: categoryChangesSchema,
}, unknownKeys("the body"));

const batchItemSchema = z.unknown().transform((raw, ctx): FlagChange => {
  const item = z.strictObject({
    type: z.enum(["category", "setting"], { error: 'type must be "category" or "setting"' }),
    category: z.enum(CATEGORIES, {
      error: `category must be one of ${CATEGORIES.join(", ")}`,
    }).optional(),
    key: z.enum(SETTING_KEYS as [SettingKey, ...SettingKey[]], {
      error: `key must be one of ${SETTING_KEYS.join(", ")}`,
    }).optional(),
    changes: z.unknown().optional(),
    value: z.unknown().optional(),
  }, unknownKeys("a change")).safeParse(raw);
  const forward = (issues: z.core.$ZodIssue[]) => {
    for (const issue of issues) {
      ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    }
    return z.NEVER;
  };
  if (!item.success) return forward(item.error.issues);
  const { type, category, key } = item.data;
  if (type === "category") {
    if (!category) return forward([issueAt(["category"], "category is required")]);
    if ("value" in (raw as object) || key) {
      return forward([issueAt([], 'a "category" change has only type, category and changes')]);
    }
    const changes = categoryChangesSchema.safeParse(item.data.changes);
    if (!changes.success) return forward(prefixed(["changes"], changes.error.issues));
    return { type, category, changes: changes.data };
  }
  if (!key) return forward([issueAt(["key"], "key is required")]);
  if ("changes" in (raw as object) || category) {
    return forward([issueAt([], 'a "setting" change has only type, key and value')]);
  }
  const value = settingValue(key).safeParse(item.data.value);
  if (!value.success) return forward(prefixed(["value"], value.error.issues));
  return { type, key, value: value.data };
});

const batchSchema = z.strictObject({
  expected_version: expectedVersionSchema,
  reason: reasonSchema,
  changes: z.array(batchItemSchema, { error: "changes must be an array" })
    .min(1, "changes must hold at least one change")
    .max(MAX_BATCH_CHANGES, `a batch holds at most ${MAX_BATCH_CHANGES} changes`),
}, unknownKeys("the body")).superRefine((body, ctx) => {
  const seen = new Set<string>();
  body.changes.forEach((change, index) => {
    const target = change.type === "category"
      ? `category ${change.category}`
      : `setting ${change.key}`;
    if (seen.has(target)) {
      ctx.addIssue({
        code: "custom",
        message: `${target} is changed twice in one batch; merge the changes`,
        path: ["changes", index],
      });
    }
    seen.add(target);
  });
});

function issueAt(path: PropertyKey[], message: string): z.core.$ZodIssue {
  return { code: "custom", message, path, input: undefined } as z.core.$ZodIssue;
}

function prefixed(prefix: PropertyKey[], issues: z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.map((issue) => ({ ...issue, path: [...prefix, ...issue.path] }));
}

/** A zod error as an `Invalid`: `path: message` for the first issue, and the full list. */
export function invalidFrom(error: z.ZodError): Invalid {
  const issues = error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
  }));
  const first = issues[0] ?? { path: "", message: "invalid" };
  return {
    message: first.path && !first.message.startsWith(first.path)
      ? `${first.path}: ${first.message}`
      : first.message,
    issues,
  };
}

function parsed<T>(result: z.ZodSafeParseResult<T>): Parsed<T> {
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: invalidFrom(result.error) };
}

/** `PATCH /flags/categories/:category`: `{ expected_version, reason, changes: Partial<CategoryFlags> }`. */
export function parseCategoryPatch(category: Category, body: unknown): Parsed<WriteRequest> {
  const result = parsed(categoryPatchSchema.safeParse(body));
  if (!result.ok) return result;
  const { expected_version, reason, changes } = result.value;
  return {
    ok: true,
    value: {
      expectedVersion: expected_version,
      reason,
      changes: [{ type: "category", category, changes }],
    },
  };
}

/** `PUT /flags/settings/:key`: `{ expected_version, reason, value }`, value checked by the key's own schema. */
export function parseSettingPut(key: SettingKey, body: unknown): Parsed<WriteRequest> {
  const schema = z.strictObject({
    expected_version: expectedVersionSchema,
    reason: reasonSchema,
    value: settingValue(key),
  }, unknownKeys("the body"));
  const result = parsed(schema.safeParse(body));
  if (!result.ok) return result;
  const { expected_version, reason, value } = result.value;
  return {
    ok: true,
    value: {
      expectedVersion: expected_version,
      reason,
      changes: [{ type: "setting", key, value }],
    },
  };
}

/**
 * `POST /flags/batch`: `{ expected_version, reason, changes: [{ type: "category", category, changes }
 * | { type: "setting", key, value }] }`, applied all or nothing. A target may appear once.
 */
export function parseBatch(body: unknown): Parsed<WriteRequest> {
  const result = parsed(batchSchema.safeParse(body));
  if (!result.ok) return result;
  const { expected_version, reason, changes } = result.value;
  return { ok: true, value: { expectedVersion: expected_version, reason, changes } };
}

/**
 * A category's flags after `changes`: adapters put in canonical order
 * (websocket, realtime) so that the same set always reads, compares and is
 * stored the same way. Throws when the result is not valid flags.
 */
export function mergeCategoryFlags(
  current: CategoryFlags,
  changes: Partial<CategoryFlags>,
): CategoryFlags {
  const merged = categoryFlagsSchema.parse({ ...current, ...changes });
  return { ...merged, adapters: ADAPTERS.filter((a) => merged.adapters.includes(a)) };
}

/** The fields whose values differ between two sets of flags (adapters compared as sets). */
export function changedCategoryFields(
  before: CategoryFlags,
  after: CategoryFlags,
): (keyof CategoryFlags)[] {
  return CATEGORY_FIELDS.filter((field) => {
    if (field === "adapters") {
      const a = new Set(before.adapters);
      const b = new Set(after.adapters);
      return a.size !== b.size || [...a].some((x) => !b.has(x));
    }
    return before[field] !== after[field];
  });
}

/** True when two setting values are the same JSON (key order ignored). */
export function sameSettingValue(a: unknown, b: unknown): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}

/** Longest operator name the `x-cutover-actor` header may carry. */
export const MAX_ACTOR_NAME = 100;

/**
 * The audit actor for a service-role request: `service_role`, or
 * `service_role:<name>` when the dashboard names its operator in
 * `x-cutover-actor` (trimmed, 1–100 characters, no control characters).
 */
export function actorFrom(header: string | null | undefined): Parsed<string> {
  if (header === null || header === undefined || header.trim() === "") {
    return { ok: true, value: "service_role" };
  }
  const name = header.trim();
  const problem = name.length > MAX_ACTOR_NAME
    ? `x-cutover-actor must be at most ${MAX_ACTOR_NAME} characters`
    : /\p{Cc}/u.test(name)
    ? "x-cutover-actor must not contain control characters"
    : undefined;
  if (problem) {
    return {
      ok: false,
      error: { message: problem, issues: [{ path: "x-cutover-actor", message: problem }] },
    };
  }
  return { ok: true, value: `service_role:${name}` };
}
