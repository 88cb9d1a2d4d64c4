/**
 * Serves the built dashboard (dashboard/dist) on the dashboard port, with the
 * stack's public settings at /config.json so the same build works against any
 * stack (and against a hosted project when deployed with its own config.json).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import path from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json",
};

export interface StaticServerOptions {
  port: number;
  root: string;
  /** Served as /config.json. */
  publicConfig: Record<string, unknown>;
}

/** Starts the dashboard server; resolves with a close function. */
export async function startStaticServer(options: StaticServerOptions): Promise<{ close(): void }> {
  const root = path.resolve(options.root);
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent((req.url ?? "/").split("?")[0]!);
    if (pathname === "/config.json") {
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(options.publicConfig));
      return;
    }
    if (!existsSync(path.join(root, "index.html"))) {
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
      res.end(
        "The dashboard is not built. Run `npm run build:dashboard` (npm start does it for you).\n",
      );
      return;
    }
    let file = path.join(root, path.normalize(pathname));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    if (!existsSync(file) || statSync(file).isDirectory()) file = path.join(root, "index.html");
    const type = TYPES[path.extname(file)] ?? "application/octet-stream";
    const immutable = file.includes(`${path.sep}assets${path.sep}`);
    res.writeHead(200, {
      "content-type": type,
      "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
    });
    res.end(readFileSync(file));
  });
  await new Promise<void>((ok, fail) => {
    server.once(
      "error",
      (error: NodeJS.ErrnoException) =>
        fail(
          error.code === "EADDRINUSE"
            ? new Error(`Port ${options.port} (dashboard) is already in use.`)
            : error,
        ),
    );
    server.listen(options.port, "127.0.0.1", () => ok());
  });
  return {
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
