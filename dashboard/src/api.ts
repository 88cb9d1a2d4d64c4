/**
 * HTTP calls to the project's Edge Functions, with errors as values: every
 * call resolves to `{ ok: true, data }` or `{ ok: false, error }` carrying the
 * status, the API's error code and message, and — for the flags API — the
 * fields at fault (`issues`) and the version a stale write lost to.
 */
import type { DashboardEvent } from "./core/events.ts";

export interface ApiError {
  /** HTTP status; 0 when the request never got an answer (network, CORS). */
  status: number;
  code: string;
  message: string;
  /** Per-field problems (flags API 400s), `path` as the API names it. */
  issues?: { path: string; message: string }[];
  /** On 409 version_conflict: the configuration's version now. */
  currentVersion?: number;
}

export type ApiResult<T> = { ok: true; data: T } | { ok: false; error: ApiError };

export interface ApiOptions {
  apiUrl: string;
  /** The bearer token for this call: the signed-in credential, else the anon key. */
  token: () => string;
  /** Operator name for the audit log (x-cutover-actor), when set. */
  actor?: () => string | undefined;
  fetch?: typeof fetch;
}

export interface Api {
  get<T>(path: string, params?: Record<string, string | number | undefined>): Promise<ApiResult<T>>;
  send<T>(method: "POST" | "PUT" | "PATCH", path: string, body: unknown): Promise<ApiResult<T>>;
  readonly apiUrl: string;
}

/** `${apiUrl}/functions/v1/${path}` with the query parameters that are set. */
export function functionUrl(
  apiUrl: string,
  path: string,
  params: Record<string, string | number | undefined> = {},
): string {
  const url = new URL(`${apiUrl.replace(/\/$/, "")}/functions/v1/${path.replace(/^\//, "")}`);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== "") {
      url.searchParams.set(k, String(v));
    }
  }
  return url.toString();
}

/** Reads an error body in the project's `{ error: { code, message, ... } }` shape (or anything else). */
export function parseApiError(status: number, body: unknown, fallbackText = ""): ApiError {
  const e = (body as { error?: Record<string, unknown> } | null)?.error;
  if (e && typeof e === "object") {
    return {
      status,
      code: String(e.code ?? `http_${status}`),
      message: String(e.message ?? fallbackText ?? `HTTP ${status}`),
      issues: Array.isArray(e.issues) ? (e.issues as ApiError["issues"]) : undefined,
      currentVersion: typeof e.current_version === "number" ? e.current_version : undefined,
    };
  }
  const flat = body as { code?: unknown; message?: unknown; msg?: unknown } | null;
  const message = typeof flat?.message === "string"
    ? flat.message
    : typeof flat?.msg === "string"
    ? flat.msg
    : fallbackText.slice(0, 300) || `HTTP ${status}`;
  return { status, code: `http_${status}`, message };
}

export function createApi(options: ApiOptions): Api {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));

  async function call<T>(method: string, url: string, body?: unknown): Promise<ApiResult<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token()}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const actor = options.actor?.();
    if (actor && method !== "GET") headers["x-cutover-actor"] = actor;
    let res: Response;
    try {
      res = await doFetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      return {
        ok: false,
        error: {
          status: 0,
          code: "network",
          message: `No answer from ${new URL(url).host}: ${(error as Error).message}`,
        },
      };
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) return { ok: false, error: parseApiError(res.status, json, text) };
    return { ok: true, data: json as T };
  }

  return {
    apiUrl: options.apiUrl,
    get: (path, params) => call("GET", functionUrl(options.apiUrl, path, params)),
    send: (method, path, body) => call(method, functionUrl(options.apiUrl, path), body),
  };
}

/** One page of the history API. */
export interface HistoryPage {
  events: Required<DashboardEvent>[];
  next: { after: number } | { before: number } | null;
}
