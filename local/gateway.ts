/**
 * The local API gateway on the API port (54321), standing in for hosted
 * Supabase's edge: routes `/functions/v1/NAME/...` to a running instance of the
 * function (path rewritten to `/NAME/...` as on hosted Supabase), enforces
 * `verify_jwt` from config.toml, passes WebSocket upgrades through, answers 404
 * for unknown functions and 503 while a function has no instance up, and
 * drains in-flight requests before it stops.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import { jwtVerify } from "jose";
import type { FunctionInstance } from "./functions.ts";

export interface GatewayRoute {
  verifyJwt: boolean;
  instances: FunctionInstance[];
}

/** Extra handlers mounted on the gateway (local Realtime, local control API). */
export interface GatewayMount {
  prefix: string;
  request?: (req: IncomingMessage, res: ServerResponse) => void;
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export interface GatewayOptions {
  port: number;
  jwtSecret: string;
  routes: Map<string, GatewayRoute>;
  mounts?: GatewayMount[];
  log: (line: string) => void;
}

export interface Gateway {
  /** Stops accepting and waits (bounded) for in-flight HTTP requests to be answered. */
  drain(timeoutMs?: number): Promise<void>;
  /** Closes every connection left, upgraded WebSockets included. */
  close(): void;
}

const FUNCTIONS_PREFIX = "/functions/v1/";
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ code: status, message });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Starts the gateway; resolves once it listens. Rejects with a clear message when the port is taken. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const secret = new TextEncoder().encode(options.jwtSecret);
  const cursors = new Map<string, number>();
  const upgraded = new Set<Duplex>();
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | undefined;

  async function checkJwt(req: IncomingMessage): Promise<string | null> {
    const header = req.headers.authorization;
    if (!header) return "Missing authorization header";
    const [scheme, token] = header.split(" ");
    if (scheme?.toLowerCase() !== "bearer" || !token) return "Invalid authorization header";
    try {
      await jwtVerify(token, secret, { algorithms: ["HS256"] });
      return null;
    } catch {
      return "Invalid JWT";
    }
  }

  function resolve(
    url: string,
  ): { name: string; path: string; route: GatewayRoute | undefined } | null {
    if (!url.startsWith(FUNCTIONS_PREFIX)) return null;
    const rest = url.slice(FUNCTIONS_PREFIX.length);
    const name = rest.split(/[/?]/)[0] ?? "";
    return { name, path: `/${rest}`, route: options.routes.get(name) };
  }

  function pickInstance(name: string, route: GatewayRoute): FunctionInstance | undefined {
    const up = route.instances.filter((i) => i.ready);
    if (up.length === 0) return undefined;
    const next = (cursors.get(name) ?? 0) % up.length;
    cursors.set(name, next + 1);
    return up[next];
  }

  const server = http.createServer(async (req, res) => {
    inFlight++;
    res.once("close", () => {
      inFlight--;
      if (draining && inFlight === 0) idle?.();
    });
    if (draining) {
      sendJson(res, 503, { code: 503, message: "The local stack is shutting down" }, {
        "retry-after": "5",
      });
      return;
    }
    const url = req.url ?? "/";
    const mount = options.mounts?.find((m) => url.startsWith(m.prefix) && m.request);
    if (mount) return mount.request!(req, res);

    const target = resolve(url);
    if (!target) {
      return sendJson(res, 404, { code: 404, message: `No route for ${url.split("?")[0]}` });
    }
    if (!target.route) {
      return sendJson(res, 404, { code: 404, message: `Function not found: ${target.name}` });
    }
    if (target.route.verifyJwt && req.method !== "OPTIONS") {
      const problem = await checkJwt(req);
      if (problem) return sendJson(res, 401, { code: 401, message: problem });
    }
    const instance = pickInstance(target.name, target.route);
    if (!instance) {
      return sendJson(res, 503, { code: 503, message: `Function ${target.name} is not running` }, {
        "retry-after": "1",
      });
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    headers["x-forwarded-for"] = req.socket.remoteAddress ?? "";
    headers.host = `127.0.0.1:${instance.port}`;
    const upstream = http.request({
      host: "127.0.0.1",
      port: instance.port,
      method: req.method,
      path: target.path,
      headers,
    }, (up) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    upstream.on("error", (error) => {
      // A function may answer (413, 401…) before reading the whole body and
      // close its side; the answer has been relayed, so that is not a failure.
      if (res.writableEnded) return;
      options.log(`[gateway] ${target.name}: ${error.message}`);
      if (!res.headersSent) {
        sendJson(res, 502, { code: 502, message: `Function ${target.name} failed to answer` }, {
          "retry-after": "1",
        });
      } else res.destroy();
    });
    // Once the answer is complete, discard the rest of an unread request body
    // instead of resetting the producer's connection mid-upload.
    res.once("finish", () => {
      req.unpipe(upstream);
      req.resume();
    });
    req.pipe(upstream);
  });

  server.on("upgrade", async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (draining) return rejectUpgrade(socket, 503, "The local stack is shutting down");
    const url = req.url ?? "/";
    const mount = options.mounts?.find((m) => url.startsWith(m.prefix) && m.upgrade);
    if (mount) return mount.upgrade!(req, socket, head);
    const target = resolve(url);
    if (!target?.route) return rejectUpgrade(socket, 404, `No route for ${url.split("?")[0]}`);
    if (target.route.verifyJwt) {
      const problem = await checkJwt(req);
      if (problem) return rejectUpgrade(socket, 401, problem);
    }
    const instance = pickInstance(target.name, target.route);
    if (!instance) return rejectUpgrade(socket, 503, `Function ${target.name} is not running`);
    const upstream = net.connect(instance.port, "127.0.0.1", () => {
      const lines = [`${req.method} ${target.path} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const key = req.rawHeaders[i]!;
        lines.push(
          `${key}: ${
            key.toLowerCase() === "host" ? `127.0.0.1:${instance.port}` : req.rawHeaders[i + 1]
          }`,
        );
      }
      upstream.write(lines.join("\r\n") + "\r\n\r\n");
      if (head.length) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    upgraded.add(socket);
    const close = () => {
      upgraded.delete(socket);
      socket.destroy();
      upstream.destroy();
    };
    socket.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });

  await new Promise<void>((ok, fail) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      fail(
        error.code === "EADDRINUSE"
          ? new Error(`Port ${options.port} (API gateway) is already in use.`)
          : error,
      );
    });
    server.listen(options.port, "127.0.0.1", () => ok());
  });
  server.on("error", (error) => options.log(`[gateway] ${error.message}`));

  return {
    async drain(timeoutMs = 10_000) {
      draining = true;
      server.close();
      server.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((ok) => (idle = ok)),
          new Promise((ok) => setTimeout(ok, timeoutMs)),
        ]);
      }
    },
    close() {
      for (const socket of upgraded) socket.destroy();
      server.closeAllConnections();
    },
  };
}
