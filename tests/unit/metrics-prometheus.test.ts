import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  escapeLabelValue,
  formatExposition,
  formatValue,
  type MetricFamily,
} from "../../shared/metrics/prometheus.ts";
import { parseExposition, sampleValue } from "../helpers/prometheus.ts";

const labelValue = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: "grapheme", maxLength: 10 }),
  fc.constantFrom('a"b', "back\\slash", "line\nfeed", "\\n", '\\"', "} 1", 'x,y="z"', ""),
);

describe("Prometheus exposition formatting", () => {
  it("escapes backslash, double quote and line feed in label values", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
  });

  it("round-trips any label value through a strict parser", () => {
    fc.assert(fc.property(labelValue, labelValue, fc.double({ noNaN: true }), (a, b, v) => {
      const text = formatExposition([{
        name: "test_gauge",
        help: "help with \\ and\nnewline",
        type: "gauge",
        samples: [{ labels: { first: a, second: b }, value: v }],
      }]);
      const parsed = parseExposition(text);
      const fam = parsed.get("test_gauge")!;
      expect(fam.type).toBe("gauge");
      expect(fam.help).toBe("help with \\ and\nnewline");
      expect(fam.samples).toHaveLength(1);
      expect(fam.samples[0]!.labels).toEqual({ first: a, second: b });
      expect(Object.is(fam.samples[0]!.value, v === 0 ? 0 : v) || fam.samples[0]!.value === v)
        .toBe(true);
    }));
  });

  it("writes HELP and TYPE once per family, before its samples", () => {
    const text = formatExposition([
      {
        name: "a_total",
        help: "A.",
        type: "counter",
        samples: [{ labels: { k: "1" }, value: 1 }, { labels: { k: "2" }, value: 2 }],
      },
      { name: "b", help: "B.", type: "gauge", samples: [{ value: 3 }] },
      { name: "c", help: "C, empty.", type: "gauge", samples: [] },
    ]);
    expect(text).toBe(
      [
        "# HELP a_total A.",
        "# TYPE a_total counter",
        'a_total{k="1"} 1',
        'a_total{k="2"} 2',
        "# HELP b B.",
        "# TYPE b gauge",
        "b 3",
        "# HELP c C, empty.",
        "# TYPE c gauge",
        "",
      ].join("\n"),
    );
  });

  it("writes histograms as cumulative buckets, +Inf, _sum and _count", () => {
    const family: MetricFamily = {
      name: "lat_seconds",
      help: "Latency.",
      type: "histogram",
      samples: [{ labels: { adapter: "ws" }, bounds: [0.1, 0.5], counts: [2, 3, 1], sum: 1.75 }],
    };
    const text = formatExposition([family]);
    expect(text).toContain('lat_seconds_bucket{adapter="ws",le="0.1"} 2\n');
    expect(text).toContain('lat_seconds_bucket{adapter="ws",le="0.5"} 5\n');
    expect(text).toContain('lat_seconds_bucket{adapter="ws",le="+Inf"} 6\n');
    expect(text).toContain('lat_seconds_sum{adapter="ws"} 1.75\n');
    expect(text).toContain('lat_seconds_count{adapter="ws"} 6\n');
    parseExposition(text);
  });

  it("produces text the strict parser accepts for any histogram", () => {
    const bounds = fc.uniqueArray(fc.double({ min: 0.0001, max: 1e6, noNaN: true }), {
      minLength: 1,
      maxLength: 20,
    }).map((b) => b.sort((x, y) => x - y));
    fc.assert(fc.property(
      bounds.chain((b) =>
        fc.tuple(
          fc.constant(b),
          fc.array(fc.nat({ max: 1e9 }), { minLength: b.length + 1, maxLength: b.length + 1 }),
        )
      ),
      labelValue,
      ([b, counts], label) => {
        const text = formatExposition([{
          name: "h",
          help: "H.",
          type: "histogram",
          samples: [{ labels: { l: label }, bounds: b, counts, sum: 1 }],
        }]);
        const parsed = parseExposition(text);
        const total = counts.reduce((x, y) => x + y, 0);
        expect(sampleValue(parsed, "h", { l: label }, "h_count")).toBe(total);
        expect(sampleValue(parsed, "h", { l: label, le: "+Inf" }, "h_bucket")).toBe(total);
        b.forEach((bound, i) => {
          const cumulative = counts.slice(0, i + 1).reduce((x, y) => x + y, 0);
          expect(sampleValue(parsed, "h", { l: label, le: formatValue(bound) }, "h_bucket"))
            .toBe(cumulative);
        });
      },
    ));
  });

  it("formats special values as Prometheus does", () => {
    expect(formatValue(Infinity)).toBe("+Inf");
    expect(formatValue(-Infinity)).toBe("-Inf");
    expect(formatValue(NaN)).toBe("NaN");
    expect(formatValue(0.5)).toBe("0.5");
    expect(formatValue(1e21)).toBe("1e+21");
  });

  it("refuses invalid names and repeated families (programming errors)", () => {
    const g = (name: string, labels?: Record<string, string>): MetricFamily => ({
      name,
      help: "x",
      type: "gauge",
      samples: [{ labels, value: 1 }],
    });
    expect(() => formatExposition([g("1bad")])).toThrow(/metric name/);
    expect(() => formatExposition([g("ok", { "bad-label": "x" })])).toThrow(/label name/);
    expect(() => formatExposition([g("ok", { __reserved: "x" })])).toThrow(/label name/);
    expect(() => formatExposition([g("ok"), g("ok")])).toThrow(/twice/);
    expect(() =>
      formatExposition([{
        name: "h",
        help: "x",
        type: "histogram",
        samples: [{ bounds: [1], counts: [1], sum: 0 }],
      }])
    ).toThrow(/counts/);
  });
});

describe("the strict test parser", () => {
  it("rejects what the format forbids", () => {
    const bad = [
      'x{a="b} 1\n', // unterminated label value
      'x{a="\\q"} 1\n', // unknown escape
      "x 1\n# TYPE x gauge\n", // TYPE after samples
      "# TYPE x gauge\n# TYPE x gauge\n", // two TYPEs
      "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n", // family split
      "# TYPE x gauge\nx 1\nx 1\n", // repeated series
      "# TYPE x counter\nx -1\n", // negative counter
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      "x 1", // no final line feed
      "x one\n",
    ];
    for (const text of bad) expect(() => parseExposition(text), text).toThrow();
  });
});
