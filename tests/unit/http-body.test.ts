import fc from "fast-check";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { readBodyText, readJson } from "../../shared/http/body.ts";

function post(body: BodyInit | null, headers: Record<string, string> = {}): Request {
  return new Request("http://localhost/x", { method: "POST", body, headers });
}

async function refusal(result: { ok: boolean; response?: Response }) {
  expect(result.ok).toBe(false);
  const res = result.response!;
  return {
    status: res.status,
    error: ((await res.json()) as { error: Record<string, unknown> }).error,
  };
}

describe("readBodyText", () => {
  it("reads gzip and counts the limit after decompression (a bomb costs at most the limit)", async () => {
    const text = JSON.stringify({ hello: "world" });
    const ok = await readBodyText(post(gzipSync(text), { "content-encoding": "gzip" }), 1024);
    expect(ok).toEqual({ ok: true, text });
    const bomb = gzipSync(Buffer.alloc(10_000_000, 0x20)); // ~10 KB compressed, 10 MB inflated
    expect(bomb.byteLength).toBeLessThan(20_000);
    const r = await refusal(
      await readBodyText(post(bomb, { "content-encoding": "gzip" }), 64 * 1024),
    );
    expect(r).toEqual({
      status: 413,
      error: {
        code: "request_too_large",
        message: "Request body exceeds 65536 bytes after decompression",
        limit_bytes: 65536,
      },
    });
  });

  it("refuses other encodings, corrupt gzip and invalid UTF-8 with their own reasons", async () => {
    expect(await refusal(await readBodyText(post("x", { "content-encoding": "br" }), 100)))
      .toMatchObject({ status: 415, error: { code: "unsupported_encoding" } });
    expect(
      await refusal(await readBodyText(post("not gzip", { "content-encoding": "gzip" }), 100)),
    ).toMatchObject({ status: 400, error: { code: "malformed_gzip" } });
    expect(await refusal(await readBodyText(post(new Uint8Array([0x7b, 0xff, 0x7d])), 100)))
      .toMatchObject({ status: 400, error: { code: "invalid_utf8" } });
  });

  it("refuses a declared Content-Length over the limit before reading", async () => {
    const req = post("{}", { "content-length": "5000" });
    expect(await refusal(await readBodyText(req, 100))).toMatchObject({ status: 413 });
  });
});

describe("readJson", () => {
  it("returns any JSON value it is given, unchanged", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => {
        const text = JSON.stringify(value);
        const result = await readJson(post(text), 1_000_000);
        expect(result).toEqual({ ok: true, json: JSON.parse(text) });
      }),
      { numRuns: 200 },
    );
  });

  it("answers 400 malformed_json with the parser's reason", async () => {
    const r = await refusal(await readJson(post('{"a":'), 100));
    expect(r.status).toBe(400);
    expect(r.error.code).toBe("malformed_json");
    expect(String(r.error.message)).toMatch(/^The body is not valid JSON: ./);
  });

  it("requires application/json only when asked, parameters allowed", async () => {
    const typed = { "content-type": "Application/JSON; charset=utf-8" };
    expect(await readJson(post("[1]", typed), 100, { requireJsonType: true })).toEqual({
      ok: true,
      json: [1],
    });
    expect(await readJson(post("[1]", { "content-type": "text/plain" }), 100)).toEqual({
      ok: true,
      json: [1],
    });
    expect(
      await refusal(
        await readJson(post("[1]", { "content-type": "text/plain" }), 100, {
          requireJsonType: true,
        }),
      ),
    ).toEqual({
      status: 415,
      error: {
        code: "unsupported_media_type",
        message: 'Content-Type must be application/json, got "text/plain"',
      },
    });
  });

  it("an empty body stands for `empty` when given (whatever the type), else it is malformed", async () => {
    expect(await readJson(post("  \n"), 100, { requireJsonType: true, empty: {} })).toEqual({
      ok: true,
      json: {},
    });
    expect(await readJson(post(null), 100, { empty: null })).toEqual({ ok: true, json: null });
    expect(await refusal(await readJson(post(""), 100))).toMatchObject({
      status: 400,
      error: { code: "malformed_json" },
    });
  });
});
