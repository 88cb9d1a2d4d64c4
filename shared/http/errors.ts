/**
 * The one shape of an error answer: `{ "error": { "code", "message", ... } }`
 * with a precise HTTP status. Producers and operators read `code` to decide,
 * `message` to understand.
 */
export interface ErrorBody {
  error: { code: string; message: string; [detail: string]: unknown };
}

/** A JSON error response. `headers` may carry Retry-After and the like. */
export function errorResponse(
  status: number,
  code: string,
  message: string,
  details: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Response {
  const body: ErrorBody = { error: { code, message, ...details } };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
