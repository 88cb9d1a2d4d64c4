/**
 * The dashboard at 1,000 incoming events/s, in real Chromium:
 *
 * 1. In the page: events handed to the dashboard at 1,000/s for 20 s (the
 *    rate a busy WebSocket or Realtime stream delivers), measuring frame
 *    intervals, long tasks, DOM rows and heap after 10 s and after 20 s —
 *    the heap must stop growing once the bounded tail is full.
 * 2. Through the real pipeline: 1,000 events/s for 5 s posted to ingest
 *    (100 per request every 100 ms); every one reaches the page over the
 *    WebSocket path while it keeps drawing frames.
 *
 * The figures are printed; the bounds asserted are generous for a shared
 * two-core machine (smoothness is judged by the 95th percentile frame).
 */
import { randomUUID } from "node:crypto";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { stack } from "../helpers/http.ts";
import { openDashboard, screenshot, useBrowser, waitConnected } from "../helpers/browser.ts";

const browser = useBrowser();

interface FrameStats {
  frames: number;
  p50: number;
  p95: number;
  max: number;
  longTasks: number;
  longTaskMs: number;
}

/** Starts recording frame intervals and long tasks in the page. */
async function startFrameRecorder(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = globalThis as unknown as { __frames: number[]; __long: number[]; __rec: boolean };
    w.__frames = [];
    w.__long = [];
    w.__rec = true;
    let last = performance.now();
    const tick = (t: number) => {
      w.__frames.push(t - last);
      last = t;
      if (w.__rec) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__long.push(e.duration);
    }).observe({ type: "longtask" });
  });
}

async function stopFrameRecorder(page: Page): Promise<FrameStats> {
  return await page.evaluate(() => {
    const w = globalThis as unknown as { __frames: number[]; __long: number[]; __rec: boolean };
    w.__rec = false;
    const f = w.__frames.slice(1).sort((a, b) => a - b);
    const q = (p: number) =>
      Math.round(f[Math.min(f.length - 1, Math.floor(p * f.length))]! * 10) / 10;
    return {
      frames: f.length,
      p50: q(0.5),
      p95: q(0.95),
      max: Math.round(f.at(-1) ?? 0),
      longTasks: w.__long.length,
      longTaskMs: Math.round(w.__long.reduce((a, b) => a + b, 0)),
    };
  });
}

describe("dashboard at 1,000 events/s", () => {
  it("in the page: smooth frames, bounded DOM and a heap that stops growing", async () => {
    const { page, context, errors } = await openDashboard(await browser(), { mode: "websocket" });
    await waitConnected(page);
    await startFrameRecorder(page);
    const result = await page.evaluate(async () => {
      const app = (globalThis as unknown as {
        cutover: {
          app: {
            offer(events: unknown[], path: string): void;
            store: { size: number; view: unknown[]; queueDropped: number };
            rates: { rate(now: number): number };
          };
        };
      }).cutover.app;
      const gc = (globalThis as unknown as { gc?: () => void }).gc;
      const heap = () => {
        gc?.();
        return Math.round(
          (performance as unknown as { memory: { usedJSHeapSize: number } }).memory
            .usedJSHeapSize / 1024 / 1024 * 10,
        ) / 10;
      };
      const categories = ["critical", "performance", "user_activity", "system", "debug"];
      const before = heap();
      let n = 0;
      let started = 0;
      // Every tick offers what is due at 1,000 events/s since the start, so a late timer
      // (a loaded machine) delivers a bigger batch rather than a lower rate.
      const inject = () => {
        const due = Math.floor(performance.now() - started);
        const batch = [];
        while (n < due) {
          n++;
          batch.push({
            id: crypto.randomUUID(),
            source: `perf-${n % 40}`,
            sequence_id: n,
            event_type: `synthetic.${n % 7}`,
            category: categories[n % 5],
            timestamp: new Date().toISOString(),
            data: { n, route: "/api/checkout", duration_ms: n % 250, note: "x".repeat(120) },
          });
        }
        if (batch.length > 0) app.offer(batch, "websocket");
      };
      started = performance.now();
      const timer = setInterval(inject, 10);
      const heaps: number[] = [];
      for (const at of [10_000, 20_000]) {
        await new Promise((r) => setTimeout(r, at - (performance.now() - started)));
        heaps.push(heap());
      }
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      return {
        injected: n,
        ratePerS: Math.round(n / seconds),
        measuredRate: Math.round(app.rates.rate(Date.now())),
        heapMb: { before, at10s: heaps[0]!, at20s: heaps[1]! },
        tail: app.store.size,
        shown: app.store.view.length,
        domRows: document.querySelectorAll("#view-live .vl-row").length,
        domNodes: document.getElementsByTagName("*").length,
      };
    });
    const frames = await stopFrameRecorder(page);
    console.log(`1,000 events/s in the page: ${JSON.stringify({ ...result, frames })}`);
    await screenshot(page, "live-1000-per-s");
    expect(result.ratePerS).toBeGreaterThan(900);
    expect(result.tail).toBe(5000);
    expect(result.domRows).toBeLessThan(80);
    // The tail is full after 5 s; after that the heap holds steady.
    expect(result.heapMb.at20s - result.heapMb.at10s).toBeLessThan(4);
    expect(frames.frames).toBeGreaterThan(20 * 20); // at least 20 fps on average
    expect(frames.p95).toBeLessThan(100);
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);

  it(
    "through ingest and ws-fanout: 5,000 events in 5 s all reach the page while it keeps drawing",
    async () => {
      const { page, context, errors } = await openDashboard(await browser(), {
        mode: "websocket",
        signedIn: true,
      });
      await waitConnected(page);
      const prefix = `bulk-${randomUUID().slice(0, 6)}`;
      await page.evaluate((p) => {
        const w = globalThis as unknown as { __bulk: { count: number; last: number } };
        w.__bulk = { count: 0, last: 0 };
        const app = (globalThis as unknown as {
          cutover: {
            app: { offer: (events: { source: string }[], path: string, d?: string) => void };
          };
        }).cutover.app;
        const original = app.offer.bind(app);
        app.offer = (events, path, d) => {
          for (const e of events) {
            if (path === "websocket" && e.source.startsWith(p)) {
              w.__bulk.count++;
              w.__bulk.last = Date.now();
            }
          }
          original(events, path, d);
        };
      }, prefix);
      await startFrameRecorder(page);
      const info = stack().info;
      const started = Date.now();
      const posts: Promise<number>[] = [];
      let seq = 0;
      for (let r = 0; r < 50; r++) {
        const events = Array.from({ length: 100 }, () => {
          seq++;
          return {
            source: `${prefix}-${seq % 20}`,
            sequence_id: seq,
            event_type: "worker.heartbeat",
            category: "system",
            timestamp: new Date().toISOString(),
            data: { seq },
          };
        });
        posts.push(
          fetch(`${info.apiUrl}/functions/v1/ingest`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${info.producerKey}`,
              "content-type": "application/json",
            },
            body: JSON.stringify({ events }),
          }).then(async (res) => {
            await res.text();
            return res.status;
          }),
        );
        await new Promise((resolve) => setTimeout(resolve, started + (r + 1) * 100 - Date.now()));
      }
      const statuses = await Promise.all(posts);
      const ingested = Date.now();
      expect(statuses.every((s) => s === 200)).toBe(true);
      const done = await page.waitForFunction(
        () => {
          const b = (globalThis as unknown as { __bulk: { count: number; last: number } }).__bulk;
          return b.count >= 5000 ? b : false;
        },
        undefined,
        { timeout: 60_000, polling: 100 },
      );
      const bulk = (await done.jsonValue()) as { count: number; last: number };
      const frames = await stopFrameRecorder(page);
      const repeats = await page.evaluate(() =>
        (globalThis as unknown as { cutover: { app: { repeats: Record<string, number> } } }).cutover
          .app.repeats
      );
      const figures = {
        postedInMs: ingested - started,
        lastEventAfterLastAnswerMs: bulk.last - ingested,
        received: bulk.count,
        frames,
      };
      console.log(`1,000 events/s through ingest and ws-fanout: ${JSON.stringify(figures)}`);
      expect(bulk.count).toBe(5000);
      expect(repeats.websocket).toBe(0);
      expect(frames.p95).toBeLessThan(100);
      expect(errors).toEqual([]);
      await context.close();
    },
    120_000,
  );
});
