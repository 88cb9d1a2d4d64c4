/**
 * `npm run demo`: synthetic traffic into a running stack (local/demo.ts).
 *
 *   npm run demo                         about 12 events/s until Ctrl-C
 *   npm run demo -- --rate 200           a heavier load
 *   npm run demo -- --duration 60        stop after a minute
 *   npm run demo -- --state-dir DIR      a stack started with --state-dir
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { startDemo } from "../local/demo.ts";
import type { StackInfo } from "../local/stack.ts";
import { repoRoot } from "../local/toolchain.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "12" },
    duration: { type: "string" },
    "state-dir": { type: "string" },
  },
  strict: true,
});

const stackFile = path.resolve(values["state-dir"] ?? path.join(repoRoot, ".local"), "stack.json");
if (!existsSync(stackFile)) {
  console.error(
    `No running stack (${
      path.relative(process.cwd(), stackFile)
    } is missing): run \`npm start\` first, or \`npm start -- --demo\`.`,
  );
  process.exit(1);
}
const info = JSON.parse(readFileSync(stackFile, "utf8")) as StackInfo;
const rate = Number(values.rate);
if (!(rate > 0 && rate <= 5000)) {
  console.error(`--rate must be between 0 and 5000 events/s, got "${values.rate}"`);
  process.exit(2);
}
const demo = await startDemo({
  apiUrl: info.apiUrl,
  producerKey: info.producerKey,
  serviceRoleKey: info.serviceRoleKey,
  rate,
});
console.log(`Dashboard: ${info.dashboardUrl}  (Ctrl-C to stop)`);
const report = setInterval(() => console.log(`demo: ${demo.sent} events acknowledged`), 10_000);
const stop = async () => {
  clearInterval(report);
  await demo.stop();
  console.log(`demo: stopped after ${demo.sent} events`);
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
if (values.duration) setTimeout(() => void stop(), Number(values.duration) * 1000);
