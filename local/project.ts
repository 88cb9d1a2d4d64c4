/**
 * Reads supabase/config.toml — the same file the Supabase CLI deploys from —
 * for the functions the local stack serves and their `verify_jwt` setting.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "smol-toml";
import { repoRoot } from "./toolchain.ts";

export interface FunctionConfig {
  name: string;
  /** Absolute path of the deployed entrypoint. */
  entrypoint: string;
  verifyJwt: boolean;
}

interface ConfigToml {
  functions?: Record<string, { enabled?: boolean; verify_jwt?: boolean; entrypoint?: string }>;
}

export const supabaseDir = path.join(repoRoot, "supabase");

/** Enabled functions of config.toml, in file order. Hosted defaults apply (verify_jwt = true). */
export function readFunctionConfigs(
  configFile = path.join(supabaseDir, "config.toml"),
): FunctionConfig[] {
  const config = parse(readFileSync(configFile, "utf8")) as ConfigToml;
  return Object.entries(config.functions ?? {})
    .filter(([, f]) => f.enabled !== false)
    .map(([name, f]) => ({
      name,
      entrypoint: path.resolve(supabaseDir, f.entrypoint ?? `functions/${name}/index.ts`),
      verifyJwt: f.verify_jwt ?? true,
    }));
}
