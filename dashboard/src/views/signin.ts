/**
 * Sign in with the service-role key (or a user's access token). The token
 * is checked against the API before it is kept: the flags API for the
 * service role (it accepts nothing else), the history API for a user.
 */
import type { Dashboard } from "../app.ts";
import { credentialFrom } from "../session.ts";
import { h } from "./dom.ts";

export function createSignIn(app: Dashboard): { element: HTMLDialogElement; open(): void } {
  const key = h("input", {
    type: "password",
    id: "signin-key",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const operator = h("input", {
    type: "text",
    id: "signin-operator",
    autocomplete: "name",
    maxlength: "100",
    placeholder: "e.g. alex",
  });
  const error = h("p", { class: "field-error", role: "alert", id: "signin-error" });
  const submit = h("button", { type: "submit", class: "btn primary" }, "Sign in");
  const cancel = h("button", { type: "button", class: "btn" }, "Cancel");
  const form = h(
    "form",
    { method: "dialog", class: "signin" },
    h("h2", { id: "signin-title" }, "Sign in"),
    h(
      "p",
      { class: "muted" },
      "Paste the project's service_role key (`npm start` prints it; hosted projects show it under Settings → API). It stays in this tab's sessionStorage and goes only to this project's API. A user's access token also works, read-only.",
    ),
    h("label", { for: "signin-key" }, "Key or access token"),
    key,
    h("label", { for: "signin-operator" }, "Your name (for the audit log, optional)"),
    operator,
    error,
    h("div", { class: "actions" }, cancel, submit),
  );
  const element = h("dialog", { class: "signin-dialog", "aria-labelledby": "signin-title" }, form);
  cancel.addEventListener("click", () => element.close());

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const credential = credentialFrom(key.value);
    if ("error" in credential) {
      error.textContent = credential.error;
      key.setAttribute("aria-invalid", "true");
      return;
    }
    submit.disabled = true;
    submit.textContent = "Checking…";
    const probe = credential.role === "service_role"
      ? await fetchWith(credential.token, "flags")
      : await fetchWith(credential.token, "events?limit=1");
    submit.disabled = false;
    submit.textContent = "Sign in";
    if (probe !== 200) {
      key.setAttribute("aria-invalid", "true");
      error.textContent = probe === 403
        ? "The API refused it: this is not the project's service-role key."
        : probe === 401
        ? "The API refused it (401): wrong signature or expired."
        : `The API could not be reached to check it (${probe || "no answer"}).`;
      return;
    }
    key.removeAttribute("aria-invalid");
    if (operator.value.trim()) app.session.operator = operator.value;
    app.session.signIn(credential);
    key.value = "";
    element.close();
  });

  async function fetchWith(token: string, path: string): Promise<number> {
    try {
      const res = await fetch(`${app.config.apiUrl.replace(/\/$/, "")}/functions/v1/${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await res.body?.cancel();
      return res.status;
    } catch {
      return 0;
    }
  }

  return {
    element,
    open() {
      operator.value = app.session.operator;
      error.textContent = "";
      element.showModal();
      key.focus();
    },
  };
}
