// My feed (GET /api/me/feed): the activity of my alumni records and my own
// posts, newest first; and the entry renderer the record view shares.

import { enc, withQuery } from "../api.js";
import { clear, displayName, fullTime, h, shortTime } from "../dom.js";
import { postHref } from "../system.js";
import { errorWords } from "../words.js";

const PROFILE_LABELS = {
  real_name: "Real name", class_name: "Class", city: "City", employer: "Employer", bio: "About", contact: "Contact",
};

/** One feed entry `{id, ts, type, actor, data, record}`; `records` maps record ids to names. */
export function feedEntry(entry, records = new Map()) {
  const data = entry.data || {};
  const who = displayName(entry.actor);
  const recordName = entry.record ? records.get(entry.record) : null;
  const where = recordName
    ? h("a", { href: `#/alumni/${enc(entry.record)}`, class: "feed-record" }, recordName) : null;
  let text;
  let body = null;
  const links = [];
  switch (entry.type) {
    case "joined":
      text = data.inviter ? `${who} joined (invited by ${displayName(data.inviter)})` : `${who} joined`;
      break;
    case "profile": {
      text = `${who} updated their profile`;
      const fields = Object.entries(data.profile || {}).filter(([key, value]) => key in PROFILE_LABELS && value);
      if (fields.length) body = fields.map(([key, value]) => `${PROFILE_LABELS[key]}: ${value}`).join(" · ");
      break;
    }
    case "post": {
      const post = data.post || {};
      text = `${who} wrote “${post.title || "a post"}”`;
      body = post.excerpt || null;
      const href = postHref(post, entry.actor);
      if (href) links.push(h("a", { href }, "Read the post"));
      break;
    }
    case "bound":
      text = `${who} linked the record to a group`;
      if (data.room) links.push(h("a", { href: `#/room/${enc(data.room)}` }, "Open the group"));
      break;
    default:
      text = `${who}: ${entry.type}`;
  }
  return h("li", { class: `feed-entry feed-${entry.type}`, dataset: { entry: entry.id } },
    h("div", { class: "feed-head" },
      h("span", { class: "feed-text" }, text),
      where ? [" in ", where] : null,
      h("time", { datetime: new Date(entry.ts).toISOString(), title: fullTime(entry.ts) }, shortTime(entry.ts))),
    body ? h("p", { class: "feed-body" }, body) : null,
    links.length ? h("div", { class: "feed-links" }, links) : null);
}

/** A paged list: `load(before)` returns {items, next}; renders with `render(item)`. */
export function pagedList(load, render, { empty = "Nothing here yet.", listClass = "feed" } = {}) {
  const list = h("ul", { class: listClass });
  const more = h("button", { type: "button", class: "small ghost", hidden: true }, "Older");
  const status = h("p", { class: "muted" }, "Loading…");
  let next = null;
  const page = async (before) => {
    more.disabled = true;
    try {
      const data = await load(before);
      if (!before) clear(list);
      for (const item of data.items) list.append(render(item));
      next = data.next || null;
      status.textContent = list.children.length ? "" : empty;
      status.hidden = list.children.length > 0;
    } catch (err) {
      status.textContent = errorWords(err);
      status.hidden = false;
    } finally {
      more.disabled = false;
      more.hidden = !next;
    }
  };
  more.addEventListener("click", () => next && page(next));
  page(null);
  return h("div", { class: "paged" }, status, list, more);
}

export function mountFeed(main, { api, chat }) {
  const section = h("section", { class: "page" }, h("h1", {}, "My feed"),
    h("p", { class: "muted" }, "News from your alumni records, and your own posts."));
  main.append(section);
  // Record names for the entries come from my space's record list.
  api.get(`/api/users/${enc(chat.me.id)}/space?limit=1`)
    .then((space) => new Map((space.alumni || []).map((r) => [r.id, r.name])), () => new Map())
    .then((records) => {
      section.append(pagedList(
        (before) => api.get(withQuery("/api/me/feed", { before, limit: 30 })),
        (entry) => feedEntry(entry, records),
        { empty: "Nothing yet. Join an alumni record or write a post." },
      ));
    });
}
