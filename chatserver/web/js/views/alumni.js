// Alumni records (docs/protocol.md §12.6): my records and a new one;
// one record with its members and profiles, my profile, invitations to the
// group, the group it is bound to, its feed and its posts.

import { enc, withQuery } from "../api.js";
import { attempt, clear, displayName, field, h, idBadge, showError } from "../dom.js";
import { errorWords } from "../words.js";
import { feedEntry, pagedList } from "./feed.js";
import { requestButton, requestsCard } from "./requests.js";
import { postEditor, postItem } from "./space.js";

const PROFILE_FIELDS = [
  ["real_name", "Real name", 100], ["class_name", "Class", 100], ["city", "City", 100],
  ["employer", "Employer", 200], ["contact", "Contact", 200], ["bio", "About me", 2000],
];

export function recordLine(record) {
  return [record.school, record.year, record.class_name].filter(Boolean).join(" · ");
}

export function mountAlumniList(main, { api, chat, navigate }) {
  const mine = h("ul", { class: "record-list", id: "my-records" }, h("li", { class: "muted" }, "Loading…"));
  api.get(`/api/users/${enc(chat.me.id)}/space?limit=1`).then((space) => {
    clear(mine);
    if (!space.alumni.length) mine.append(h("li", { class: "muted" }, "You are not in any alumni record yet."));
    for (const r of space.alumni) {
      mine.append(h("li", {}, h("a", { href: `#/alumni/${enc(r.id)}` }, r.name), h("span", { class: "muted" }, ` ${recordLine(r)}`)));
    }
  }, (err) => {
    clear(mine).append(h("li", { class: "form-error" }, errorWords(err)));
  });

  const inputs = {
    name: h("input", { name: "name", required: true, maxlength: 100, placeholder: "Class of 2010" }),
    school: h("input", { name: "school", required: true, maxlength: 200 }),
    year: h("input", { name: "year", type: "number", min: 1900, max: 2100 }),
    class_name: h("input", { name: "class_name", maxlength: 100 }),
    description: h("textarea", { name: "description", maxlength: 2000, rows: 3 }),
  };
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "page-form", onsubmit: async (event) => {
    event.preventDefault();
    const body = { name: inputs.name.value.trim(), school: inputs.school.value.trim() };
    if (!body.name || !body.school) {
      showError(error, "A record needs a name and a school.");
      return;
    }
    if (inputs.year.value) body.year = Number(inputs.year.value);
    for (const key of ["class_name", "description"]) if (inputs[key].value.trim()) body[key] = inputs[key].value.trim();
    const record = await attempt(form, error, () => api.post("/api/alumni", body));
    if (record) navigate(`#/alumni/${enc(record.id)}`);
  } },
  h("h2", {}, "Start an alumni record"),
  field("Name", inputs.name), field("School", inputs.school), field("Year (optional)", inputs.year),
  field("Class (optional)", inputs.class_name), field("Description (optional)", inputs.description), error,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create record")));

  const openId = h("input", { name: "record", placeholder: "record id", autocapitalize: "none" });
  const open = h("form", { class: "inline-form", onsubmit: (event) => {
    event.preventDefault();
    if (openId.value.trim()) navigate(`#/alumni/${enc(openId.value.trim())}`);
  } }, field("Open a record by id", openId), h("button", { type: "submit", class: "small" }, "Open"));

  main.append(h("section", { class: "page" }, h("h1", {}, "Alumni"),
    h("div", { class: "card" }, h("h2", {}, "My records"), mine, open), h("div", { class: "card" }, form)));
}

export function mountAlumni(main, ctx, { id }) {
  const { api, chat } = ctx;
  const page = h("section", { class: "page alumni", dataset: { record: id } }, h("p", { class: "muted" }, "Loading…"));
  main.append(page);
  let alive = true;
  const load = async () => {
    let record;
    let members;
    try {
      [record, members] = await Promise.all([
        api.get(`/api/alumni/${enc(id)}`),
        api.get(`/api/alumni/${enc(id)}/members`).then((d) => d.items),
      ]);
    } catch (err) {
      if (alive) clear(page).append(h("h1", {}, "Alumni record"),
        h("p", { class: "form-error" }, err.code === "not_found" ? "There is no alumni record with that id." : errorWords(err)));
      return;
    }
    if (!alive) return;
    const me = members.find((m) => m.user.id === chat.me.id);
    clear(page).append(
      header(record, ctx, load),
      me ? inviteCard(record, ctx) : requestButton(record, ctx),
      record.owner && record.owner.id === chat.me.id ? requestsCard(record, ctx, load) : null,
      membersCard(members, Boolean(me)),
      me ? profileCard(record, me, ctx, load) : null,
      me ? postsCard(record, ctx) : null,
      me ? h("div", { class: "card" }, h("h2", {}, "Feed"),
        pagedList((before) => api.get(withQuery(`/api/alumni/${enc(id)}/feed`, { before, limit: 30 })),
          (entry) => feedEntry(entry), { empty: "No activity yet." })) : null);
  };
  load();
  return () => { alive = false; };
}

function header(record, { api, chat, toast }, reload) {
  const isOwner = record.owner && record.owner.id === chat.me.id;
  const group = record.room
    ? (chat.rooms.has(record.room)
      ? h("a", { class: "button small", href: `#/room/${enc(record.room)}` }, `Open the group “${chat.rooms.get(record.room).name}”`)
      : h("a", { class: "button small ghost", href: `#/room/${enc(record.room)}`, id: "record-group" }, "See the group"))
    : h("span", { class: "muted" }, "Not bound to a group.");
  let binding = null;
  if (isOwner && !record.room) {
    const select = h("select", { name: "room_id" }, chat.roomList().map((r) => h("option", { value: r.id }, r.name)));
    binding = h("form", { class: "inline-form", onsubmit: async (event) => {
      event.preventDefault();
      if (!select.value) return;
      try {
        await api.put(`/api/alumni/${enc(record.id)}/room`, { room_id: select.value });
        toast("The record is now bound to the group.", { kind: "info" });
        reload();
      } catch (err) {
        toast(err.status === 409 ? "That group or this record is already bound." : errorWords(err), { kind: "error" });
      }
    } }, field("Bind to one of my groups", select), h("button", { type: "submit", class: "small", disabled: !select.options.length }, "Bind"));
  } else if (isOwner && record.room) {
    binding = h("button", { type: "button", class: "small ghost", async onclick() {
      try {
        await api.del(`/api/alumni/${enc(record.id)}/room`);
        reload();
      } catch (err) {
        toast(errorWords(err), { kind: "error" });
      }
    } }, "Unbind the group");
  }
  return h("header", { class: "card record-head" },
    h("h1", {}, record.name),
    h("p", { class: "muted" }, recordLine(record)),
    record.description ? h("p", { class: "prewrap" }, record.description) : null,
    h("p", {}, `${record.member_count} member${record.member_count === 1 ? "" : "s"} · owner ${displayName(record.owner)}`),
    h("div", { class: "actions" }, group, binding),
    h("p", { class: "muted small" }, "Record id: ", idBadge(record.id)));
}

function membersCard(members, asMember) {
  return h("div", { class: "card" },
    h("h2", {}, `Members (${members.length})`),
    asMember ? null : h("p", { class: "muted" }, "Only what members made public is shown."),
    h("ul", { class: "profile-list", id: "record-members" }, members.map((m) => {
      const profile = m.profile || {};
      const rows = PROFILE_FIELDS.filter(([key]) => profile[key]).map(([key, label]) =>
        h("div", { class: "profile-row" }, h("dt", {}, label), h("dd", { class: key === "bio" ? "prewrap" : null }, profile[key])));
      return h("li", { class: "profile", dataset: { user: m.user.id } },
        h("div", { class: "profile-name" }, displayName(m.user), h("span", { class: "muted" }, ` @${m.user.name}`),
          " ", h("a", { href: `#/space/${enc(m.user.id)}`, class: "small" }, "space")),
        rows.length ? h("dl", {}, rows) : null);
    })));
}

function profileCard(record, me, { api, toast }, reload) {
  const profile = me.profile || {};
  const visibility = profile.visibility || {};
  const controls = {};
  const rows = PROFILE_FIELDS.map(([key, label, max]) => {
    const input = key === "bio"
      ? h("textarea", { name: key, maxlength: max, rows: 3, value: profile[key] || "" })
      : h("input", { name: key, maxlength: max, value: profile[key] || "" });
    const seen = h("select", { name: `${key}_visibility`, "aria-label": `${label}: who sees it` },
      h("option", { value: "members" }, "Members"), h("option", { value: "public" }, "Everyone"));
    seen.value = visibility[key] || "members";
    controls[key] = { input, seen };
    return h("div", { class: "profile-field" }, field(label, input), seen);
  });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "profile-form", onsubmit: async (event) => {
    event.preventDefault();
    const body = { visibility: {} };
    for (const [key, { input, seen }] of Object.entries(controls)) {
      const value = input.value.trim();
      if (value !== (profile[key] || "")) body[key] = value || null;
      body.visibility[key] = seen.value;
    }
    if (await attempt(form, error, () => api.put(`/api/alumni/${enc(record.id)}/profile`, body))) {
      toast("Profile saved.", { kind: "info" });
      reload();
    }
  } },
  h("h2", {}, "My profile in this record"),
  h("p", { class: "muted" }, "Choose for each field who sees it: the record's members, or everyone."),
  rows, error, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save profile")));
  return h("div", { class: "card" }, form);
}

function inviteCard(record, { api }) {
  const note = h("input", { name: "note", maxlength: 1000, placeholder: "A note (optional)" });
  const ids = h("input", { name: "user_ids", placeholder: "user ids, separated by spaces or commas", autocapitalize: "none" });
  const result = h("p", { class: "muted", role: "status" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const send = async (form, userIds) => {
    const body = {};
    if (userIds) body.user_ids = userIds;
    if (note.value.trim()) body.note = note.value.trim();
    result.textContent = "";
    const answer = await attempt(form, error, () => api.post(`/api/alumni/${enc(record.id)}/invitations`, body),
      (err) => (err.code === "not_found" ? `Not found: ${err.message}.` : errorWords(err)));
    if (answer) {
      result.textContent = inviteSummary(answer);
      ids.value = "";
    }
  };
  const groupForm = h("form", { class: "inline-form", onsubmit: (event) => { event.preventDefault(); send(groupForm, null); } },
    h("button", { type: "submit", class: "primary", disabled: !record.room, id: "invite-group" }, "Invite everyone in the group"));
  const idsForm = h("form", { class: "inline-form", onsubmit: (event) => {
    event.preventDefault();
    const list = ids.value.split(/[\s,]+/).filter(Boolean);
    if (list.length) send(idsForm, list);
  } }, field("Or invite people by user id", ids), h("button", { type: "submit", class: "small" }, "Invite"));
  return h("div", { class: "card" },
    h("h2", {}, "Invite"),
    record.room ? h("p", { class: "muted" }, "Invites every member of the bound group who is not in the record yet.")
      : h("p", { class: "muted" }, "Bind the record to a group to invite the whole group at once."),
    field("Note", note), groupForm, idsForm, result, error);
}

function inviteSummary({ invitations = [], skipped = [] }) {
  const n = invitations.length;
  const parts = [n ? `Invited ${n} ${n === 1 ? "person" : "people"}.` : "Nobody new to invite."];
  const reasons = { member: "already members", pending: "already invited", blocked: "not accepting invitations from you" };
  const counts = {};
  for (const s of skipped) counts[s.reason] = (counts[s.reason] || 0) + 1;
  const skippedText = Object.entries(counts).map(([reason, count]) => `${count} ${reasons[reason] || reason}`);
  if (skippedText.length) parts.push(`Skipped: ${skippedText.join(", ")}.`);
  return parts.join(" ");
}

function postsCard(record, base) {
  const ctx = { ...base, records: new Map([[record.id, record]]) };
  const { api } = ctx;
  const holder = h("div", {});
  const renderList = () => clear(holder).append(pagedList(
    (before) => api.get(withQuery(`/api/alumni/${enc(record.id)}/posts`, { before, limit: 20 })),
    (post) => postItem(post, ctx, { onChange: renderList }),
    { empty: "No posts yet.", listClass: "post-list" }));
  renderList();
  const editor = postEditor(ctx, {
    title: "Write a post here",
    submitLabel: "Publish to this record",
    save: (body) => api.post(`/api/alumni/${enc(record.id)}/posts`, { title: body.title, body: body.body }),
    onSaved: renderList,
  });
  return h("div", { class: "card" }, h("h2", {}, "Posts"), editor, holder);
}
