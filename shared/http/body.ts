/**
 * Reading a request body within a byte limit, gzip included: the limit counts
 * bytes after decompression and reading stops the moment it is passed, so a
 * decompression bomb costs at most the limit.
 */
import { errorResponse } from "./errors.ts";

export type BodyResult = { ok: true; text: string } | { ok: false; response: Response };

/**
 * Reads `req`'s body as UTF-8 text. Answers 413 past `maxBytes`, 415 for a
 * content encoding other than gzip/identity, 400 for corrupt gzip or invalid UTF-8.
 */
export async function readBodyText(req: Request, maxBytes: number): Promise<BodyResult> {
  const encoding = (req.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding !== "identity" && encoding !== "gzip") {
    return {
      ok: false,
      response: errorResponse(
        415,
        "unsupported_encoding",
        `Content-Encoding "${encoding}" is not supported; use gzip or none`,
      ),
    };
  }
  const tooLarge = () => ({
    ok: false as const,
    response: errorResponse(
      413,
      "request_too_large",
      `Request body exceeds ${maxBytes} bytes after decompression`,
      {
        limit_bytes: maxBytes,
      },
    ),
  });
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) return tooLarge();
  if (!req.body) return { ok: true, text: "" };

  let stream: ReadableStream<Uint8Array> = req.body;
  if (encoding === "gzip") {
    stream = stream.pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    );
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        return tooLarge();
      }
      chunks.push(value);
    }
  } catch {
    return {
      ok: false,
      response: errorResponse(
        400,
        encoding === "gzip" ? "malformed_gzip" : "unreadable_body",
        encoding === "gzip" ? "The body is not valid gzip" : "The request body could not be read",
      ),
    };
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return { ok: true, text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return {
      ok: false,
      response: errorResponse(400, "invalid_utf8", "The body is not valid UTF-8"),
    };
  }
}

export type JsonResult = { ok: true; json: unknown } | { ok: false; response: Response };

export interface ReadJsonOptions {
  /** Answer 415 unless Content-Type is application/json (an empty body allowed by `empty` is exempt). */
  requireJsonType?: boolean;
  /** The value an empty (or all-whitespace) body stands for; without it, an empty body is malformed JSON. */
  empty?: unknown;
}

/**
 * Reads `req`'s body as JSON within `maxBytes` (see readBodyText for 413/415/400
 * on the bytes themselves): 415 for a wrong Content-Type when required, 400
 * `malformed_json` with the parser's reason when the text is not JSON.
 *
 * @example
 * const body = await readJson(req, 64 * 1024, { requireJsonType: true, empty: {} });
 * if (!body.ok) return body.response;
 */
export async function readJson(
  req: Request,
  maxBytes: number,
  options: ReadJsonOptions = {},
): Promise<JsonResult> {
  const body = await readBodyText(req, maxBytes);
  if (!body.ok) return body;
  if (options.empty !== undefined && body.text.trim() === "") {
    return { ok: true, json: options.empty };
  }
  if (options.requireJsonType) {
    const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json") {
      return {
        ok: false,
        response: errorResponse(
          415,
          "unsupported_media_type",
          `Content-Type must be application/json, got "${type || "(none)"}"`,
        ),
      };
    }
  }
  try {
    return { ok: true, json: JSON.parse(body.text) };
  } catch (error) {
    return {
      ok: false,
      response: errorResponse(
        400,
        "malformed_json",
        `The body is not valid JSON: ${(error as Error).message}`,
      ),
    };
  }
}
