/**
 * The door of the operator functions (flags, reconcile, dlq-retry): the
 * gateway verifies a JWT's signature (verify_jwt), which any project JWT
 * passes, so these functions also insist on the service-role key itself.
 */
import type { MiddlewareHandler } from "hono";
import { bearerToken, safeEqual } from "./auth.ts";
import { errorResponse } from "./errors.ts";

/**
 * Hono middleware: 401 without a bearer token, 403 when it is not the
 * service-role key. `what` names the API in the messages ("The flags API").
 *
 * @example
 * app.use("*", serviceRoleOnly(deps.serviceRoleKey, "reconcile"));
 */
export function serviceRoleOnly(serviceRoleKey: string, what: string): MiddlewareHandler {
  return async (c, next) => {
    const token = bearerToken(c.req.raw);
    if (!token) {
      return errorResponse(
        401,
        "unauthorized",
        `${what} needs the service-role key (Authorization: Bearer <key>)`,
      );
    }
    if (!safeEqual(token, serviceRoleKey)) {
      return errorResponse(
        403,
        "forbidden",
        `${what} is for the service role only; this token is not the service-role key`,
      );
    }
    await next();
  };
}
