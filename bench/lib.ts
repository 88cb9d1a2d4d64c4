/** Measurement helpers shared by the benchmarks: percentiles, timed loops, tables. */

/** The q-quantile (0..1) of `values` by nearest rank; NaN when empty. */
export function percentile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export interface LoopResult {
  operations: number;
  items: number;
  seconds: number;
  latenciesMs: number[];
  errors: number;
}

/**
 * Runs `op` from `concurrency` workers for `durationMs` (and at most
 * `maxOperations` operations), recording each operation's latency. `op`
 * returns how many items it carried (events, rows).
 */
export async function timedLoop(
  op: (worker: number, i: number) => Promise<number>,
  options: { concurrency: number; durationMs: number; maxOperations?: number },
): Promise<LoopResult> {
  const latenciesMs: number[] = [];
  let operations = 0;
  let items = 0;
  let errors = 0;
  let started = 0;
  const max = options.maxOperations ?? Infinity;
  const t0 = performance.now();
  const deadline = t0 + options.durationMs;
  await Promise.all(Array.from({ length: options.concurrency }, async (_, worker) => {
    while (performance.now() < deadline && started < max) {
      const i = started++;
      const t = performance.now();
      try {
        // Not `items += await op()`: that reads `items` before the await and
        // loses the other workers' increments.
        const carried = await op(worker, i);
        items += carried;
        operations++;
        latenciesMs.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  }));
  return { operations, items, seconds: (performance.now() - t0) / 1000, latenciesMs, errors };
}

/** Prints rows as an aligned text table. */
export function printTable(
  log: (line: string) => void,
  headers: string[],
  rows: (string | number)[][],
): void {
  const cells = [
    headers,
    ...rows.map((r) => r.map((c) => (typeof c === "number" ? formatNumber(c) : c))),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? "").length)));
  const line = (r: (string | number)[]) =>
    r.map((c, i) => String(c).padStart(widths[i]!)).join("  ");
  log(line(cells[0]!));
  log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells.slice(1)) log(line(r));
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString("en-US");
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}
