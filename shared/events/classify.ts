/**
 * Classification of events that arrive without a category, by the rules kept
 * in `cutover.classification_rules`: case-insensitive regular expressions over
 * `event_type`, tried in priority order; the first match wins; no match means
 * `system`.
 */
import type { Category } from "./schema.ts";

export interface ClassificationRule {
  pattern: string;
  category: Category;
  legacy: boolean;
  priority: number;
}

export interface Classification {
  category: Category;
  legacy: boolean;
  /** The pattern that decided, or null for the fallback. */
  rule: string | null;
}

export interface Classifier {
  classify(eventType: string): Classification;
}

/**
 * Compiles rules once. A rule whose pattern is not a valid regular expression
 * is skipped (and reported through `onInvalid`) rather than failing ingest.
 */
export function createClassifier(
  rules: readonly ClassificationRule[],
  onInvalid: (rule: ClassificationRule, error: Error) => void = () => {},
): Classifier {
  const compiled: { rule: ClassificationRule; re: RegExp }[] = [];
  for (const rule of [...rules].sort((a, b) => a.priority - b.priority)) {
    try {
      compiled.push({ rule, re: new RegExp(rule.pattern, "i") });
    } catch (error) {
      onInvalid(rule, error as Error);
    }
  }
  return {
    classify(eventType) {
      for (const { rule, re } of compiled) {
        if (re.test(eventType)) {
          return { category: rule.category, legacy: rule.legacy, rule: rule.pattern };
        }
      }
      return { category: "system", legacy: false, rule: null };
    },
  };
}

/** Legacy status of an event whose producer gave the category: only the legacy rules apply. */
export function isLegacyType(classifier: Classifier, eventType: string): boolean {
  return classifier.classify(eventType).legacy;
}
