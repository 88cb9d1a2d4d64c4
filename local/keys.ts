/**
 * Local credentials, like `supabase start` makes them: one HS256 JWT secret,
 * and the anon and service_role API keys signed with it. The secret and the
 * producer key are generated once per data directory and kept beside it, so
 * keys survive restarts and a `--reset` issues new ones.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { SignJWT } from "jose";

export interface LocalSecrets {
  jwtSecret: string;
  producerKey: string;
}

export interface LocalKeys extends LocalSecrets {
  anonKey: string;
  serviceRoleKey: string;
}

const TEN_YEARS_S = 10 * 365 * 24 * 3600;

/** Reads the secrets kept in `dir`, creating them on first use. */
export function loadOrCreateSecrets(dir: string): LocalSecrets {
  const file = path.join(dir, "secrets.json");
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8")) as LocalSecrets;
  mkdirSync(dir, { recursive: true });
  const secrets: LocalSecrets = {
    jwtSecret: randomBytes(32).toString("base64url"),
    producerKey: `cutover_pk_${randomBytes(24).toString("base64url")}`,
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** Signs an HS256 JWT for `role` with the local secret (what Supabase's API keys are). */
export async function signRoleJwt(
  secret: string,
  role: string,
  extraClaims: Record<string, unknown> = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ role, ...extraClaims })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("supabase-demo")
    .setIssuedAt(now)
    .setExpirationTime(now + TEN_YEARS_S)
    .sign(new TextEncoder().encode(secret));
}

/** The full key set for a stack. */
export async function deriveKeys(secrets: LocalSecrets): Promise<LocalKeys> {
  return {
    ...secrets,
    anonKey: await signRoleJwt(secrets.jwtSecret, "anon"),
    serviceRoleKey: await signRoleJwt(secrets.jwtSecret, "service_role"),
  };
}
