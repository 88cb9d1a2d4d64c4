/**
 * JWT verification as Realtime does it (`RealtimeWeb.JwtVerification` and
 * `ChannelsAuthorization.authorize_conn`): HS256/384/512 signed with the
 * project's secret, `exp` in the future, and both `role` and `exp` present.
 * Failures carry the error code and message hosted Realtime answers with, so a
 * client sees the same reason locally as against a hosted project.
 */
import { decodeJwt, errors, jwtVerify } from "jose";

/** The JWT claims a subscriber is authorised with (`role` and `exp` are guaranteed). */
export interface Claims {
  role: string;
  exp: number;
  sub?: string;
  [claim: string]: unknown;
}

export type TokenCheck =
  | { ok: true; claims: Claims }
  | {
    ok: false;
    /** Hosted's reason class, e.g. `expired_token`, used to pick the HTTP status and log code. */
    kind:
      | "expired_token"
      | "missing_claims"
      | "token_malformed"
      | "signature_error"
      | "signer_error"
      | "missing_api_key";
    /** Hosted's error code prefix in channel error replies, e.g. `InvalidJWTToken`. */
    code: string;
    message: string;
  };

const HS_ALGORITHMS = ["HS256", "HS384", "HS512"];

/**
 * Verifies `token` against `secret`. Never throws; the result says why a token
 * is refused. `now` (seconds) is injectable for tests.
 */
export async function verifyToken(
  token: unknown,
  secret: Uint8Array,
  now: number = Math.floor(Date.now() / 1000),
): Promise<TokenCheck> {
  if (typeof token !== "string" || token === "") {
    return {
      ok: false,
      kind: "missing_api_key",
      code: "MissingAPIKey",
      message: "API key is missing or not a valid string",
    };
  }
  // Hosted URI-decodes the token and strips whitespace before verifying.
  let clean = token;
  try {
    clean = decodeURIComponent(token);
  } catch {
    // Not URI-encoded: use as is.
  }
  clean = clean.replace(/\s/g, "");
  let peeked: Record<string, unknown>;
  try {
    peeked = decodeJwt(clean) as Record<string, unknown>;
  } catch {
    return malformed();
  }
  try {
    const { payload } = await jwtVerify(clean, secret, {
      algorithms: HS_ALGORITHMS,
      currentDate: new Date(now * 1000),
    });
    const claims = roundNumericDates(payload as Record<string, unknown>);
    if (typeof claims.role !== "string" || typeof claims.exp !== "number") {
      return {
        ok: false,
        kind: "missing_claims",
        code: "InvalidJWTToken",
        message: "Fields `role` and `exp` are required in JWT",
      };
    }
    return { ok: true, claims: claims as Claims };
  } catch (error) {
    if (error instanceof errors.JWTExpired) {
      const exp = typeof peeked.exp === "number" ? Math.round(peeked.exp) : now;
      return {
        ok: false,
        kind: "expired_token",
        code: "InvalidJWTToken",
        message: `Token has expired ${now - exp} seconds ago`,
      };
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      return {
        ok: false,
        kind: "signature_error",
        code: "JwtSignatureError",
        message: "Failed to validate JWT signature",
      };
    }
    if (error instanceof errors.JOSEAlgNotAllowed) {
      return {
        ok: false,
        kind: "signer_error",
        code: "JwtSignerError",
        message: "Failed to generate JWT signer, check your JWT secret or JWKS configuration",
      };
    }
    return malformed();
  }
}

function malformed(): TokenCheck {
  return {
    ok: false,
    kind: "token_malformed",
    code: "MalformedJWT",
    message: "The token provided is not a valid JWT",
  };
}

// JWT allows decimal exp/iat; hosted rounds them so later arithmetic is integral.
function roundNumericDates(claims: Record<string, unknown>): Record<string, unknown> {
  const out = { ...claims };
  for (const key of ["exp", "iat"]) {
    if (typeof out[key] === "number") out[key] = Math.round(out[key] as number);
  }
  return out;
}

/** The HTTP status hosted answers a refused WebSocket upgrade with, per refusal kind. */
export function upgradeRefusal(check: Extract<TokenCheck, { ok: false }>): {
  status: number;
  error: string;
} {
  switch (check.kind) {
    case "missing_api_key":
      return { status: 401, error: "API key is missing" };
    case "expired_token":
      return { status: 401, error: "Token has expired" };
    case "missing_claims":
      return { status: 401, error: "Fields `role` and `exp` are required in JWT" };
    case "token_malformed":
      return { status: 401, error: "The token provided is not a valid JWT" };
    case "signature_error":
      return { status: 401, error: "Failed to validate JWT signature" };
    case "signer_error":
      return {
        status: 401,
        error: "Failed to generate JWT signer, check your JWT secret or JWKS configuration",
      };
  }
}
