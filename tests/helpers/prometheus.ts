/**
 * A strict parser for the Prometheus text exposition format 0.0.4, for tests:
 * it throws on anything a scraper would reject or that the format forbids —
 * a malformed line, a bad escape, a sample before its TYPE, a family split in
 * two, a repeated series, a histogram without a `+Inf` bucket, buckets that
 * are not cumulative, or `_count` that differs from the `+Inf` bucket.
 */

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedFamily {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help?: string;
  samples: ParsedSample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = "[a-zA-Z_][a-zA-Z0-9_]*";
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(text: string, line: number): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
    throw new Error(`line ${line}: bad value "${text}"`);
  }
  return Number(text);
}

function unescapeLabel(raw: string, line: number): string {
  return raw.replace(/\\(.)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === '"') return '"';
    if (c === "n") return "\n";
    throw new Error(`line ${line}: bad escape \\${c}`);
  });
}

/** The family a sample name belongs to, given the families declared so far. */
function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const t = types.get(base);
      if (t === "histogram" || (t === "summary" && suffix !== "_bucket")) return base;
    }
  }
  return name;
}

/** Parses exposition text into families (in order). Throws Error naming the line on any violation. */
export function parseExposition(text: string): Map<string, ParsedFamily> {
  if (text.length > 0 && !text.endsWith("\n")) throw new Error("text must end with a line feed");
  const families = new Map<string, ParsedFamily>();
  const types = new Map<string, string>();
  const series = new Set<string>();
  let current: string | undefined;
  const closed = new Set<string>();
  const lines = text.split("\n").slice(0, -1);
  lines.forEach((raw, idx) => {
    const n = idx + 1;
    if (raw.trim() === "") return;
    if (raw.startsWith("#")) {
      const meta = new RegExp(`^# (HELP|TYPE) (${NAME})(?: (.*))?$`).exec(raw);
      if (!meta) return; // an ordinary comment
      const [, kind, name, rest = ""] = meta;
      const fam = families.get(name!) ??
        { name: name!, type: "untyped" as ParsedFamily["type"], samples: [] };
      if (kind === "TYPE") {
        if (types.has(name!)) throw new Error(`line ${n}: second TYPE for ${name}`);
        if (fam.samples.length) throw new Error(`line ${n}: TYPE for ${name} after its samples`);
        if (!TYPES.has(rest)) throw new Error(`line ${n}: unknown type "${rest}"`);
        types.set(name!, rest);
        fam.type = rest as ParsedFamily["type"];
      } else {
        if (fam.help !== undefined) throw new Error(`line ${n}: second HELP for ${name}`);
        fam.help = rest.replace(/\\(.)/g, (_, c: string) => {
          if (c === "\\") return "\\";
          if (c === "n") return "\n";
          throw new Error(`line ${n}: bad HELP escape \\${c}`);
        });
      }
      families.set(name!, fam);
      return;
    }
    // dotAll: label values may hold U+2028/U+2029, which `.` would not match.
    const m = new RegExp(`^(${NAME})(\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`, "s").exec(raw);
    if (!m) throw new Error(`line ${n}: not a sample line: ${JSON.stringify(raw)}`);
    const [, name, , labelText, valueText] = m;
    const labels: Record<string, string> = {};
    if (labelText !== undefined && labelText !== "") {
      const re = new RegExp(`(${LABEL})="((?:[^"\\\\]|\\\\.)*)"(,|$)`, "y");
      let pos = 0;
      while (pos < labelText.length) {
        re.lastIndex = pos;
        const lm = re.exec(labelText);
        if (!lm) throw new Error(`line ${n}: bad labels {${labelText}}`);
        if (lm[1]! in labels) throw new Error(`line ${n}: label ${lm[1]} twice`);
        labels[lm[1]!] = unescapeLabel(lm[2]!, n);
        pos = re.lastIndex;
      }
    }
    const value = parseValue(valueText!, n);
    const familyName = familyOf(name!, types);
    if (familyName !== current) {
      if (closed.has(familyName)) throw new Error(`line ${n}: family ${familyName} is split`);
      if (current) closed.add(current);
      current = familyName;
    }
    const fam = families.get(familyName) ?? { name: familyName, type: "untyped", samples: [] };
    families.set(familyName, fam);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(key)) throw new Error(`line ${n}: series ${key} repeated`);
    series.add(key);
    if (fam.type === "counter" && !(value >= 0)) {
      throw new Error(`line ${n}: counter ${name} is ${value}`);
    }
    if (name!.endsWith("_bucket") && fam.type === "histogram" && !("le" in labels)) {
      throw new Error(`line ${n}: bucket without le`);
    }
    fam.samples.push({ name: name!, labels, value });
  });
  for (const fam of families.values()) {
    if (fam.type === "histogram") checkHistogram(fam);
  }
  return families;
}

function checkHistogram(fam: ParsedFamily): void {
  const groups = new Map<string, ParsedSample[]>();
  for (const s of fam.samples) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const [key, samples] of groups) {
    const buckets = samples.filter((s) => s.name === `${fam.name}_bucket`);
    const count = samples.find((s) => s.name === `${fam.name}_count`);
    const sum = samples.find((s) => s.name === `${fam.name}_sum`);
    if (!count || !sum) throw new Error(`${fam.name}${key}: _sum or _count missing`);
    const les = buckets.map((b) => parseValue(b.labels.le!, 0));
    for (let i = 1; i < buckets.length; i++) {
      if (!(les[i]! > les[i - 1]!)) throw new Error(`${fam.name}${key}: le not increasing`);
      if (buckets[i]!.value < buckets[i - 1]!.value) {
        throw new Error(`${fam.name}${key}: buckets not cumulative`);
      }
    }
    if (les.at(-1) !== Infinity) throw new Error(`${fam.name}${key}: no +Inf bucket`);
    if (buckets.at(-1)!.value !== count.value) {
      throw new Error(`${fam.name}${key}: _count differs from the +Inf bucket`);
    }
  }
}

/** The value of one series (exact label match), or undefined. */
export function sampleValue(
  families: Map<string, ParsedFamily>,
  family: string,
  labels: Record<string, string>,
  name = family,
): number | undefined {
  const fam = families.get(family);
  const want = JSON.stringify(Object.entries(labels).sort());
  return fam?.samples.find((s) =>
    s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want
  )?.value;
}
