/**
 * `explain`: which route an event would take and why, decided by exactly the
 * code ingest runs (prepareEvents → classify, identify, routeEvent) against
 * the same cached config, then put into words. No I/O.
 */
import type { LoadedConfig } from "../config/source.ts";
import type { Adapter, Category, StoredEvent } from "../events/schema.ts";
import type { IngestLimits } from "../ingest/limits.ts";
import { prepareEvents, type RejectionCode, retentionHorizonMs } from "../ingest/prepare.ts";
import { bucketOf, splitThreshold } from "../routing/bucket.ts";
import {
  type RouteDecision,
  routeEvent,
  type RouteReason,
  routingKeyOf,
} from "../routing/route.ts";

export interface RouteExplanation {
  /** The config version the decision was made with. */
  config_version: number;
  id: string;
  category: Category;
  /** The classification rule's pattern, `producer` (the event named its category) or `fallback` (no rule matched). */
  classified_by: string;
  legacy: boolean;
  routing_key: { field: "source" | "id"; value: string };
  /** The routing key's bucket (0..9999) in this category, whether or not the split was consulted. */
  bucket: number;
  percentage: number;
  /** round(percentage × 100): a bucket below it is inside the split. */
  threshold: number;
  in_split: boolean;
  /** False when the override, a legacy type, a disabled category or an empty adapter list decided first. */
  split_consulted: boolean;
  adapters: Adapter[];
  reason: RouteReason;
  /** Adapters whose breaker is open: they get the event after recovery. */
  deferred?: Adapter[];
  explanation: string;
}

export type ExplainOutcome =
  | { ok: true; explanation: RouteExplanation }
  | { ok: false; code: RejectionCode; message: string };

/**
 * Explains the route of `raw` (one event as a producer sends it). An event
 * ingest would refuse comes back as `{ ok: false }` with ingest's own
 * rejection code and message.
 */
export async function explainEvent(
  raw: unknown,
  config: LoadedConfig,
  limits: IngestLimits,
  nowMs: number,
): Promise<ExplainOutcome> {
  const horizon = retentionHorizonMs(nowMs, config.settings.retention_days);
  const [item] = await prepareEvents([raw], config, limits, nowMs, horizon);
  if (!item) throw new Error("prepareEvents returned nothing for one item");
  if (!item.ok) return { ok: false, code: item.code, message: item.message };
  const classification = config.classifier.classify(item.event.event_type);
  // prepareEvents validated `raw`, so a defined category is one the producer named.
  const namedCategory = (raw as { category?: unknown }).category !== undefined;
  return {
    ok: true,
    explanation: describeDecision({
      event: item.event,
      route: item.route,
      classifiedBy: namedCategory ? "producer" : classification.rule ?? "fallback",
      legacyRule: classification.legacy ? classification.rule : null,
      config,
    }),
  };
}

export interface DecisionFacts {
  event: StoredEvent;
  route: RouteDecision;
  classifiedBy: string;
  /** The legacy rule that matched the event type, if any. */
  legacyRule: string | null;
  config: LoadedConfig;
}

/** The explanation of a decision already made; the sentence names every fact that decided it. */
export function describeDecision(facts: DecisionFacts): RouteExplanation {
  const { event, route, config } = facts;
  const flags = config.categories[event.category];
  const field = config.routing.routingKey;
  const value = routingKeyOf(event, field);
  const bucket = route.bucket ?? bucketOf(value, event.category);
  const threshold = splitThreshold(flags.percentage);
  return {
    config_version: config.version,
    id: event.id,
    category: event.category,
    classified_by: facts.classifiedBy,
    legacy: event.legacy,
    routing_key: { field, value },
    bucket,
    percentage: flags.percentage,
    threshold,
    in_split: bucket < threshold,
    split_consulted: route.bucket !== undefined,
    adapters: route.adapters,
    reason: route.reason,
    ...(route.deferred ? { deferred: route.deferred } : {}),
    explanation: [
      classificationSentence(facts),
      routeSentence(facts, route.reason === "breaker_fallback" ? beforeBreakers(facts) : route),
      route.deferred ? breakerSentence(route, beforeBreakers(facts)) : "",
    ].filter(Boolean).join(" "),
  };
}

/** The decision the same event gets with every breaker closed. */
function beforeBreakers(facts: DecisionFacts): RouteDecision {
  const { openBreakers: _, ...closed } = facts.config.routing;
  return routeEvent(facts.event, closed);
}

const list = (adapters: readonly Adapter[]) => adapters.join(" and ");

function classificationSentence(facts: DecisionFacts): string {
  const { event } = facts;
  if (facts.classifiedBy === "producer") {
    return `The producer named the category ${event.category}.`;
  }
  if (facts.classifiedBy === "fallback") {
    return `No classification rule matches event_type "${event.event_type}", so the category is ${event.category}.`;
  }
  return `event_type "${event.event_type}" matches the rule /${facts.classifiedBy}/, so the category is ${event.category}.`;
}

function routeSentence(facts: DecisionFacts, route: RouteDecision): string {
  const { event, config } = facts;
  const flags = config.categories[event.category];
  const primary = config.routing.primary;
  const primaryOnly = `the event goes to the primary adapter (${primary}) only.`;
  switch (route.reason) {
    case "legacy":
      return `event_type "${event.event_type}" is a legacy type (rule /${facts.legacyRule}/): it is stored and delivered live to no adapter.`;
    case "override":
      return `The global override is ${config.routing.globalOverride}: every event goes to ${
        list(route.adapters)
      } only.`;
    case "disabled":
      return `Category ${event.category} is disabled: ${primaryOnly}`;
    case "no_adapters":
      return `Category ${event.category} lists no adapters: ${primaryOnly}`;
    case "in_split":
    case "outside_split": {
      const field = config.routing.routingKey;
      const where = `The routing key (${field} "${
        routingKeyOf(event, field)
      }") falls in bucket ${route.bucket} of ${event.category}`;
      const threshold = `the threshold ${splitThreshold(flags.percentage)} (${flags.percentage} %)`;
      return route.reason === "in_split"
        ? `${where}, below ${threshold}: the event goes to ${
          list(route.adapters)
        } (the category's adapters plus the primary, ${primary}).`
        : `${where}, not below ${threshold}: ${primaryOnly}`;
    }
    case "breaker_fallback":
      return "";
  }
}

function breakerSentence(route: RouteDecision, closed: RouteDecision): string {
  const added = route.adapters.filter((a) => !closed.adapters.includes(a));
  const deferred = route.deferred ?? [];
  return `The breaker of ${list(deferred)} is open: delivery there waits until it recovers` +
    (added.length ? `, and ${list(added)} was added so that the event is live now.` : ".");
}
