/**
 * Who the dashboard reads and writes as. Without a sign-in it uses the
 * project's anon key: the WebSocket stream accepts it, but the history API
 * and Realtime show anon nothing unless the `anon_read_enabled` setting is
 * on, and flags/metrics need the service role. An operator signs in with the
 * service-role key (flags, metrics, everything) or a user's access token
 * (reads under RLS as `authenticated`). The credential lives in
 * sessionStorage: it goes away with the tab and never reaches localStorage.
 */

export type Role = "anon" | "authenticated" | "service_role";

export interface Credential {
  token: string;
  role: Role;
  /** Expiry (ms since epoch) when the JWT has one. */
  expiresAt?: number;
}

const CREDENTIAL_KEY = "cutover.dashboard.credential";
const OPERATOR_KEY = "cutover.dashboard.operator";

/** The role and expiry a JWT claims (not verified: the API verifies), or null when it is not a JWT. */
export function readClaims(token: string): { role: string; exp?: number } | null {
  const part = token.trim().split(".")[1];
  if (!part) return null;
  try {
    const json = atob(
      part.replace(/-/g, "+").replace(/_/g, "/").padEnd(
        Math.ceil(part.length / 4) * 4,
        "=",
      ),
    );
    const claims = JSON.parse(json) as { role?: unknown; exp?: unknown };
    if (typeof claims.role !== "string") return null;
    return { role: claims.role, exp: typeof claims.exp === "number" ? claims.exp : undefined };
  } catch {
    return null;
  }
}

/** Parses a pasted key or token into a credential, or says why it cannot be one. */
export function credentialFrom(token: string): Credential | { error: string } {
  const trimmed = token.trim();
  if (!trimmed) return { error: "Paste the service-role key (or a user's access token)." };
  const claims = readClaims(trimmed);
  if (!claims) {
    return {
      error:
        "That is not a JWT. Paste the service_role key that `npm start` prints (or the project's API settings show).",
    };
  }
  if (claims.role === "anon") {
    return {
      error:
        "That is the anon key: the dashboard already uses it. Sign in with the service_role key.",
    };
  }
  if (claims.role !== "service_role" && claims.role !== "authenticated") {
    return { error: `A token with role "${claims.role}" cannot read monitoring data.` };
  }
  const expiresAt = claims.exp ? claims.exp * 1000 : undefined;
  if (expiresAt !== undefined && expiresAt < Date.now()) {
    return { error: "That token has expired." };
  }
  return { token: trimmed, role: claims.role, expiresAt };
}

export class Session {
  #credential: Credential | null = null;
  readonly #listeners = new Set<() => void>();

  constructor(
    readonly anonKey: string,
    private readonly sessionStore: Pick<Storage, "getItem" | "setItem" | "removeItem">,
    private readonly localStore: Pick<Storage, "getItem" | "setItem">,
  ) {
    const saved = sessionStore.getItem(CREDENTIAL_KEY);
    if (saved) {
      const c = credentialFrom(saved);
      if ("token" in c) this.#credential = c;
      else sessionStore.removeItem(CREDENTIAL_KEY);
    }
  }

  get credential(): Credential | null {
    return this.#credential;
  }

  get role(): Role {
    return this.#credential?.role ?? "anon";
  }

  /** The bearer token for reads and the stream: the credential's, else the anon key. */
  token(): string {
    return this.#credential?.token ?? this.anonKey;
  }

  signIn(credential: Credential): void {
    this.#credential = credential;
    this.sessionStore.setItem(CREDENTIAL_KEY, credential.token);
    this.#emit();
  }

  signOut(): void {
    this.#credential = null;
    this.sessionStore.removeItem(CREDENTIAL_KEY);
    this.#emit();
  }

  /** The operator's name for the audit log (kept per browser). */
  get operator(): string {
    return this.localStore.getItem(OPERATOR_KEY) ?? "";
  }

  set operator(name: string) {
    this.localStore.setItem(OPERATOR_KEY, name.trim());
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(): void {
    for (const l of this.#listeners) l();
  }
}
