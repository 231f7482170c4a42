// Short notices in the corner: errors in words, invitations, "you were removed".

import { h } from "./dom.js";

const SHOWN_MS = { error: 8000, info: 5000 };

export function toast(text, { kind = "info", action = null } = {}) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const close = () => item.remove();
  const item = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", { class: "toast-text" }, text),
    action ? h("a", { href: action.href, class: "toast-action", onclick: close }, action.label) : null,
    h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", onclick: close }, "×"));
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(close, SHOWN_MS[kind] || 6000);
}
