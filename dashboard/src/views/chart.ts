/**
 * Line charts on uPlot: a titled figure whose caption states the latest
 * values in words (the canvas alone says nothing to a screen reader), sized
 * to its container and redrawn in place when data changes.
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h, setText } from "./dom.ts";

export interface LineSpec {
  label: string;
  color: string;
  dash?: number[];
  width?: number;
}

export interface ChartOptions {
  title: string;
  /** Unit shown on the y axis and in the caption (e.g. "events/s", "ms"). */
  unit: string;
  series: LineSpec[];
  height?: number;
  /** Formats a y value for the axis and the caption. */
  format?: (v: number) => string;
  /** Bars instead of lines (counts per step). */
  bars?: boolean;
  /** Whole-number ticks only (counts). */
  integer?: boolean;
  /** Mark every data point (sparse series: a lone value between gaps is otherwise invisible). */
  points?: boolean;
}

export interface Chart {
  readonly element: HTMLElement;
  /** `t` in unix seconds; one array per series, aligned with `t` (null = no data). */
  setData(t: number[], ys: (number | null)[][]): void;
  /** Shows a message instead of the plot (no data, no access…). */
  setMessage(message: string | null): void;
}

const defaultFormat = (v: number) =>
  Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);

export function createChart(options: ChartOptions): Chart {
  const format = options.format ?? defaultFormat;
  const caption = h("figcaption", { class: "chart-caption" });
  const plotBox = h("div", { class: "chart-plot", "aria-hidden": "true" });
  const message = h("div", { class: "chart-message", hidden: true });
  const element = h(
    "figure",
    { class: "chart" },
    h("div", { class: "chart-title" }, options.title),
    plotBox,
    message,
    caption,
  );
  let plot: uPlot | undefined;
  let data: uPlot.AlignedData = [[], ...options.series.map(() => [])];

  const bars = options.bars ? uPlot.paths.bars!({ size: [0.7, 40] }) : undefined;

  function build(width: number): void {
    plot?.destroy();
    plot = new uPlot(
      {
        width,
        height: options.height ?? 180,
        legend: { show: true, live: false },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: { time: true },
          y: { range: (_u, min, max) => [Math.min(0, min), Math.max(1, max)] },
        },
        axes: [
          { stroke: "#4b5563", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#d1d5db" } },
          {
            stroke: "#4b5563",
            grid: { stroke: "#eef0f3" },
            ticks: { stroke: "#d1d5db" },
            size: 52,
            values: (_u, vals) => vals.map((v) => format(v)),
            ...(options.integer
              ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000] }
              : {}),
            label: options.unit,
            labelSize: 16,
            labelFont: "12px system-ui, sans-serif",
            font: "11px system-ui, sans-serif",
          },
        ],
        series: [
          {},
          ...options.series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: s.width ?? 1.75,
            dash: s.dash,
            fill: options.bars ? s.color + "cc" : undefined,
            paths: bars,
            points: options.points ? { show: true, size: 5, fill: s.color } : { show: false },
            spanGaps: false,
          })),
        ],
      },
      data,
      plotBox,
    );
  }

  let lastWidth = 0;
  new ResizeObserver(() => {
    const width = Math.floor(plotBox.clientWidth);
    if (width > 0 && Math.abs(width - lastWidth) > 2) {
      lastWidth = width;
      if (plot) plot.setSize({ width, height: options.height ?? 180 });
      else build(width);
    }
  }).observe(plotBox);

  return {
    element,
    setData(t, ys) {
      data = [t, ...ys] as uPlot.AlignedData;
      if (plot) plot.setData(data);
      const parts = options.series.map((s, i) => {
        const series = ys[i] ?? [];
        let last: number | null = null;
        for (let j = series.length - 1; j >= 0; j--) {
          const v = series[j];
          if (v !== null && v !== undefined) {
            last = v;
            break;
          }
        }
        return `${s.label} ${last === null ? "–" : format(last)}`;
      });
      setText(caption, `Latest (${options.unit}): ${parts.join(" · ")}`);
    },
    setMessage(text) {
      message.hidden = text === null;
      plotBox.style.visibility = text === null ? "" : "hidden";
      if (text !== null) setText(message, text);
    },
  };
}
