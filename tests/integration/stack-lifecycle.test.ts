/**
 * `npm start` as a user lives with it: a clean stop leaves no process
 * behind and keeps the data; a restart reuses it; --reset empties it; a
 * second instance or a busy port gets a clear message, not a stack trace.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/ports.ts";
import { repoRoot } from "../../local/toolchain.ts";
import { makeEvent } from "../helpers/events.ts";
import { alive, descendants } from "../helpers/processes.ts";
import { removeStateDir, spawnStack } from "../helpers/spawn-stack.ts";

const stateDir = mkdtempSync(path.join(tmpdir(), "cutover-lifecycle-"));
afterAll(() => removeStateDir(stateDir));

/** Runs `npm start`'s entry with args and resolves with its exit code and output. */
function startExpectingFailure(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [
      "--import",
      "tsx",
      path.join(repoRoot, "local", "main.ts"),
      ...args,
    ], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function countEvents(dbUrl: string, source: string): Promise<number> {
  const sql = postgres(dbUrl, { max: 1 });
  try {
    const [row] =
      await sql`select count(*)::int as n from public.monitoring_events where source = ${source}`;
    return row!.n as number;
  } finally {
    await sql.end();
  }
}

describe("stack lifecycle", () => {
  const event = makeEvent();

  it("stops cleanly, keeps data, refuses a second instance and a busy port", async () => {
    const stack = await spawnStack({ stateDir });
    afterAll(() => stack.stop());
    const res = await fetch(`${stack.info.apiUrl}/functions/v1/ingest`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${stack.info.producerKey}`,
      },
      body: JSON.stringify(event),
    });
    expect(res.status).toBe(200);

    const second = await startExpectingFailure([
      "--state-dir",
      stateDir,
      "--api-port",
      String(await freePort()),
    ]);
    expect(second.code).toBe(1);
    expect(second.output).toContain("cutover is already running");
    expect(second.output).not.toMatch(/\n\s+at /);

    const otherDir = mkdtempSync(path.join(tmpdir(), "cutover-busy-"));
    const busy = await startExpectingFailure([
      "--state-dir",
      otherDir,
      "--api-port",
      String(stack.ports.api),
    ]);
    removeStateDir(otherDir);
    expect(busy.code).toBe(1);
    expect(busy.output).toContain(`Port ${stack.ports.api} (API gateway) is already in use`);
    expect(busy.output).not.toMatch(/\n\s+at /);

    const children = descendants(stack.process.pid!);
    expect(children.length).toBeGreaterThanOrEqual(3);
    expect(await stack.stop()).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(children.filter(alive)).toEqual([]);
    expect(existsSync(path.join(stateDir, "stack.json"))).toBe(false);
  }, 120_000);

  it("restarts on the same data, and --reset starts empty", async () => {
    const again = await spawnStack({ stateDir });
    try {
      expect(await countEvents(again.info.dbUrl, event.source as string)).toBe(1);
    } finally {
      expect(await again.stop()).toBe(0);
    }
    const reset = await spawnStack({ stateDir, extraArgs: ["--reset"] });
    try {
      expect(await countEvents(reset.info.dbUrl, event.source as string)).toBe(0);
    } finally {
      expect(await reset.stop()).toBe(0);
    }
  }, 120_000);
});
