/**
 * Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): one
 * `# HELP` and one `# TYPE` line per family, then its samples; label values
 * escaped (backslash, double quote, line feed); histograms as cumulative
 * `_bucket{le="…"}` series ending in `le="+Inf"`, then `_sum` and `_count`.
 * Pure: families in, text out.
 */

/** The content type scrapers expect for this format. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Record<string, string>;

export interface Sample {
  labels?: Labels;
  value: number;
}

export interface HistogramSample {
  labels?: Labels;
  /** Finite upper bounds, strictly increasing, in the unit of the metric. */
  bounds: readonly number[];
  /** Non-cumulative counts: one per bound, then the overflow bucket (`bounds.length + 1`). */
  counts: readonly number[];
  /** Sum of all observations, in the unit of the metric. */
  sum: number;
}

export type MetricFamily =
  | { name: string; help: string; type: "counter" | "gauge"; samples: Sample[] }
  | { name: string; help: string; type: "histogram"; samples: HistogramSample[] };

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Escapes a label value: `\` → `\\`, `"` → `\"`, line feed → `\n`. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes HELP text: `\` → `\\`, line feed → `\n` (quotes stay as they are). */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as Prometheus writes it: `+Inf`, `-Inf`, `NaN` or a Go-parsable float. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function formatLabels(labels: Labels | undefined, extra?: [string, string]): string {
  const entries = Object.entries(labels ?? {});
  if (extra) entries.push(extra);
  if (entries.length === 0) return "";
  for (const [name] of entries) {
    if (!LABEL_NAME.test(name) || name.startsWith("__")) {
      throw new Error(`invalid label name "${name}"`);
    }
  }
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

/**
 * Renders families as exposition text (ending with a line feed). Throws
 * Error on an invalid metric or label name, a repeated family name, or a
 * histogram whose counts do not match its bounds — programming errors, not
 * data errors. Families with no samples are written with HELP and TYPE only.
 */
export function formatExposition(families: readonly MetricFamily[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new Error(`invalid metric name "${family.name}"`);
    if (seen.has(family.name)) throw new Error(`metric family "${family.name}" appears twice`);
    seen.add(family.name);
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    if (family.type !== "histogram") {
      for (const s of family.samples) {
        lines.push(`${family.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
      }
      continue;
    }
    for (const h of family.samples) {
      if (h.counts.length !== h.bounds.length + 1) {
        throw new Error(
          `histogram ${family.name}: ${h.counts.length} counts for ${h.bounds.length} bounds`,
        );
      }
      let cumulative = 0;
      h.bounds.forEach((bound, i) => {
        cumulative += h.counts[i]!;
        lines.push(
          `${family.name}_bucket${
            formatLabels(h.labels, ["le", formatValue(bound)])
          } ${cumulative}`,
        );
      });
      cumulative += h.counts[h.bounds.length]!;
      lines.push(`${family.name}_bucket${formatLabels(h.labels, ["le", "+Inf"])} ${cumulative}`);
      lines.push(`${family.name}_sum${formatLabels(h.labels)} ${formatValue(h.sum)}`);
      lines.push(`${family.name}_count${formatLabels(h.labels)} ${cumulative}`);
    }
  }
  return lines.join("\n") + "\n";
}
