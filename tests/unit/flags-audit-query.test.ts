import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_AUDIT_LIMIT,
  MAX_AUDIT_LIMIT,
  parseAuditQuery,
} from "../../shared/flags/audit-query.ts";

const parse = (query: string) => parseAuditQuery(new URLSearchParams(query));

describe("GET /flags/audit parameters", () => {
  it("defaults to the newest 100 entries of every table", () => {
    expect(parse("")).toEqual({ ok: true, value: { limit: DEFAULT_AUDIT_LIMIT } });
  });

  it("reads every filter", () => {
    expect(parse(
      "table=settings&key=global_override&actor=service_role:alice&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00%2B02:00&limit=5&before_id=42",
    )).toEqual({
      ok: true,
      value: {
        table: "settings",
        key: "global_override",
        actor: "service_role:alice",
        since: new Date("2026-01-01T00:00:00Z"),
        until: new Date("2026-01-01T22:00:00Z"),
        limit: 5,
        beforeId: 42,
      },
    });
  });

  it("accepts every limit in 1..500 and nothing else", () => {
    fc.assert(fc.property(fc.integer({ min: -1000, max: 2000 }), (n) => {
      const r = parse(`limit=${n}`);
      expect(r.ok).toBe(n >= 1 && n <= MAX_AUDIT_LIMIT);
      if (r.ok) expect(r.value.limit).toBe(n);
    }));
  });

  it.each([
    ["limit=abc", "limit"],
    ["limit=1.5", "limit"],
    ["limit=", "limit"],
    ["before_id=0", "before_id"],
    ["before_id=-3", "before_id"],
    ["table=producers", "table"],
    ["since=yesterday", "since"],
    ["until=2026-01-01", "until"],
    ["since=2026-01-01T00:00:00", "since"],
    ["since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"],
    ["since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since"],
    ["key=", "key"],
    [`actor=${"a".repeat(201)}`, "actor"],
    ["limit=5&limit=6", "limit"],
    ["order=asc", ""],
  ])("refuses %s, naming %j", (query, path) => {
    const r = parse(query);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.issues[0]!.path).toBe(path);
  });
});
