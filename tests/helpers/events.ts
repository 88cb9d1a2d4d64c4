/** Building and sending monitoring events in tests. */
import { randomUUID } from "node:crypto";
import { gzipSync } from "node:zlib";
import { fetchJson, functionUrl, stack } from "./http.ts";

let counter = 0;

/** A valid event; `source` defaults to a fresh unique one so tests never collide. */
export function makeEvent(over: Record<string, unknown> = {}): Record<string, unknown> {
  counter++;
  return {
    source: `test-${randomUUID().slice(0, 8)}`,
    sequence_id: counter,
    event_type: "service.error",
    timestamp: new Date().toISOString(),
    data: { message: `event ${counter}`, value: counter },
    ...over,
  };
}

export interface IngestBody {
  stored: number;
  duplicates: number;
  rejected: number;
  results: {
    index: number;
    id?: string;
    status: string;
    routes?: string[];
    error?: { code: string; message: string };
  }[];
  error?: { code: string; message: string; [k: string]: unknown };
}

/** POSTs to ingest with the producer key (or `key`), JSON or gzip. */
export function ingest(
  body: unknown,
  options: {
    key?: string | null;
    gzip?: boolean;
    headers?: Record<string, string>;
    raw?: string | Uint8Array;
  } = {},
) {
  const key = options.key === undefined ? stack().info.producerKey : options.key;
  const text = options.raw ?? JSON.stringify(body);
  const payload = options.gzip
    ? gzipSync(typeof text === "string" ? Buffer.from(text) : text)
    : text;
  return fetchJson<IngestBody>(functionUrl("ingest"), {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(options.gzip ? { "content-encoding": "gzip" } : {}),
      ...options.headers,
    },
    body: payload as BodyInit,
  });
}
