/** Small HTTP helpers for tests that talk to the running stack. */
import { inject } from "vitest";

export function stack() {
  return inject("stack");
}

export function functionUrl(name: string, rest = ""): string {
  return `${stack().info.apiUrl}/functions/v1/${name}${rest}`;
}

/** fetch + parsed JSON body (null when the body is not JSON). */
export async function fetchJson<T = unknown>(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: T }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body: body as T };
}
