/**
 * The dashboard's flag edits (diff over a snapshot, one batch, API issue
 * paths mapped back to inputs), its session credential parsing and its API
 * error reading — against the real flags request parser, so a batch the
 * dashboard builds is one the flags API accepts.
 */
import { describe, expect, it } from "vitest";
import { builtInDefaults } from "../../shared/config/settings.ts";
import { parseBatch } from "../../shared/flags/changes.ts";
import { parseApiError } from "../../dashboard/src/api.ts";
import {
  batchChanges,
  describeEdits,
  editCategory,
  editCount,
  editSetting,
  emptyEdits,
  fieldOfIssue,
  rebase,
  type Snapshot,
} from "../../dashboard/src/core/flag-edits.ts";
import { credentialFrom, readClaims } from "../../dashboard/src/session.ts";

function snapshot(version = 7): Snapshot {
  const d = builtInDefaults();
  return { version, categories: d.categories, settings: d.settings as Record<string, unknown> };
}

describe("flag edits", () => {
  it("records only what differs from the snapshot", () => {
    const s = snapshot();
    const edits = emptyEdits();
    editCategory(edits, s, "performance", "percentage", 75);
    editCategory(edits, s, "performance", "adapters", ["realtime", "websocket"]);
    editCategory(edits, s, "critical", "percentage", 100); // unchanged
    editSetting(edits, s, "global_override", "realtime_only");
    expect(edits.categories).toEqual({
      performance: { percentage: 75, adapters: ["realtime", "websocket"] },
    });
    expect(editCount(edits)).toBe(3);
    editCategory(edits, s, "performance", "percentage", 50); // back to the snapshot's value
    expect(editCount(edits)).toBe(2);
    expect(describeEdits(edits, s)).toEqual([
      "performance.adapters: [websocket] → [realtime, websocket]",
      'global_override: null → "realtime_only"',
    ]);
  });

  it("builds a batch the flags API's own parser accepts", () => {
    const s = snapshot(12);
    const edits = emptyEdits();
    editCategory(edits, s, "user_activity", "enabled", true);
    editCategory(edits, s, "user_activity", "percentage", 12.5);
    editCategory(edits, s, "debug", "delivery_mode", "broadcast");
    editSetting(edits, s, "anon_read_enabled", true);
    const parsed = parseBatch({
      expected_version: s.version,
      reason: "ramp user activity",
      changes: batchChanges(edits),
    });
    expect(parsed).toEqual({
      ok: true,
      value: {
        expectedVersion: 12,
        reason: "ramp user activity",
        changes: [
          {
            type: "category",
            category: "user_activity",
            changes: { enabled: true, percentage: 12.5 },
          },
          { type: "category", category: "debug", changes: { delivery_mode: "broadcast" } },
          { type: "setting", key: "anon_read_enabled", value: true },
        ],
      },
    });
  });

  it("maps the API's issue paths back to the input at fault", () => {
    const s = snapshot();
    const edits = emptyEdits();
    editCategory(edits, s, "performance", "percentage", 12.345);
    editSetting(edits, s, "adapter_health", {
      websocket: { error_threshold: 2, latency_threshold_ms: 200 },
    });
    const changes = batchChanges(edits);
    const parsed = parseBatch({ expected_version: 1, reason: "x", changes });
    expect(parsed.ok).toBe(false);
    const issues = parsed.ok ? [] : parsed.error.issues;
    const fields = issues.map((i) => fieldOfIssue(i.path, changes));
    expect(fields).toContainEqual({
      kind: "category",
      category: "performance",
      field: "percentage",
    });
    expect(fields).toContainEqual({ kind: "setting", key: "adapter_health" });
    expect(fields).toContainEqual({ kind: "reason" });
  });

  it("rebases pending edits onto a newer snapshot, dropping what it already holds", () => {
    const s = snapshot(3);
    const edits = emptyEdits();
    editCategory(edits, s, "performance", "percentage", 75);
    editCategory(edits, s, "system", "enabled", false);
    const newer = snapshot(4);
    newer.categories.performance = { ...newer.categories.performance, percentage: 75 };
    expect(rebase(edits, newer).categories).toEqual({ system: { enabled: false } });
  });
});

describe("session credentials", () => {
  const jwt = (claims: object) =>
    `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;

  it("reads the role of a pasted JWT and refuses what cannot read", () => {
    expect(readClaims(jwt({ role: "service_role" }))).toEqual({
      role: "service_role",
      exp: undefined,
    });
    expect(credentialFrom(` ${jwt({ role: "service_role", exp: 4_000_000_000 })} `)).toMatchObject({
      role: "service_role",
      expiresAt: 4_000_000_000_000,
    });
    expect(credentialFrom(jwt({ role: "authenticated", sub: "u" }))).toMatchObject({
      role: "authenticated",
    });
    expect(credentialFrom(jwt({ role: "anon" }))).toHaveProperty("error");
    expect(credentialFrom(jwt({ role: "authenticated", exp: 1 }))).toEqual({
      error: "That token has expired.",
    });
    expect(credentialFrom("cutover_pk_not-a-jwt")).toHaveProperty("error");
    expect(credentialFrom("")).toHaveProperty("error");
  });
});

describe("API errors", () => {
  it("reads the project's error shape, including the flags API's issues and current version", () => {
    expect(parseApiError(409, {
      error: { code: "version_conflict", message: "stale", current_version: 9 },
    })).toEqual({
      status: 409,
      code: "version_conflict",
      message: "stale",
      issues: undefined,
      currentVersion: 9,
    });
    expect(
      parseApiError(400, {
        error: {
          code: "invalid_body",
          message: "bad",
          issues: [{ path: "reason", message: "short" }],
        },
      }).issues,
    ).toEqual([{ path: "reason", message: "short" }]);
    expect(parseApiError(503, { code: 503, message: "Function flags is not running" }))
      .toMatchObject({
        code: "http_503",
        message: "Function flags is not running",
      });
    expect(parseApiError(502, null, "<html>bad gateway</html>").message).toBe(
      "<html>bad gateway</html>",
    );
  });
});
