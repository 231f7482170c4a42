// Sign in and sign up (POST /api/tokens, POST /api/users).

import { Api } from "../api.js";
import { attempt, clear, field, h, showError } from "../dom.js";
import { errorWords } from "../words.js";

const NAME_RULE = "3–32 characters: a-z, 0-9, _ . -";

export function mountAuth(root, { onSignedIn, message }) {
  const api = new Api();
  let mode = "signin";
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const note = h("p", { class: "form-note", hidden: !message, text: message || "" });
  const name = h("input", {
    name: "name", autocomplete: "username", required: true, minlength: 3, maxlength: 32,
    pattern: "[a-z0-9_.\\-]{3,32}", autocapitalize: "none", spellcheck: "false",
  });
  const display = h("input", { name: "display", autocomplete: "nickname", maxlength: 64 });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const displayField = field("Display name (optional)", display);
  const nameField = field("User name", name);
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const switcher = h("button", { type: "button", class: "link-button", onclick: () => setMode(mode === "signin" ? "signup" : "signin") });
  const title = h("h1");
  const form = h("form", { class: "auth-form", novalidate: true, onsubmit: onSubmit },
    title, note, nameField, displayField, field("Password", password), error, submit, h("p", { class: "switch" }, switcher));

  function setMode(next) {
    mode = next;
    const signup = mode === "signup";
    title.textContent = signup ? "Create an account" : "Sign in";
    submit.textContent = signup ? "Sign up" : "Sign in";
    switcher.textContent = signup ? "I already have an account: sign in" : "New here? Create an account";
    displayField.hidden = !signup;
    password.autocomplete = signup ? "new-password" : "current-password";
    nameField.querySelector(".hint")?.remove();
    if (signup) nameField.append(h("small", { class: "hint" }, NAME_RULE));
    error.hidden = true;
  }

  async function onSubmit(event) {
    event.preventDefault();
    error.hidden = true;
    const values = { name: name.value.trim(), password: password.value };
    if (!values.name || !values.password) return showError(error, "Enter your user name and password.");
    if (mode === "signup" && !/^[a-z0-9_.-]{3,32}$/.test(values.name)) {
      return showError(error, `A user name is ${NAME_RULE} (lowercase only).`);
    }
    const signedIn = await attempt(form, error, async () => {
      if (mode === "signup") {
        const body = { ...values };
        if (display.value.trim()) body.display = display.value.trim();
        await api.post("/api/users", body);
      }
      return api.post("/api/tokens", values);
    }, (err) => (err.status === 401 ? "Wrong user name or password."
      : err.status === 409 ? "That user name is taken. Pick another." : errorWords(err)));
    if (signedIn) onSignedIn(signedIn.token, signedIn.user);
  }

  setMode(mode);
  clear(root).append(h("main", { class: "auth" },
    h("div", { class: "auth-card" }, h("div", { class: "brand big" }, "Chat"), form)));
  name.focus();
}
