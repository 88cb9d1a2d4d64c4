/**
 * A function instance whose port another process bound first (between the
 * stack choosing it and Deno listening, or while the instance was stopped)
 * starts on another port instead of failing the stack — with the real Deno
 * and the real health function.
 */
import { createServer, type Server } from "node:net";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { createFunctionInstance, type FunctionInstance } from "../../local/functions.ts";
import { freePort } from "../../local/ports.ts";
import { repoRoot } from "../../local/toolchain.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function occupy(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer().once("error", reject).listen(port, "127.0.0.1", () => {
      cleanups.push(() => new Promise((r) => server.close(() => r())));
      resolve(server);
    });
  });
}

function healthInstance(port: number, lines: string[]): FunctionInstance {
  const instance = createFunctionInstance(
    {
      name: "health",
      entrypoint: path.join(repoRoot, "functions", "health", "index.ts"),
      verifyJwt: false,
    },
    0,
    port,
    {
      // Nothing here reaches a database: the test only needs the function to listen.
      env: { SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:9/postgres" },
      log: (line) => lines.push(line),
    },
  );
  cleanups.push(() => instance.stop());
  return instance;
}

it("starts on another port when its port was taken, and says so", { timeout: 60_000 }, async () => {
  const taken = await freePort();
  await occupy(taken);
  const lines: string[] = [];
  const instance = healthInstance(taken, lines);
  await instance.start();
  expect(instance.ready).toBe(true);
  expect(instance.port).not.toBe(taken);
  expect(lines).toContain(`[health] port ${taken} was taken meanwhile; starting on another`);
  // It really listens there (the health function answers, database or not).
  const res = await fetch(`http://127.0.0.1:${instance.port}/health`);
  expect([200, 503]).toContain(res.status);
  await res.body?.cancel();

  // A restart after someone took its new port moves it again.
  await instance.stop();
  const second = instance.port;
  await occupy(second);
  await instance.start();
  expect(instance.port).not.toBe(second);
  expect(instance.ready).toBe(true);
});
