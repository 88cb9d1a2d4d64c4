import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isConnectionError, isTransientDbError } from "../../shared/db/client.ts";

const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code });

describe("database error classification", () => {
  it.each([
    "ECONNREFUSED",
    "ECONNRESET",
    "EPIPE",
    "ETIMEDOUT",
    "CONNECT_TIMEOUT",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "57P01",
    "57P03",
    "53300",
  ])("%s: the database cannot be reached (transient)", (code) => {
    expect(isConnectionError(withCode(code))).toBe(true);
    expect(isTransientDbError(withCode(code))).toBe(true);
  });

  it("a write after the server closed the socket is a lost connection, code or not", () => {
    const message = "This socket has been ended by the other party";
    expect(isConnectionError(withCode("EPIPE", message))).toBe(true);
    expect(isConnectionError(new Error(message))).toBe(true);
    expect(isTransientDbError(new Error(message))).toBe(true);
  });

  it("serialization failures and deadlocks are transient, not connection errors", () => {
    for (const code of ["40001", "40P01", "08006", "57014"]) {
      expect(isTransientDbError(withCode(code))).toBe(true);
    }
    expect(isConnectionError(withCode("40001"))).toBe(false);
  });

  it("a query's own failure is neither (retrying the same statement cannot help)", () => {
    for (const code of ["23505", "22P02", "42P01", "42703", "XX000"]) {
      expect(isTransientDbError(withCode(code))).toBe(false);
    }
    expect(isTransientDbError(new Error("boom"))).toBe(false);
    expect(isTransientDbError(null)).toBe(false);
    expect(isTransientDbError(undefined)).toBe(false);
  });

  it("integrity and syntax classes (22, 23, 42) are never transient", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("22", "23", "42"),
        fc.stringMatching(/^[0-9A-Z]{3}$/),
        (cls, rest) => !isTransientDbError(withCode(cls + rest)),
      ),
    );
  });
});
