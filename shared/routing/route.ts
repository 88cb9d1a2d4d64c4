/**
 * Routing: which adapters an event is delivered to (DESIGN §2.3–2.4).
 *
 * Rules, in order:
 * 1. A legacy event type is stored and delivered nowhere live.
 * 2. The global override names the only adapter (`websocket_only`, `realtime_only`).
 * 3. A disabled category, a 0 % share, an empty adapter list, or a routing key
 *    outside the category's split → the primary adapter only.
 * 4. Inside the split → the category's adapters plus the primary.
 * 4a. After a breaker closes, a recovering secondary adapter is added only for
 *    keys below its ramped share of the split (`restoreShare`, see
 *    shared/resilience/restore.ts): sticky and monotonic like the split itself.
 * 5. An adapter whose breaker is open is deferred: the event still goes to it
 *    (its outbox keeps it until recovery), and when every chosen adapter is
 *    open the healthy one is added so the event is live somewhere now
 *    (fallback_to_single_adapter).
 * Routing never drops an event: the result always holds at least one adapter
 * (except for legacy types, which are stored).
 */
import type { Adapter, Category } from "../events/schema.ts";
import type { CategoryFlags, GlobalOverride } from "../config/settings.ts";
import { restoredThreshold } from "../resilience/restore.ts";
import { bucketOf, splitThreshold } from "./bucket.ts";

export interface RoutingConfig {
  categories: Record<Category, CategoryFlags>;
  globalOverride: GlobalOverride;
  primary: Adapter;
  routingKey: "source" | "id";
  /** Adapters whose breaker is open now. */
  openBreakers?: ReadonlySet<Adapter>;
  /** Adapters ramping back after their breaker closed: the share (0..1) of each split they get. */
  restoreShare?: Partial<Record<Adapter, number>>;
}

export interface RoutableEvent {
  id: string;
  source: string;
  category: Category;
  legacy: boolean;
}

export type RouteReason =
  | "legacy"
  | "override"
  | "disabled"
  | "no_adapters"
  | "outside_split"
  | "in_split"
  | "breaker_fallback";

export interface RouteDecision {
  adapters: Adapter[];
  reason: RouteReason;
  /** The routing key's bucket (0..9999) when the split was consulted. */
  bucket?: number;
  /** Chosen adapters whose breaker is open: delivered after recovery, not now. */
  deferred?: Adapter[];
  /** Category adapters left out because they are still ramping back after recovery. */
  held?: Adapter[];
}

const ORDER: Adapter[] = ["websocket", "realtime"];
const sorted = (set: Iterable<Adapter>): Adapter[] => {
  const s = new Set(set);
  return ORDER.filter((a) => s.has(a));
};

/** The value an event is bucketed by: its `source`, or its `id` when the routing key is `id`. */
export function routingKeyOf(
  event: Pick<RoutableEvent, "id" | "source">,
  routingKey: RoutingConfig["routingKey"],
): string {
  return routingKey === "id" ? event.id : event.source;
}

/** Decides the route of one event. Pure. */
export function routeEvent(event: RoutableEvent, config: RoutingConfig): RouteDecision {
  if (event.legacy) return { adapters: [], reason: "legacy" };
  if (config.globalOverride === "websocket_only") {
    return { adapters: ["websocket"], reason: "override" };
  }
  if (config.globalOverride === "realtime_only") {
    return { adapters: ["realtime"], reason: "override" };
  }

  const flags = config.categories[event.category];
  let decision: RouteDecision;
  if (!flags.enabled) decision = { adapters: [config.primary], reason: "disabled" };
  else if (flags.adapters.length === 0) {
    decision = { adapters: [config.primary], reason: "no_adapters" };
  } else {
    const bucket = bucketOf(routingKeyOf(event, config.routingKey), event.category);
    const threshold = splitThreshold(flags.percentage);
    if (bucket < threshold) {
      const held = flags.adapters.filter((a) =>
        a !== config.primary &&
        bucket >= restoredThreshold(threshold, config.restoreShare?.[a] ?? 1)
      );
      const chosen = flags.adapters.filter((a) => !held.includes(a));
      decision = {
        adapters: sorted([config.primary, ...chosen]),
        reason: "in_split",
        bucket,
        ...(held.length > 0 ? { held } : {}),
      };
    } else decision = { adapters: [config.primary], reason: "outside_split", bucket };
  }
  return applyBreakers(decision, config);
}

function applyBreakers(decision: RouteDecision, config: RoutingConfig): RouteDecision {
  const open = config.openBreakers;
  if (!open || open.size === 0) return decision;
  const broken = decision.adapters.filter((a) => open.has(a));
  if (broken.length === 0) return decision;
  const liveNow = decision.adapters.filter((a) => !open.has(a));
  const healthy = ORDER.filter((a) => !open.has(a));
  const adapters = liveNow.length > 0
    ? decision.adapters
    : sorted([...decision.adapters, ...healthy]);
  return { ...decision, adapters, reason: "breaker_fallback", deferred: broken };
}
