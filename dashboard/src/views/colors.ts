/** One colour per category and per path, shared by badges and charts (readable on white). */
import type { Category, Path } from "../core/events.ts";

export const CATEGORY_COLORS: Record<Category, string> = {
  critical: "#c0262d",
  performance: "#1d6fb8",
  user_activity: "#7b4bb7",
  system: "#23823b",
  debug: "#6b7280",
};

export const PATH_COLORS: Record<Path, string> = {
  websocket: "#c25e00",
  realtime: "#0f8a5f",
};

export const PATH_NAMES: Record<Path, string> = { websocket: "WebSocket", realtime: "Realtime" };
