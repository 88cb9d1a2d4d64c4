import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nextRun, validateSchedule } from "../../local/schedule.ts";

const at = (iso: string) => new Date(iso);

describe("nextRun", () => {
  it.each([
    ["* * * * *", "2026-11-23T10:00:30Z", "2026-11-23T10:01:00.000Z"],
    ["17 * * * *", "2026-11-23T10:17:00Z", "2026-11-23T11:17:00.000Z"],
    ["43 3 * * *", "2026-11-23T10:00:00Z", "2026-11-24T03:43:00.000Z"],
    ["*/15 * * * *", "2026-11-23T10:01:00Z", "2026-11-23T10:15:00.000Z"],
    ["0 0 * * 1", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00.000Z"],
    ["30 seconds", "2026-11-23T10:00:29.999Z", "2026-11-23T10:00:30.000Z"],
    ["30 seconds", "2026-11-23T10:00:30Z", "2026-11-23T10:01:00.000Z"],
    ["5 seconds", "2026-11-23T10:00:01Z", "2026-11-23T10:00:05.000Z"],
  ])("%s after %s → %s", (schedule, after, expected) => {
    expect(nextRun(schedule, at(after)).toISOString()).toBe(expected);
  });

  it("is strictly after, and the next-next is later still", () => {
    fc.assert(fc.property(
      fc.constantFrom("* * * * *", "*/5 * * * *", "17 * * * *", "10 seconds", "59 seconds"),
      fc.date({
        min: at("2020-01-01T00:00:00Z"),
        max: at("2030-01-01T00:00:00Z"),
        noInvalidDate: true,
      }),
      (schedule, after) => {
        const n1 = nextRun(schedule, after);
        expect(n1.getTime()).toBeGreaterThan(after.getTime());
        expect(nextRun(schedule, n1).getTime()).toBeGreaterThan(n1.getTime());
      },
    ));
  });

  it("refuses what pg_cron would refuse", () => {
    for (
      const bad of [
        "60 seconds",
        "0 seconds",
        "every minute",
        "* * * *",
        "* * * * * *",
        "61 * * * *",
      ]
    ) {
      expect(() => validateSchedule(bad), bad).toThrow();
    }
  });
});
