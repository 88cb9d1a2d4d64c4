/**
 * A few lines instead of a framework: `h()` builds elements, props starting
 * with `on` become listeners, `true` becomes an empty attribute and
 * `false`/`null`/`undefined` leave the attribute out.
 */
export type Child = Node | string | number | null | undefined | false;
type Props = Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === false || value === null || value === undefined) continue;
      if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value as EventListener);
      } else if (key === "class") {
        el.className = String(value);
      } else if (key === "value" && "value" in el) {
        (el as HTMLInputElement).value = String(value);
      } else if (key === "checked" && "checked" in el) {
        (el as HTMLInputElement).checked = Boolean(value);
      } else {
        el.setAttribute(key, value === true ? "" : String(value));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el: Node, children: (Child | Child[])[]): void {
  for (const child of children) {
    if (Array.isArray(child)) append(el, child);
    else if (child === null || child === undefined || child === false) continue;
    else el.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `el`. */
export function replaceChildren(el: Element, ...children: (Child | Child[])[]): void {
  el.textContent = "";
  append(el, children);
}

/** Sets text only when it changed (cheap to call every frame). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * A table with a header row of column names and the given body; `caption`
 * (read by screen readers only) names it when nothing visible does.
 */
export function dataTable(
  props: Props,
  columns: readonly string[],
  body: HTMLTableSectionElement,
  caption?: string,
): HTMLTableElement {
  return h(
    "table",
    props,
    caption ? h("caption", { class: "sr-only" }, caption) : null,
    h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col" }, c)))),
    body,
  );
}
