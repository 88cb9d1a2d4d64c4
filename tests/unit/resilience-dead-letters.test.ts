import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  afterAttempt,
  classifyDeliveryError,
  type DeadLetterStatus,
  type DeliveryOutcome,
} from "../../shared/resilience/dead-letters.ts";

const S = { base_ms: 5_000, cap_ms: 600_000, max_attempts: 4 };
const NOW = 1_700_000_000_000;
const fail: DeliveryOutcome = { ok: false, error: "HTTP 503: down", permanent: false };

describe("afterAttempt: the dead letter's state machine", () => {
  const rows: {
    name: string;
    status: DeadLetterStatus;
    attempts: number;
    outcome: DeliveryOutcome;
    expect: { status: DeadLetterStatus; attempts: number; next: number | null };
  }[] = [
    {
      name: "pending, delivered",
      status: "pending",
      attempts: 0,
      outcome: { ok: true },
      expect: { status: "delivered", attempts: 1, next: null },
    },
    {
      name: "pending, failed with attempts left → pending, due after a jittered backoff",
      status: "pending",
      attempts: 0,
      outcome: fail,
      expect: { status: "pending", attempts: 1, next: NOW + 2_500 },
    },
    {
      name: "the third failure waits up to 4 × base",
      status: "pending",
      attempts: 2,
      outcome: fail,
      expect: { status: "pending", attempts: 3, next: NOW + 10_000 },
    },
    {
      name: "the last allowed attempt fails → dead",
      status: "pending",
      attempts: 3,
      outcome: fail,
      expect: { status: "dead", attempts: 4, next: null },
    },
    {
      name: "a permanent error → dead at once",
      status: "pending",
      attempts: 0,
      outcome: { ok: false, error: "HTTP 400: bad", permanent: true },
      expect: { status: "dead", attempts: 1, next: null },
    },
    {
      name: "a delivered row is not touched by a late attempt",
      status: "delivered",
      attempts: 2,
      outcome: fail,
      expect: { status: "delivered", attempts: 2, next: null },
    },
    {
      name: "a dead row is not touched (only a replay revives it)",
      status: "dead",
      attempts: 4,
      outcome: { ok: true },
      expect: { status: "dead", attempts: 4, next: null },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const u = afterAttempt(
        { status: r.status, attempts: r.attempts, lastError: null },
        r.outcome,
        S,
        NOW,
        () => 0.5,
      );
      expect(u.status).toBe(r.expect.status);
      expect(u.attempts).toBe(r.expect.attempts);
      expect(u.nextAttemptAt).toBe(r.expect.next);
    });
  }

  it("any run of attempts ends delivered or dead within max_attempts, never sooner than due", () => {
    fc.assert(fc.property(
      fc.array(
        fc.oneof(
          fc.constant<DeliveryOutcome>({ ok: true }),
          fc.constant(fail),
          fc.constant<DeliveryOutcome>({ ok: false, error: "HTTP 400", permanent: true }),
        ),
        { minLength: 1, maxLength: 30 },
      ),
      fc.integer({ min: 1, max: 15 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (outcomes, max, r) => {
        const settings = { ...S, max_attempts: max };
        let row = {
          status: "pending" as DeadLetterStatus,
          attempts: 0,
          lastError: null as string | null,
        };
        for (const o of outcomes) {
          const u = afterAttempt(row, o, settings, NOW, () => r);
          if (row.status !== "pending") {
            expect(u.status).toBe(row.status);
            expect(u.attempts).toBe(row.attempts);
          } else {
            expect(u.attempts).toBe(row.attempts + 1);
            if (u.status === "pending") {
              expect(u.attempts).toBeLessThan(max);
              expect(u.nextAttemptAt).toBeGreaterThanOrEqual(NOW);
              expect(u.nextAttemptAt! - NOW).toBeLessThan(
                Math.min(S.cap_ms, S.base_ms * 2 ** (u.attempts - 1)),
              );
            } else expect(u.nextAttemptAt).toBeNull();
            if (o.ok) expect(u.status).toBe("delivered");
          }
          row = { status: u.status, attempts: u.attempts, lastError: u.lastError };
          expect(row.attempts).toBeLessThanOrEqual(max);
        }
      },
    ));
  });
});

describe("classifyDeliveryError", () => {
  const table: [string, boolean, boolean, boolean?][] = [
    ["HTTP 400: invalid_relay", true, false],
    ["HTTP 413: too large", true, false],
    ["HTTP 401: unauthorized", false, false],
    ["HTTP 500: internal", false, false],
    ["HTTP 502: Function ws-fanout failed to answer", false, true],
    ["HTTP 503: Function ws-fanout is not running", false, true],
    ['HTTP 503: {"error":{"code":"busy","message":"Too many relays waiting"}}', false, false, true],
    ['HTTP 503: {"error":{"code":"database_unavailable"}}', false, true],
    ["HTTP 504: timeout", false, true],
    ["error sending request: Connection refused (os error 111)", false, true],
    ["The signal has been aborted", false, true],
  ];
  for (const [error, permanent, connection, busy = false] of table) {
    it(error, () => expect(classifyDeliveryError(error)).toEqual({ permanent, connection, busy }));
  }
});
