/**
 * Credentials at the functions' own doors (those with verify_jwt = false, or
 * that need more than the gateway's check): the service-role key, producer
 * keys (stored as SHA-256 hashes in cutover.producers), and user JWTs.
 */
import { jwtVerify } from "jose";
import type { Sql } from "../db/client.ts";
import { checksumText } from "../events/checksum.ts";

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(req: Request): string | null {
  const header = req.headers.get("authorization");
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

/** Constant-time string equality (length leaks, content does not). */
export function safeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export type Principal =
  | { kind: "service_role"; name: "service_role" }
  | { kind: "producer"; name: string };

export interface ProducerAuth {
  /** Resolves the principal for a token, or null when it is not a valid credential. Throws when the database is unreachable. */
  authenticate(token: string | null): Promise<Principal | null>;
}

export interface ProducerAuthOptions {
  sql: Sql;
  serviceRoleKey: string;
  /** How long a verified producer key is trusted without asking the database again. */
  cacheMs?: number;
  now?: () => number;
}

/** Producer-key or service-role authentication, with a small positive cache. */
export function createProducerAuth(options: ProducerAuthOptions): ProducerAuth {
  const cacheMs = options.cacheMs ?? 60_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { name: string; until: number }>();
  return {
    async authenticate(token) {
      if (!token) return null;
      if (options.serviceRoleKey && safeEqual(token, options.serviceRoleKey)) {
        return { kind: "service_role", name: "service_role" };
      }
      if (token.length > 512) return null;
      const hash = await checksumText(token, "sha256");
      const hit = cache.get(hash);
      if (hit && hit.until > now()) return { kind: "producer", name: hit.name };
      const [row] = await options.sql<{ name: string }[]>`
        select name from cutover.producers where key_hash = ${hash} and revoked_at is null`;
      if (!row) {
        cache.delete(hash);
        return null;
      }
      if (cache.size > 10_000) cache.clear();
      cache.set(hash, { name: row.name, until: now() + cacheMs });
      return { kind: "producer", name: row.name };
    },
  };
}

export interface JwtClaims {
  role: string;
  sub?: string;
  [claim: string]: unknown;
}

/**
 * Verifies a Supabase JWT (HS256 with the project's JWT secret) and returns
 * its claims, or null when it is invalid or expired.
 */
export async function verifySupabaseJwt(token: string, secret: string): Promise<JwtClaims | null> {
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
      algorithms: ["HS256"],
    });
    if (typeof payload.role !== "string") return null;
    return payload as JwtClaims;
  } catch {
    return null;
  }
}
