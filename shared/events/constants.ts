/**
 * The closed vocabularies of the event model, free of any dependency so that
 * browser bundles (dashboard, client libraries) can use them without zod.
 */
export const CATEGORIES = ["critical", "performance", "user_activity", "system", "debug"] as const;
export type Category = (typeof CATEGORIES)[number];

export const ADAPTERS = ["websocket", "realtime"] as const;
export type Adapter = (typeof ADAPTERS)[number];
