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
