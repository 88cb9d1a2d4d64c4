/**
 * The last answers of an operator API (flags, metrics, reconcile, dlq-retry):
 * 404 naming the unknown endpoint, 503 with Retry-After when the database is
 * unavailable (a transient condition the caller should retry), 500 for
 * anything else — each logged with the function's name, none leaking a stack.
 */
import type { Env, Hono, Schema } from "hono";
import { isTransientDbError } from "../db/client.ts";
import { errorResponse } from "./errors.ts";

export interface FallbackOptions {
  /** The function's name, in messages and logs ("flags"). */
  name: string;
  log: (line: string) => void;
  /** A sentence appended to the 503/500 messages, e.g. "Nothing was changed." */
  outcome?: string;
  /** Retry-After on 503, in seconds (default 5). */
  retryAfterS?: number;
}

/**
 * Installs `notFound` and `onError` on the app.
 *
 * @example
 * answerFallbacks(app, { name: "flags", log, outcome: "Nothing was changed." });
 */
export function answerFallbacks<E extends Env, S extends Schema, P extends string>(
  app: Hono<E, S, P>,
  options: FallbackOptions,
): void {
  const { name, log } = options;
  const outcome = options.outcome ? ` ${options.outcome}` : "";
  app.notFound((c) =>
    errorResponse(
      404,
      "not_found",
      `No such ${name} endpoint: ${c.req.method} ${new URL(c.req.url).pathname}`,
    )
  );
  app.onError((error) => {
    if (isTransientDbError(error)) {
      log(`${name}: database unavailable: ${error.message}`);
      return errorResponse(
        503,
        "database_unavailable",
        `The database is unavailable.${outcome} Retry later.`,
        {},
        { "retry-after": String(options.retryAfterS ?? 5) },
      );
    }
    log(`${name}: failed: ${error.stack ?? error}`);
    return errorResponse(500, "internal_error", `The request failed unexpectedly.${outcome}`);
  });
}
