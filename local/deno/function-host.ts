/**
 * Runs one Edge Function entrypoint locally the way Supabase's edge runtime
 * does: the entry calls `Deno.serve(handler)` unchanged; the host binds it to
 * the port the local stack chose, provides `EdgeRuntime.waitUntil`, and on
 * SIGTERM dispatches `beforeunload`, lets in-flight requests and waitUntil work
 * finish (bounded), then exits.
 *
 * Environment: CUTOVER_FUNCTION_ENTRYPOINT (absolute path), CUTOVER_FUNCTION_PORT.
 */
import { pathToFileURL } from "node:url";

const entrypoint = Deno.env.get("CUTOVER_FUNCTION_ENTRYPOINT");
const port = Number(Deno.env.get("CUTOVER_FUNCTION_PORT"));
const shutdownGraceMs = Number(Deno.env.get("CUTOVER_SHUTDOWN_GRACE_MS") ?? "10000");
if (!entrypoint || !Number.isInteger(port)) {
  throw new Error("CUTOVER_FUNCTION_ENTRYPOINT and CUTOVER_FUNCTION_PORT must be set");
}

const pending = new Set<Promise<unknown>>();
Object.defineProperty(globalThis, "EdgeRuntime", {
  value: {
    waitUntil(promise: Promise<unknown>): void {
      pending.add(promise);
      promise.catch(() => {}).finally(() => pending.delete(promise));
    },
  },
});

let server: Deno.HttpServer | undefined;
const originalServe = Deno.serve;
type ServeHandler = Deno.ServeHandler<Deno.NetAddr>;

// deno-lint-ignore no-explicit-any
(Deno as any).serve = (first: unknown, second?: unknown): Deno.HttpServer => {
  let handler: ServeHandler;
  let options: Record<string, unknown> = {};
  if (typeof first === "function") handler = first as ServeHandler;
  else if (typeof second === "function") {
    options = first as Record<string, unknown>;
    handler = second as ServeHandler;
  } else {
    const { handler: h, ...rest } = first as { handler: ServeHandler };
    options = rest;
    handler = h;
  }
  server = originalServe({
    ...options,
    port,
    hostname: "127.0.0.1",
    onListen: () => console.log(`function-host: listening on 127.0.0.1:${port}`),
  }, handler);
  return server;
};

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  const deadline = new Promise((resolve) => setTimeout(resolve, shutdownGraceMs));
  globalThis.dispatchEvent(new CustomEvent("beforeunload", { detail: { reason: signal } }));
  await Promise.race([
    (async () => {
      // Let beforeunload handlers act first (ws-fanout closes its sockets with
      // 1012 so clients resume): otherwise Deno's own 1001 close overtakes them.
      await new Promise((resolve) => setTimeout(resolve, 250));
      await server?.shutdown();
      while (pending.size > 0) await Promise.allSettled([...pending]);
    })(),
    deadline,
  ]);
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", () => void shutdown("SIGTERM"));
// Runs in its own process group (so a terminal Ctrl-C reaches only the
// stack); if the stack dies without stopping it, exit rather than linger.
const parent = Deno.ppid;
setInterval(() => {
  if (Deno.ppid !== parent) void shutdown("parent exited");
}, 1000);
Deno.addSignalListener("SIGINT", () => void shutdown("SIGINT"));

await import(pathToFileURL(entrypoint).href);
