// Finding people, records, groups and messages (docs/protocol.md §12.13): one
// search box for all four, "find your class" (records by school and year, and
// a request to join), a person's page (block; message when the server has
// direct rooms) and the account's own settings (display name, password).

import { enc, withQuery } from "../api.js";
import { attempt, clear, displayName, field, fullTime, h, showError } from "../dom.js";
import { errorWords } from "../words.js";
import { recordLine } from "./alumni.js";

const MIN_QUERY = 2;

/** A snippet whose matches the server marked `[`…`]`, with each match in a <mark> (as text, never HTML). */
export function markedSnippet(snippet) {
  const parts = [];
  const pattern = /\[([^\]]*)\]/g;
  let last = 0;
  for (let match = pattern.exec(snippet); match; match = pattern.exec(snippet)) {
    parts.push(snippet.slice(last, match.index), h("mark", {}, match[1]));
    last = match.index + match[0].length;
  }
  parts.push(snippet.slice(last));
  return h("span", { class: "snippet" }, parts);
}

/** The top bar's box: sends the query to `#/search/<q>`. */
export function searchBox(navigate) {
  const input = h("input", { type: "search", name: "q", placeholder: "Search people, records, groups, messages",
    "aria-label": "Search", maxlength: 200, id: "search-box" });
  return h("form", { class: "search-form", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const q = input.value.trim();
    if (q) navigate(`#/search/${enc(q)}`);
  } }, input);
}

function section(title, id, items, render, empty) {
  return h("div", { class: "card search-section", id },
    h("h2", {}, title),
    items.length ? h("ul", { class: "search-results" }, items.map((item) => h("li", {}, render(item))))
      : h("p", { class: "muted" }, empty));
}

export function mountSearch(main, { api, chat }, { q = "" }) {
  const page = h("section", { class: "page search-page" }, h("h1", {}, `Search: ${q}`));
  main.append(page);
  document.title = `Search: ${q}`;
  if ([...q].length < MIN_QUERY) {
    page.append(h("p", { class: "muted" }, `Type at least ${MIN_QUERY} characters.`));
    return null;
  }
  let alive = true;
  const status = h("p", { class: "muted" }, "Searching…");
  page.append(status);
  const get = (path) => api.get(path).then((d) => d.items, (err) => err);
  Promise.all([
    get(withQuery("/api/users", { q: q.slice(0, 64), limit: 20 })),
    get(withQuery("/api/alumni", { q: q.slice(0, 64), limit: 20 })),
    get(withQuery("/api/rooms/discover", { q: q.slice(0, 64), limit: 20 })),
    get(withQuery("/api/search", { q, limit: 30 })),
  ]).then(([people, records, groups, messages]) => {
    if (!alive) return;
    status.remove();
    const failed = (items) => (items instanceof Error ? errorWords(items) : null);
    const list = (items) => (items instanceof Error ? [] : items);
    page.append(
      section("People", "search-people", list(people), (u) => h("a", { href: `#/user/${enc(u.id)}` },
        displayName(u), h("span", { class: "muted" }, ` @${u.name}`)), failed(people) || "Nobody found."),
      section("Alumni records", "search-records", list(records), (r) => [h("a", { href: `#/alumni/${enc(r.id)}` }, r.name),
        h("span", { class: "muted" }, ` ${recordLine(r)} · ${r.member_count} members`)], failed(records) || "No record found."),
      section("Groups", "search-groups", list(groups), (g) => [h("a", { href: `#/room/${enc(g.id)}` }, g.name),
        h("span", { class: "muted" }, ` ${g.member_count} members${chat.rooms.has(g.id) ? " · you are in it" : ""}`)],
      failed(groups) || "No open group found."),
      section("Messages", "search-messages", list(messages), (m) => {
        const room = chat.rooms.get(m.room);
        return [h("a", { href: `#/room/${enc(m.room)}/${m.seq}`, class: "message-hit" }, markedSnippet(m.snippet)),
          h("span", { class: "muted" }, ` ${displayName(m.from)} in ${room ? room.name : "a group"}, ${fullTime(m.ts)}`)];
      }, failed(messages) || "No message found in your groups."));
  });
  return () => { alive = false; };
}

// ---------------------------------------------------------------------------- find your class

export function mountFindClass(main, { api, toast }) {
  const inputs = {
    school: h("input", { name: "school", maxlength: 200, placeholder: "School" }),
    year: h("input", { name: "year", type: "number", min: 1900, max: 2100, placeholder: "Year" }),
    class_name: h("input", { name: "class_name", maxlength: 100, placeholder: "Class" }),
  };
  const results = h("ul", { class: "record-list", id: "class-results" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "page-form", id: "find-class", onsubmit: async (event) => {
    event.preventDefault();
    const params = { limit: 50 };
    for (const [key, input] of Object.entries(inputs)) if (input.value.trim()) params[key] = input.value.trim();
    if (Object.keys(params).length === 1) {
      showError(error, "Give a school, a year or a class.");
      return;
    }
    const found = await attempt(form, error, () => api.get(withQuery("/api/alumni", params)));
    if (!found) return;
    clear(results);
    if (!found.items.length) results.append(h("li", { class: "muted" }, "No record found. Start one from Alumni."));
    for (const record of found.items) {
      const ask = h("button", { type: "button", class: "small", async onclick() {
        try {
          await api.post(`/api/alumni/${enc(record.id)}/requests`, {});
          ask.textContent = "Requested";
          ask.disabled = true;
          toast("Asked to join: the record's owner decides.", { kind: "info" });
        } catch (err) {
          toast(err.code === "conflict" ? "You are in it already, or already asked." : errorWords(err), { kind: "error" });
        }
      } }, "Request to join");
      results.append(h("li", { dataset: { record: record.id } },
        h("a", { href: `#/alumni/${enc(record.id)}` }, record.name),
        h("span", { class: "muted" }, ` ${recordLine(record)} · ${record.member_count} members `), ask));
    }
  } },
  h("h1", {}, "Find your class"),
  h("p", { class: "muted" }, "Search alumni records by school, year and class, and ask to join yours."),
  field("School", inputs.school), field("Year", inputs.year), field("Class", inputs.class_name), error,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Search")));
  main.append(h("section", { class: "page" }, form, h("div", { class: "card" }, results)));
  inputs.school.focus();
}

// ---------------------------------------------------------------------------- a person

export function mountProfile(main, { api, chat, toast }, { id }) {
  const page = h("section", { class: "page profile-page", dataset: { user: id } }, h("p", { class: "muted" }, "Loading…"));
  main.append(page);
  let alive = true;
  Promise.all([api.get(`/api/users/${enc(id)}`), api.get("/api/me/blocks")]).then(([user, blocks]) => {
    if (!alive) return;
    let blocked = blocks.items.some((u) => u.id === id);
    const me = user.id === chat.me.id;
    const block = h("button", { type: "button", class: "small ghost", id: "block-user", async onclick() {
      try {
        if (blocked) await api.del(`/api/me/blocks/${enc(id)}`);
        else await api.put(`/api/me/blocks/${enc(id)}`, {});
        blocked = !blocked;
        block.textContent = blocked ? "Unblock" : "Block";
        toast(blocked ? `${displayName(user)} is blocked.` : `${displayName(user)} is unblocked.`, { kind: "info" });
      } catch (err) {
        toast(errorWords(err), { kind: "error" });
      }
    } }, blocked ? "Unblock" : "Block");
    // "Message" needs direct rooms (POST /api/dms); without them on the server the button stays hidden.
    const message = h("button", { type: "button", class: "small primary", id: "message-user", hidden: true, async onclick() {
      try {
        const room = await api.post("/api/dms", { user_id: id });
        location.hash = `#/room/${enc(room.id)}`;
      } catch (err) {
        toast(errorWords(err), { kind: "error" });
      }
    } }, "Message");
    if (!me) {
      api.get("/api/openapi.json").then((doc) => { message.hidden = !(doc.paths && doc.paths["/api/dms"]); }, () => {});
    }
    clear(page).append(h("div", { class: "card" },
      h("h1", {}, displayName(user)),
      h("p", { class: "muted" }, `@${user.name}${user.bot ? " · bot" : ""} · joined ${fullTime(user.created)}`),
      h("div", { class: "actions" }, me ? h("a", { class: "button small", href: "#/settings" }, "Account settings")
        : [message, block], h("a", { class: "button small ghost", href: `#/space/${enc(id)}` }, "Space"))));
  }, (err) => {
    if (alive) clear(page).append(h("p", { class: "form-error" }, err.code === "not_found" ? "There is no such user." : errorWords(err)));
  });
  return () => { alive = false; };
}

// ---------------------------------------------------------------------------- my account

export function mountSettings(main, { api, chat, toast }) {
  const display = h("input", { name: "display", maxlength: 64, required: true, value: chat.me.display || "" });
  const displayError = h("p", { class: "form-error", role: "alert", hidden: true });
  const displayForm = h("form", { class: "page-form", id: "display-form", onsubmit: async (event) => {
    event.preventDefault();
    const user = await attempt(displayForm, displayError, () => api.patch("/api/me", { display: display.value.trim() }));
    if (user) {
      chat.me.display = user.display;
      localStorage.setItem("chat.user", JSON.stringify(user));
      const name = document.querySelector(".me-name");
      if (name) name.textContent = displayName(user);
      toast("Display name saved.", { kind: "info" });
    }
  } }, h("h2", {}, "Display name"), field("Shown to others", display), displayError,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save")));

  const old = h("input", { name: "old", type: "password", autocomplete: "current-password", required: true });
  const fresh = h("input", { name: "new", type: "password", autocomplete: "new-password", required: true });
  const passwordError = h("p", { class: "form-error", role: "alert", hidden: true });
  const passwordForm = h("form", { class: "page-form", id: "password-form", onsubmit: async (event) => {
    event.preventDefault();
    const done = await attempt(passwordForm, passwordError,
      () => api.patch("/api/me", { password: { old: old.value, new: fresh.value } }),
      (err) => (err.code === "forbidden" ? "The current password is wrong." : errorWords(err)));
    if (done) {
      old.value = "";
      fresh.value = "";
      toast("Password changed. Your other sessions were signed out.", { kind: "info" });
    }
  } }, h("h2", {}, "Password"), field("Current password", old), field("New password", fresh), passwordError,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Change password")));

  const blocked = h("ul", { class: "record-list", id: "blocked-users" });
  api.get("/api/me/blocks").then((data) => {
    if (!data.items.length) blocked.append(h("li", { class: "muted" }, "You have blocked nobody."));
    for (const u of data.items) blocked.append(h("li", {}, h("a", { href: `#/user/${enc(u.id)}` }, displayName(u))));
  }, () => {});
  main.append(h("section", { class: "page" }, h("h1", {}, "Account settings"),
    h("div", { class: "card" }, displayForm), h("div", { class: "card" }, passwordForm),
    h("div", { class: "card" }, h("h2", {}, "Blocked"), blocked)));
}
