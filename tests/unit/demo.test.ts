/**
 * Demo traffic: every generated event is one ingest accepts, each source's
 * sequence continues without gaps from where it left off, and the mix covers
 * every category once ingest's default classification rules apply.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import path from "node:path";
import { type ClassificationRule, createClassifier } from "../../shared/events/classify.ts";
import { type Category, eventInputSchema } from "../../shared/events/schema.ts";
import { repoRoot } from "../../local/toolchain.ts";
import { createDemoGenerator, poisson, PRODUCERS } from "../../local/demo.ts";

/** The classification rules the ingest migration seeds (read from it: one source of truth). */
function seededRules(): ClassificationRule[] {
  const sql = readFileSync(
    path.join(repoRoot, "supabase", "migrations", "20261123000100_ingest.sql"),
    "utf8",
  );
  const rows = sql.slice(sql.indexOf("insert into cutover.classification_rules"));
  const re = /\('((?:[^']|'')+)', '(\w+)', (true|false), (\d+),/g;
  const rules: ClassificationRule[] = [];
  for (const m of rows.matchAll(re)) {
    rules.push({
      pattern: m[1]!.replace(/''/g, "'"),
      category: m[2] as Category,
      legacy: m[3] === "true",
      priority: Number(m[4]),
    });
  }
  return rules;
}

describe("demo generator", () => {
  it("produces events ingest accepts, with gap-free sequences per source", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.integer({ min: 0, max: 1000 }),
        (seed, start) => {
          let x = seed;
          const random = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
          const gen = createDemoGenerator(random, { "checkout-api": start });
          const events = [...gen.next(150, 1_800_000_000_000), ...gen.next(150, 1_800_000_000_250)];
          const bySource = new Map<string, number[]>();
          for (const e of events) {
            expect(eventInputSchema.safeParse(e).success).toBe(true);
            bySource.set(e.source, [...(bySource.get(e.source) ?? []), e.sequence_id]);
          }
          for (const [source, seqs] of bySource) {
            const first = source === "checkout-api" ? start + 1 : 1;
            expect(seqs).toEqual(seqs.map((_, i) => first + i));
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it("covers every category (and a legacy type) under ingest's classification rules", () => {
    const rules = seededRules();
    expect(rules.length).toBeGreaterThanOrEqual(7);
    const classifier = createClassifier(rules);
    const seen = new Set<string>();
    let legacy = false;
    for (const p of PRODUCERS) {
      for (const [type] of p.events) {
        const c = classifier.classify(type);
        seen.add(c.category);
        legacy ||= c.legacy;
      }
    }
    expect([...seen].sort()).toEqual([
      "critical",
      "debug",
      "performance",
      "system",
      "user_activity",
    ]);
    expect(legacy).toBe(true);
  });

  it("draws batch sizes around the mean", () => {
    let x = 7;
    const random = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const draws = Array.from({ length: 4000 }, () => poisson(random, 3));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    expect(mean).toBeGreaterThan(2.8);
    expect(mean).toBeLessThan(3.2);
  });
});
