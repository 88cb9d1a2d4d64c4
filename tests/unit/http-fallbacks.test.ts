import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { answerFallbacks } from "../../shared/http/fallbacks.ts";

function appThrowing(error: unknown) {
  const lines: string[] = [];
  const app = new Hono();
  app.get("/boom", () => {
    throw error;
  });
  answerFallbacks(app, {
    name: "flags",
    log: (l) => lines.push(l),
    outcome: "Nothing was changed.",
    retryAfterS: 7,
  });
  return { app, lines };
}

describe("answerFallbacks", () => {
  it("answers 404 naming the function, method and path", async () => {
    const { app } = appThrowing(new Error("unused"));
    const res = await app.request("/nope?x=1", { method: "DELETE" });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: "not_found", message: "No such flags endpoint: DELETE /nope" },
    });
  });

  it.each(["08006", "57P01", "53300", "40001"])(
    "answers 503 with Retry-After for a transient database error (%s)",
    async (code) => {
      const { app, lines } = appThrowing(Object.assign(new Error("terminating"), { code }));
      const res = await app.request("/boom");
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("7");
      const body = await res.json() as { error: { code: string; message: string } };
      expect(body.error.code).toBe("database_unavailable");
      expect(body.error.message).toBe(
        "The database is unavailable. Nothing was changed. Retry later.",
      );
      expect(lines).toEqual(["flags: database unavailable: terminating"]);
    },
  );

  it("answers 500 without leaking the error, and logs it", async () => {
    const { app, lines } = appThrowing(
      Object.assign(new Error("secret detail"), { code: "23505" }),
    );
    const res = await app.request("/boom");
    expect(res.status).toBe(500);
    expect(res.headers.get("retry-after")).toBeNull();
    const text = await res.text();
    expect(text).not.toContain("secret detail");
    expect(JSON.parse(text)).toEqual({
      error: {
        code: "internal_error",
        message: "The request failed unexpectedly. Nothing was changed.",
      },
    });
    expect(lines[0]).toMatch(/^flags: failed: Error: secret detail/);
  });
});
