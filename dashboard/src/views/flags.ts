/**
 * The Flags view (service role): every category's flags and the global
 * settings as a form; edits are collected, reviewed as a list of
 * `field: before → after`, and applied together as one batch with a reason
 * (all or nothing, optimistic concurrency on the version loaded). A refusal
 * says what to do: 409 keeps the edits and offers to reload under them; 400
 * marks the field at fault. Below, the audit log.
 */
import type { ApiResult } from "../api.ts";
import type { Dashboard } from "../app.ts";
import { type Category, CATEGORY_LIST } from "../core/events.ts";
import {
  batchChanges,
  type CategoryFlagValues,
  describeEdits,
  editCategory,
  editCount,
  editSetting,
  emptyEdits,
  fieldOfIssue,
  type FlagEdits,
  rebase,
  type Snapshot,
} from "../core/flag-edits.ts";
import type { AuditEntry, AuditPage } from "../../../shared/flags/store.ts";
import { dataTable, h, replaceChildren } from "./dom.ts";
import { ago, dateTime, label } from "./format.ts";

const QUICK_SETTINGS = [
  "global_override",
  "primary_adapter",
  "anon_read_enabled",
  "broadcast_private",
];

interface FlagsSnapshot extends Snapshot {
  changed_at: string;
  categories: Record<Category, CategoryFlagValues & { updated_at: string }>;
  problems: string[];
}

/** Short text for an audit entry's change: the fields whose values differ. */
export function auditChange(entry: AuditEntry): string {
  const before = entry.before ?? {};
  const after = entry.after ?? {};
  const show = (v: unknown) =>
    v === undefined ? "–" : Array.isArray(v) ? `[${v.join(", ")}]` : JSON.stringify(v);
  if (entry.action === "insert") {
    return entry.table_name === "settings"
      ? `set to ${show(after.value)}`
      : Object.entries(after).filter(([k]) => !["updated_at", "category"].includes(k))
        .map(([k, v]) => `${k} ${show(v)}`).join("; ");
  }
  if (entry.action === "delete") return "removed";
  if (entry.table_name === "settings") return `${show(before.value)} → ${show(after.value)}`;
  const fields = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((k) => !["updated_at", "category"].includes(k))
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  return fields.map((k) => `${k}: ${show(before[k])} → ${show(after[k])}`).join("; ") ||
    entry.action;
}

export function mountFlags(app: Dashboard, root: HTMLElement, openSignIn: () => void): void {
  let snapshot: FlagsSnapshot | null = null;
  let edits: FlagEdits = emptyEdits();
  let problems = new Map<string, string>();
  let loadError: string | null = null;
  let audit: AuditEntry[] = [];
  let auditNext: number | null = null;
  let auditError: string | null = null;

  const form = h("form", { class: "flags-form", novalidate: true });
  const feedback = h("div", { class: "feedback", role: "alert", hidden: true });
  const auditBox = h("section", { class: "panel audit", "aria-labelledby": "audit-h" });
  const reason = h("input", {
    type: "text",
    name: "reason",
    placeholder: "Why? (kept in the audit log)",
    "aria-label": "Reason for the change",
    maxlength: "500",
  });
  const operator = h("input", {
    type: "text",
    name: "operator",
    placeholder: "your name",
    "aria-label": "Operator name for the audit log",
    maxlength: "100",
    value: app.session.operator,
  });
  operator.addEventListener("change", () => (app.session.operator = operator.value));
  const applyButton = h("button", { type: "submit", class: "btn primary" }, "Apply changes");
  const discardButton = h("button", { type: "button", class: "btn" }, "Discard");
  const pending = h("div", { class: "pending" });
  const changeBar = h(
    "div",
    { class: "change-bar", "aria-label": "Pending changes" },
    pending,
    h("label", { class: "field" }, h("span", null, "Operator"), operator),
    h("label", { class: "field grow" }, h("span", null, "Reason"), reason),
    h("span", { class: "field-error", "data-for": "reason" }),
    applyButton,
    discardButton,
  );
  discardButton.addEventListener("click", () => {
    edits = emptyEdits();
    problems.clear();
    showFeedback(null);
    draw();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void apply();
  });

  function showFeedback(
    message: (string | Node)[] | null,
    tone: "ok" | "bad" | "warn" = "ok",
  ): void {
    feedback.hidden = message === null;
    feedback.className = `feedback ${tone}`;
    if (message) replaceChildren(feedback, ...message);
  }

  async function load(): Promise<void> {
    if (app.session.role !== "service_role") {
      snapshot = null;
      draw();
      return;
    }
    const res = await app.api.get<FlagsSnapshot>("flags");
    if (res.ok) {
      snapshot = res.data;
      edits = rebase(edits, snapshot);
      loadError = null;
    } else {
      loadError = res.error.status === 403
        ? "The flags API accepts only the service-role key; this credential is not it."
        : `Could not read the flags: ${res.error.message}`;
    }
    draw();
    await loadAudit(false);
  }

  async function loadAudit(more: boolean): Promise<void> {
    if (app.session.role !== "service_role") return;
    const res: ApiResult<AuditPage> = await app.api.get<AuditPage>("flags/audit", {
      limit: 25,
      before_id: more && auditNext !== null ? auditNext : undefined,
    });
    if (res.ok) {
      audit = more ? audit.concat(res.data.entries) : res.data.entries;
      auditNext = res.data.next_before_id;
      auditError = null;
    } else auditError = res.error.message;
    drawAudit();
  }

  async function apply(): Promise<void> {
    if (!snapshot) return;
    const changes = batchChanges(edits);
    if (changes.length === 0) return;
    problems.clear();
    applyButton.disabled = true;
    showFeedback(["Applying…"], "warn");
    app.session.operator = operator.value;
    const res = await app.api.send<{ changed: boolean; version: number }>("POST", "flags/batch", {
      expected_version: snapshot.version,
      reason: reason.value,
      changes,
    });
    applyButton.disabled = false;
    if (res.ok) {
      const lines = describeEdits(edits, snapshot);
      edits = emptyEdits();
      reason.value = "";
      app.emit("flags");
      showFeedback(
        [
          h(
            "strong",
            null,
            res.data.changed ? `Applied: now version ${res.data.version}.` : "Nothing to change.",
          ),
          ` ${lines.join("; ")}. Functions pick it up within seconds.`,
        ],
        "ok",
      );
      await load();
      return;
    }
    const error = res.error;
    if (error.status === 409 && error.code === "version_conflict") {
      const reload = h("button", { type: "button", class: "btn" }, "Reload, keeping my edits");
      reload.addEventListener("click", () => {
        showFeedback(null);
        void load();
      });
      showFeedback(
        [
          h("strong", null, "Refused: someone changed the flags first. "),
          `You edited version ${snapshot.version}; it is now version ${
            error.currentVersion ?? "?"
          }. Nothing was changed. `,
          "Reload to see their change; your edits stay on top so you can review and apply again. ",
          reload,
        ],
        "bad",
      );
    } else if (error.status === 400) {
      for (const issue of error.issues ?? []) {
        const field = fieldOfIssue(issue.path, changes);
        if (!field) continue;
        const key = field.kind === "category"
          ? `${field.category}.${field.field}`
          : field.kind === "setting"
          ? `setting.${field.key}`
          : "reason";
        if (!problems.has(key)) problems.set(key, issue.message);
      }
      showFeedback(
        [
          h("strong", null, "Refused (400): "),
          error.message,
          ". Nothing was changed; fix the marked field and apply again.",
        ],
        "bad",
      );
    } else if (error.status === 401 || error.status === 403) {
      showFeedback([h("strong", null, `Refused (${error.status}): `), error.message], "bad");
    } else {
      showFeedback(
        [
          h("strong", null, `Failed (${error.status || "no answer"}): `),
          error.message,
          ". Nothing was changed.",
        ],
        "bad",
      );
    }
    draw();
  }

  function fieldProblem(key: string): HTMLElement | null {
    const message = problems.get(key);
    return message
      ? h("span", { class: "field-error", id: `err-${key.replace(/\W/g, "-")}` }, message)
      : null;
  }

  function invalidAttrs(key: string): Record<string, string | undefined> {
    return problems.has(key)
      ? { "aria-invalid": "true", "aria-describedby": `err-${key.replace(/\W/g, "-")}` }
      : {};
  }

  function categoryRow(s: FlagsSnapshot, c: Category): HTMLElement {
    const flags = { ...s.categories[c], ...(edits.categories[c] ?? {}) };
    const changed = (f: string) =>
      (edits.categories[c] as Record<string, unknown> | undefined)?.[f] !== undefined;
    const set = <K extends keyof CategoryFlagValues>(f: K, v: CategoryFlagValues[K]) => {
      editCategory(edits, s, c, f, v);
      problems.delete(`${c}.${f}`);
      drawPending();
      form.querySelector(`[data-field="${c}.${f}"]`)?.classList.toggle("changed", changed(f));
    };
    const enabled = h("input", {
      type: "checkbox",
      checked: flags.enabled,
      "aria-label": `${label(c)} enabled`,
      ...invalidAttrs(`${c}.enabled`),
    });
    enabled.addEventListener("change", () => set("enabled", enabled.checked));
    const pct = h("input", {
      type: "number",
      min: "0",
      max: "100",
      step: "0.01",
      value: String(flags.percentage),
      "aria-label": `${label(c)} percentage routed to its adapters`,
      name: `${c}.percentage`,
      ...invalidAttrs(`${c}.percentage`),
    });
    pct.addEventListener("input", () => {
      const v = pct.value.trim() === "" ? NaN : Number(pct.value);
      if (!Number.isNaN(v)) set("percentage", v);
    });
    const adapterBoxes = ["websocket", "realtime"].map((a) => {
      const box = h("input", {
        type: "checkbox",
        checked: flags.adapters.includes(a),
        "aria-label": `${label(c)} routes to ${a}`,
        name: `${c}.adapters.${a}`,
      });
      box.addEventListener("change", () => {
        const now = new Set(({ ...s.categories[c], ...(edits.categories[c] ?? {}) }).adapters);
        if (box.checked) now.add(a);
        else now.delete(a);
        set("adapters", ["websocket", "realtime"].filter((x) => now.has(x)));
      });
      return h("label", { class: "inline" }, box, ` ${a}`);
    });
    const select = (f: "delivery_mode" | "checksum_alg", options: string[]) => {
      const el = h(
        "select",
        {
          "aria-label": `${label(c)} ${label(f)}`,
          name: `${c}.${f}`,
          ...invalidAttrs(`${c}.${f}`),
        },
        options.map((o) => h("option", { value: o }, o)),
      );
      el.value = flags[f];
      el.addEventListener("change", () => set(f, el.value));
      return el;
    };
    const cell = (f: string, ...content: (Node | null)[]) =>
      h(
        "td",
        { "data-field": `${c}.${f}`, class: changed(f) ? "changed" : "" },
        ...content,
        fieldProblem(`${c}.${f}`),
      );
    return h(
      "tr",
      { "data-category": c },
      h("th", { scope: "row" }, h("span", { class: `badge cat-${c}` }, label(c))),
      cell("enabled", enabled),
      cell("percentage", pct, h("span", { class: "unit" }, " %")),
      cell("adapters", ...adapterBoxes),
      cell("delivery_mode", select("delivery_mode", ["postgres_changes", "broadcast"])),
      cell("checksum_alg", select("checksum_alg", ["crc32", "sha256"])),
      h(
        "td",
        { class: "muted small", title: s.categories[c].updated_at },
        ago(s.categories[c].updated_at),
      ),
    );
  }

  function settingControl(s: FlagsSnapshot, key: string): HTMLElement {
    const value = key in edits.settings ? edits.settings[key] : s.settings[key];
    const commit = (v: unknown) => {
      editSetting(edits, s, key, v);
      problems.delete(`setting.${key}`);
      drawPending();
      form.querySelector(`[data-setting="${key}"]`)?.classList.toggle(
        "changed",
        key in edits.settings,
      );
    };
    let control: HTMLElement;
    if (key === "global_override") {
      const el = h(
        "select",
        { name: key, ...invalidAttrs(`setting.${key}`) },
        h("option", { value: "" }, "none (per-category routing)"),
        h("option", { value: "websocket_only" }, "websocket_only"),
        h("option", { value: "realtime_only" }, "realtime_only"),
      );
      el.value = (value as string | null) ?? "";
      el.addEventListener("change", () => commit(el.value === "" ? null : el.value));
      control = el;
    } else if (key === "primary_adapter") {
      const el = h(
        "select",
        { name: key, ...invalidAttrs(`setting.${key}`) },
        h("option", { value: "websocket" }, "websocket"),
        h("option", { value: "realtime" }, "realtime"),
      );
      el.value = String(value);
      el.addEventListener("change", () => commit(el.value));
      control = el;
    } else if (typeof value === "boolean") {
      const el = h("input", {
        type: "checkbox",
        name: key,
        checked: value,
        ...invalidAttrs(`setting.${key}`),
      });
      el.addEventListener("change", () => commit(el.checked));
      control = el;
    } else {
      const el = h("textarea", {
        name: key,
        rows: typeof value === "object" ? "4" : "1",
        spellcheck: "false",
        ...invalidAttrs(`setting.${key}`),
      });
      el.value = JSON.stringify(value, null, typeof value === "object" ? 1 : 0);
      el.addEventListener("input", () => {
        try {
          commit(JSON.parse(el.value));
          el.removeAttribute("aria-invalid");
        } catch {
          el.setAttribute("aria-invalid", "true");
        }
      });
      control = el;
    }
    return h(
      "div",
      { class: `setting ${key in edits.settings ? "changed" : ""}`, "data-setting": key },
      h("label", null, h("span", { class: "setting-name" }, label(key)), control),
      fieldProblem(`setting.${key}`),
    );
  }

  function drawPending(): void {
    const n = editCount(edits);
    changeBar.hidden = n === 0 && feedback.hidden;
    applyButton.disabled = n === 0;
    discardButton.disabled = n === 0;
    replaceChildren(
      pending,
      n === 0 ? h("span", { class: "muted" }, "No pending change.") : [
        h("strong", null, `${n} pending change${n === 1 ? "" : "s"}: `),
        snapshot ? describeEdits(edits, snapshot).join("; ") : "",
      ],
      fieldProblem("reason"),
    );
    if (problems.has("reason")) reason.setAttribute("aria-invalid", "true");
    else reason.removeAttribute("aria-invalid");
  }

  function draw(): void {
    if (app.session.role !== "service_role") {
      const signIn = h("button", { type: "button", class: "btn primary" }, "Sign in");
      signIn.addEventListener("click", openSignIn);
      replaceChildren(
        root,
        h(
          "div",
          { class: "panel gate" },
          h("h2", null, "Flags are for the service role"),
          h(
            "p",
            null,
            "Changing the rollout (percentages, adapters, the global override) and reading the audit log need the project's service-role key. It is kept in this tab only (sessionStorage) and sent only to this project's API.",
          ),
          signIn,
        ),
      );
      return;
    }
    if (!snapshot) {
      replaceChildren(
        root,
        h("div", { class: "panel" }, h("p", { class: "muted" }, loadError ?? "Loading the flags…")),
      );
      return;
    }
    const s = snapshot;
    const reload = h("button", { type: "button", class: "btn" }, "Reload");
    reload.addEventListener("click", () => void load());
    replaceChildren(
      form,
      h(
        "div",
        { class: "flags-head" },
        h("h2", null, `Configuration v${s.version}`),
        h("span", { class: "muted" }, `changed ${ago(s.changed_at)} (${dateTime(s.changed_at)})`),
        reload,
      ),
      s.problems.length
        ? h(
          "p",
          { class: "warn-text" },
          `Stored values that fail validation (defaults used): ${s.problems.join("; ")}`,
        )
        : null,
      dataTable(
        { class: "grid flags-table" },
        ["category", "enabled", "percentage", "adapters", "delivery", "checksum", "changed"],
        h("tbody", null, CATEGORY_LIST.map((c) => categoryRow(s, c))),
        "Category flags",
      ),
      h(
        "p",
        { class: "muted small" },
        "Routing: inside a category's percentage (sticky by source), events go to its adapters plus the primary; outside it, or when disabled, to the primary only. Routing never drops an event.",
      ),
      h(
        "div",
        { class: "settings-quick" },
        QUICK_SETTINGS.filter((k) => k in s.settings).map((k) => settingControl(s, k)),
      ),
      h(
        "details",
        { class: "settings-more" },
        h("summary", null, "More settings (health thresholds, breaker, rollback, retention)"),
        h(
          "div",
          { class: "settings-grid" },
          Object.keys(s.settings).filter((k) => !QUICK_SETTINGS.includes(k)).map((k) =>
            settingControl(s, k)
          ),
        ),
      ),
      feedback,
      changeBar,
    );
    drawPending();
    replaceChildren(root, h("div", { class: "flags" }, form, auditBox));
    drawAudit();
  }

  function drawAudit(): void {
    const more = h("button", { type: "button", class: "btn" }, "Older entries");
    more.addEventListener("click", () => void loadAudit(true));
    replaceChildren(
      auditBox,
      h("h2", { id: "audit-h" }, "Audit log"),
      auditError ? h("p", { class: "warn-text" }, auditError) : null,
      audit.length === 0 ? h("p", { class: "muted" }, "No change recorded yet.") : dataTable(
        { class: "grid audit-table" },
        ["when", "who", "what", "change", "reason", "version"],
        h(
          "tbody",
          null,
          audit.map((e) =>
            h(
              "tr",
              { "data-audit-id": String(e.id) },
              h("td", { title: e.changed_at, class: "nowrap" }, dateTime(e.changed_at)),
              h("td", null, e.actor),
              h("td", null, `${e.table_name === "settings" ? "setting" : "category"} ${e.key}`),
              h("td", { class: "mono small" }, auditChange(e)),
              h("td", null, e.reason ?? "–"),
              h("td", null, `v${e.config_version}`),
            )
          ),
        ),
      ),
      auditNext !== null ? more : null,
    );
  }

  app.on("session", () => {
    // The sign-in dialog may have named the operator.
    operator.value = app.session.operator;
    edits = emptyEdits();
    problems = new Map();
    void load();
  });
  void load();
}
