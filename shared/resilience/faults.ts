/**
 * A TEST-ONLY fault hook: lets the fault tests make a function slow or
 * failing without changing its code. OFF by default and inert in production:
 * unless the function's environment has `CUTOVER_FAULT_HOOKS=1`, `withFaults`
 * returns the handler unchanged and nothing reads the fault table.
 *
 * With the hook on, the function reads its rows of cutover.fault_injections
 * (cached for `refreshMs`, default 500 ms) and, for each request whose path
 * starts with a row's `path_prefix` (and whose method matches, if given)
 * before `until`, waits `delay_ms` and then answers `fail_status` if set —
 * otherwise handles the request normally after the delay.
 *
 * @example
 * // functions/ws-fanout/index.ts
 * Deno.serve(withFaults(service.app.fetch, { sql, functionName: "ws-fanout", env }));
 * // a test, with the stack started with CUTOVER_FAULT_HOOKS=1:
 * // insert into cutover.fault_injections (name, function_name, path_prefix, delay_ms)
 * //   values ('slow-relay', 'ws-fanout', '/ws-fanout/relay', 400);
 */
import type { Sql } from "../db/client.ts";

export interface FaultOptions {
  sql: Sql;
  functionName: string;
  env: Record<string, string | undefined>;
  refreshMs?: number;
  log?: (line: string) => void;
}

interface FaultRow {
  name: string;
  path_prefix: string;
  method: string | null;
  delay_ms: number;
  fail_status: number | null;
  until: Date;
}

type Handler = (req: Request, ...rest: never[]) => Response | Promise<Response>;

/** True when the environment enables the hook. */
export function faultHooksEnabled(env: Record<string, string | undefined>): boolean {
  return env.CUTOVER_FAULT_HOOKS === "1";
}

/** Wraps `handler` with the fault hook when enabled; returns it unchanged otherwise. */
export function withFaults<H extends Handler>(handler: H, options: FaultOptions): H {
  if (!faultHooksEnabled(options.env)) return handler;
  const log = options.log ?? ((line: string) => console.error(line));
  const refreshMs = options.refreshMs ?? 500;
  log(`fault hooks ON for ${options.functionName} (CUTOVER_FAULT_HOOKS=1): test use only`);
  let faults: FaultRow[] = [];
  let readAt = -Infinity;
  let reading: Promise<void> | undefined;

  function refresh(): Promise<void> {
    reading ??= options.sql<FaultRow[]>`
      select name, path_prefix, method, delay_ms, fail_status, until
      from cutover.fault_injections
      where function_name = ${options.functionName} and until > now()`
      .then((rows) => {
        faults = [...rows];
      }, () => {
        // Database down: keep the last faults.
      })
      .finally(() => {
        readAt = Date.now();
        reading = undefined;
      });
    return reading;
  }

  const wrapped = async (req: Request, ...rest: never[]): Promise<Response> => {
    if (Date.now() - readAt > refreshMs) await refresh();
    const path = new URL(req.url).pathname;
    const now = Date.now();
    const fault = faults.find((f) =>
      path.startsWith(f.path_prefix) && (!f.method || f.method.toUpperCase() === req.method) &&
      new Date(f.until).getTime() > now
    );
    if (fault) {
      if (fault.delay_ms > 0) await new Promise((r) => setTimeout(r, fault.delay_ms));
      if (fault.fail_status) {
        return Response.json(
          { error: { code: "injected_fault", message: `fault "${fault.name}" (test hook)` } },
          { status: fault.fail_status },
        );
      }
    }
    return await handler(req, ...rest);
  };
  return wrapped as H;
}
