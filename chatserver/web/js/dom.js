// Building the page without ever parsing HTML: every piece of data becomes a
// text node, so a message or post containing markup is shown, never run.
// (No innerHTML, outerHTML, insertAdjacentHTML or document.write anywhere.)

import { errorWords } from "./words.js";

/**
 * h("button", {class: "x", onclick: fn, type: "button"}, "text", child, [more])
 * Props: `class`, `text`, `dataset` (object), `on<event>` (function), `hidden`,
 * `value`, `checked`, `disabled`; anything else is set with setAttribute.
 * Children: strings (as text), nodes, arrays, and null/undefined/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked" || key === "disabled" || key === "hidden") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** A link inside the page (hash routes). */
export function link(href, text, props = {}) {
  return h("a", { href, ...props }, text);
}

export function displayName(user) {
  if (!user) return "someone";
  if (typeof user === "string") return user;
  return user.display || user.name || user.id || "someone";
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function shortTime(ts) {
  if (!ts) return "";
  const date = new Date(ts);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeFormat.format(date) : dateTimeFormat.format(date);
}

export function fullTime(ts) {
  return ts ? dateTimeFormat.format(new Date(ts)) : "";
}

/** A labelled form field: h("label", …) wrapping the text and the control. */
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, label), control,
    hint ? h("small", { class: "hint" }, hint) : null);
}

/** Show `text` in a form's error line (`<p class="form-error">`). */
export function showError(errorEl, text) {
  errorEl.textContent = text;
  errorEl.hidden = false;
}

/**
 * Run `work` with the form's controls disabled. A failure is shown in `errorEl` as
 * `describe(error)` (the error in words by default); resolves to `work`'s result, or
 * undefined when it failed.
 */
export async function attempt(form, errorEl, work, describe = errorWords) {
  errorEl.hidden = true;
  const controls = [...form.querySelectorAll("button, input, textarea, select")];
  const before = controls.map((c) => c.disabled);
  controls.forEach((c) => { c.disabled = true; });
  try {
    return await work();
  } catch (err) {
    showError(errorEl, describe(err));
    return undefined;
  } finally {
    controls.forEach((c, i) => { c.disabled = before[i]; });
  }
}

/** A button that copies `text` (falls back to selecting it where the clipboard API is unavailable). */
export function copyButton(text, target) {
  const button = h("button", { type: "button", class: "small ghost" }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (err) {
      if (target) window.getSelection().selectAllChildren(target);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
  return button;
}

/** An id shown for copying: `<code>id</code> [Copy]`. */
export function idBadge(id, props = {}) {
  const code = h("code", { class: "id", ...props }, id);
  return h("span", { class: "id-badge" }, code, copyButton(id, code));
}
