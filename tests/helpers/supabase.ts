/** The real @supabase/supabase-js client against the test stack. */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { stack } from "./http.ts";

/** A user JWT signed with the stack's secret, as Supabase Auth would issue. */
export async function userJwt(role = "authenticated", sub = crypto.randomUUID()): Promise<string> {
  return await new SignJWT({ role, sub, aud: "authenticated" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(stack().jwtSecret));
}

/** A client with Node's WebSocket; `accessToken` makes it act as that user. */
export function supabaseClient(accessToken?: string): SupabaseClient {
  const client = createClient(stack().info.apiUrl, stack().info.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: {
      transport: WebSocket as unknown as typeof globalThis.WebSocket,
      heartbeatIntervalMs: 5000,
    },
  });
  if (accessToken) client.realtime.setAuth(accessToken);
  return client;
}

/** Collects values pushed to it and waits for a condition. */
export class Collector<T> {
  items: T[] = [];
  push = (...items: T[]) => {
    this.items.push(...items);
  };
  async waitFor(pred: (items: T[]) => boolean, timeoutMs = 5000): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.items)) {
      if (Date.now() > deadline) throw new Error(`timed out; have ${this.items.length} item(s)`);
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.items;
  }
}

/** Resolves with the first status a channel reports other than the initial ones. */
export function subscribed(
  channel: ReturnType<SupabaseClient["channel"]>,
  timeoutMs = 5000,
): Promise<{ status: string; error?: Error }> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ status: "TIMEOUT_IN_TEST" }), timeoutMs);
    channel.subscribe((status, error) => {
      clearTimeout(timer);
      resolve({ status, error });
    });
  });
}
