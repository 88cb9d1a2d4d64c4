/**
 * Local-only control API under `/_local/` on the gateway, for operators and
 * fault tests: list function instances, and stop, kill (SIGKILL, a crash) or
 * start them; stop and start PostgreSQL (`POST /_local/postgres/{stop,start}`);
 * run a scheduled job now (`POST /_local/scheduler/run/<job>`). Requires the service-role key. Hosted Supabase has no
 * equivalent; nothing in the functions depends on it.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FunctionInstance } from "./functions.ts";
import type { GatewayMount } from "./gateway.ts";

export interface ControlOptions {
  serviceRoleKey: string;
  functions: FunctionInstance[];
  postgres: { readonly running: boolean; stop(): Promise<void>; start(): Promise<void> };
  /** Runs a scheduled job now: `POST /_local/scheduler/run/<job>`. */
  runJob?: (name: string) => Promise<unknown>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function authorized(req: IncomingMessage, key: string): boolean {
  const token = (req.headers.authorization ?? "").replace(/^Bearer\s+/i, "");
  const a = Buffer.from(token);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The `/_local/` mount. */
export function createControlMount(options: ControlOptions): GatewayMount {
  return {
    prefix: "/_local/",
    request: async (req, res) => {
      if (!authorized(req, options.serviceRoleKey)) {
        return json(res, 401, {
          code: 401,
          message: "The local control API requires the service-role key",
        });
      }
      const url = new URL(req.url ?? "/", "http://local");
      const list = () =>
        options.functions.map((f) => ({
          name: f.name,
          index: f.index,
          port: f.port,
          ready: f.ready,
        }));
      if (req.method === "GET" && url.pathname === "/_local/functions") {
        return json(res, 200, list());
      }
      const job = /^\/_local\/scheduler\/run\/([a-z0-9-]+)$/.exec(url.pathname);
      if (req.method === "POST" && job && options.runJob) {
        try {
          return json(res, 200, await options.runJob(job[1]!));
        } catch (error) {
          return json(res, 404, { code: 404, message: (error as Error).message });
        }
      }
      const pg = /^\/_local\/postgres\/(start|stop)$/.exec(url.pathname);
      if (req.method === "POST" && pg) {
        try {
          await (pg[1] === "stop" ? options.postgres.stop() : options.postgres.start());
        } catch (error) {
          return json(res, 500, { code: 500, message: (error as Error).message });
        }
        return json(res, 200, { postgres: { running: options.postgres.running } });
      }
      const match = /^\/_local\/functions\/([a-z0-9-]+)\/(start|stop|kill)$/.exec(url.pathname);
      if (req.method !== "POST" || !match) {
        return json(res, 404, { code: 404, message: "Unknown control route" });
      }
      const [, name, action] = match;
      const indexParam = url.searchParams.get("index");
      const targets = options.functions.filter((f) =>
        f.name === name && (indexParam === null || f.index === Number(indexParam))
      );
      if (targets.length === 0) {
        return json(res, 404, { code: 404, message: `No such function instance: ${name}` });
      }
      try {
        await Promise.all(
          targets.map((f) =>
            action === "start" ? f.start() : action === "stop" ? f.stop() : f.kill()
          ),
        );
      } catch (error) {
        return json(res, 500, { code: 500, message: (error as Error).message });
      }
      json(res, 200, list().filter((f) => f.name === name));
    },
  };
}
