// A group's side panel: its id (to share), members with roles, group cards and
// mutes, each member's actions as the viewer's role allows (promote/demote,
// mute for a while, remove, ban, set the group card), adding a member by user
// id, and for owners and admins the group's settings: who can join (with the
// pending requests to approve or decline), mute-all, announcements, and for
// the owner dissolving the group. Leaving, for everyone but the owner.

import { append, attempt, clear, displayName, field, fullTime, h, idBadge } from "../dom.js";
import { enc } from "../api.js";
import { errorWords } from "../words.js";
import { avatar, pictureChooser } from "../files.js";
import { initials } from "./sidebar.js";

const ADMIN_ROLES = new Set(["owner", "admin"]);
const POLICIES = { invite: "Invite only", open: "Open", approval: "By request (owner or admin approves)" };
const MUTE_FOR = [["600", "10 minutes"], ["3600", "1 hour"], ["86400", "1 day"], ["604800", "7 days"], ["2592000", "30 days"]];

/** May someone of role `actor` mute, remove or ban someone of role `subject` (docs/protocol.md §12.14)? */
function outranks(actor, subject) {
  if (actor === "owner") return subject !== "owner";
  return actor === "admin" && subject === "member";
}

export class MembersPanel {
  constructor({ chat, api, toast }, room, onRole) {
    this.chat = chat;
    this.api = api;
    this.toast = toast;
    this.room = room;
    this.onRole = onRole;
    this.open = false;
    this.el = h("aside", { class: "members-panel", id: "members-panel", hidden: true, "aria-label": "Group members" });
    this.onRequests = (e) => this.open && e.detail.room === room.id && this.load();
    chat.addEventListener("requests", this.onRequests);
  }

  toggle() {
    this.open = !this.open;
    this.el.hidden = !this.open;
    if (this.open) this.load();
    return this.open;
  }

  stop() {
    this.chat.removeEventListener("requests", this.onRequests);
  }

  path(suffix = "") {
    return `/api/rooms/${enc(this.room.id)}${suffix}`;
  }

  async load() {
    if (!this.el.children.length) this.el.append(h("p", { class: "muted" }, "Loading members…"));
    let members;
    let requests = [];
    let announcements = [];
    try {
      members = await this.chat.members(this.room.id);
      announcements = (await this.api.get(this.path("/announcements"))).items;
      if (ADMIN_ROLES.has(this.room.role) && this.room.join_policy === "approval") {
        requests = (await this.api.get(this.path("/requests?status=pending"))).items;
      }
    } catch (err) {
      clear(this.el).append(h("p", { class: "form-error" }, errorWords(err)));
      return;
    }
    this.onRole();
    this.render(members, requests, announcements);
  }

  render(members, requests, announcements) {
    const { room } = this;
    const admin = ADMIN_ROLES.has(room.role);
    const order = { owner: 0, admin: 1, member: 2 };
    members.sort((a, b) => order[a.role] - order[b.role] || displayName(a.user).localeCompare(displayName(b.user)));
    // dom.js `append`, not Element.append: the null of a section a member does not get is skipped, not shown.
    const policyWords = { open: "Anyone with this id can join.", approval: "Anyone with this id can ask to join." };
    append(clear(this.el), [
      h("section", {},
        h("h3", {}, "Group id"),
        h("p", { class: "muted" }, policyWords[room.join_policy] || "Invite only: owners and admins add members."),
        idBadge(room.id, { id: "group-id" })),
      h("section", {},
        h("h3", {}, `Members (${members.length})`),
        h("ul", { class: "member-list" }, members.map((m) => this.memberItem(m)))),
      admin && requests.length ? this.requestList(requests) : null,
      this.announcementList(announcements, admin),
      admin ? this.addForm() : null,
      admin ? this.settingsForm() : null,
      room.role === "owner" ? this.dissolveSection() : null,
      room.role !== "owner" && room.kind !== "direct" ? h("section", {},
        h("button", { type: "button", class: "danger small", onclick: () => this.leave() }, "Leave this group")) : null]);
  }

  memberItem(m) {
    const me = this.chat.me.id;
    const role = this.room.role;
    const self = m.user.id === me;
    const muted = m.muted_until && m.muted_until > Date.now();
    const actions = h("div", { class: "member-actions" });
    const act = (label, work, cls = "small ghost") => h("button", { type: "button", class: cls, onclick: work }, label);
    if (role === "owner" && !self) {
      if (m.role === "member") actions.append(act("Make admin", () => this.setRole(m.user, "admin")));
      if (m.role === "admin") actions.append(act("Make member", () => this.setRole(m.user, "member")));
    }
    if (outranks(role, m.role) && !self) {
      if (muted) {
        actions.append(act("Unmute", () => this.run(() => this.api.del(this.path(`/members/${enc(m.user.id)}/mute`)))));
      } else {
        const duration = h("select", { name: "mute_for", "aria-label": `Mute ${displayName(m.user)} for` },
          MUTE_FOR.map(([value, label]) => h("option", { value }, label)));
        actions.append(duration, act("Mute", () => this.run(() => this.api.put(
          this.path(`/members/${enc(m.user.id)}/mute`), { seconds: Number(duration.value) }))));
      }
      actions.append(act("Remove", () => this.run(() => this.api.del(this.path(`/members/${enc(m.user.id)}`)))),
        act("Ban", () => this.run(() => this.api.put(this.path(`/bans/${enc(m.user.id)}`), {})), "small danger"));
    }
    if (!self && this.room.kind !== "direct") {
      actions.prepend(h("button", { type: "button", class: "small ghost message-user", onclick: () => this.message(m.user) },
        "Message"));
    }
    if ((self || ADMIN_ROLES.has(role)) && this.room.kind !== "direct") {
      actions.append(act("Group card", () => this.editCard(item, m)));
    }
    const item = h("li", { dataset: { user: m.user.id } },
      avatar(this.api, m.user.avatar, initials(displayName(m.user)), { class: "avatar small" }),
      h("span", { class: "member-name" }, m.nickname || displayName(m.user)),
      m.nickname ? h("span", { class: "muted" }, ` (${displayName(m.user)})`) : null,
      h("span", { class: "muted" }, ` @${m.user.name}`),
      m.role !== "member" ? h("span", { class: `tag role-${m.role}` }, m.role) : null,
      m.user.bot ? h("span", { class: "tag" }, "bot") : null,
      muted ? h("span", { class: "tag muted-tag", title: `until ${fullTime(m.muted_until)}` }, "muted") : null,
      actions.children.length ? actions : null);
    return item;
  }

  editCard(item, m) {
    if (item.querySelector(".card-form")) return;
    const input = h("input", { name: "nickname", value: m.nickname || "", maxlength: 32, placeholder: "group card (empty clears)" });
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const form = h("form", { class: "card-form", onsubmit: async (event) => {
      event.preventDefault();
      const done = await attempt(form, error, () => this.api.put(
        this.path(`/members/${enc(m.user.id)}/nickname`), { nickname: input.value.trim() }));
      if (done) this.load();
    } }, input, h("button", { type: "submit", class: "small" }, "Save"), error);
    item.append(form);
    input.focus();
  }

  requestList(requests) {
    return h("section", { class: "join-requests" },
      h("h3", {}, `Requests to join (${requests.length})`),
      h("ul", { class: "member-list" }, requests.map((r) => h("li", { dataset: { request: r.id } },
        h("span", { class: "member-name" }, displayName(r.user)),
        h("span", { class: "muted" }, ` @${r.user.name}`),
        r.note ? h("span", { class: "request-note" }, ` “${r.note}”`) : null,
        h("div", { class: "member-actions" },
          h("button", { type: "button", class: "small primary", onclick: () => this.run(() => this.api.post(
            `/api/room-requests/${enc(r.id)}/approve`)) }, "Approve"),
          h("button", { type: "button", class: "small ghost", onclick: () => this.run(() => this.api.post(
            `/api/room-requests/${enc(r.id)}/decline`)) }, "Decline"))))));
  }

  announcementList(announcements, admin) {
    const list = h("ul", { class: "announcement-list" }, announcements.map((a) => h("li", { dataset: { announcement: a.id } },
      h("span", { class: "announcement-text" }, a.text),
      h("small", { class: "muted" }, ` — ${displayName(a.by)}, ${fullTime(a.ts)}`),
      admin ? h("button", { type: "button", class: "small ghost", onclick: () => this.run(
        () => this.api.del(this.path(`/announcements/${enc(a.id)}`))) }, "Delete") : null)));
    let form = null;
    if (admin) {
      const text = h("textarea", { name: "announcement", rows: 2, maxlength: 2000, required: true });
      const error = h("p", { class: "form-error", role: "alert", hidden: true });
      form = h("form", { class: "announce", onsubmit: async (event) => {
        event.preventDefault();
        if (!text.value.trim()) return;
        const posted = await attempt(form, error, () => this.api.post(this.path("/announcements"), { text: text.value.trim() }));
        if (posted) {
          text.value = "";
          this.load();
        }
      } }, field("New announcement", text), error, h("button", { type: "submit", class: "small primary" }, "Announce"));
    }
    return h("section", {}, h("h3", {}, "Announcements"),
      announcements.length ? list : h("p", { class: "muted" }, "No announcements."), form);
  }

  addForm() {
    const input = h("input", { name: "user_id", required: true, maxlength: 64, placeholder: "user id", autocapitalize: "none" });
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const form = h("form", { class: "add-member", onsubmit: async (event) => {
      event.preventDefault();
      const userId = input.value.trim();
      if (!userId) return;
      const member = await attempt(form, error, () => this.chat.addMember(this.room.id, userId),
        (err) => (err.code === "not_found" ? "There is no user with that id."
          : err.code === "conflict" ? `That user is already a member, or the group is full (${err.message}).`
            : err.code === "forbidden" ? "That user is banned from this group." : errorWords(err)));
      if (member) {
        this.toast(`${displayName(member.user)} was added.`, { kind: "info" });
        input.value = "";
        this.load();
      }
    } },
    field("Add a member by user id", input, "They find their id on their home page."), error,
    h("button", { type: "submit", class: "small primary" }, "Add"));
    return h("section", {}, form);
  }

  settingsForm() {
    const { room } = this;
    const name = h("input", { name: "name", value: room.name, maxlength: 100, required: true });
    const topic = h("input", { name: "topic", value: room.topic || "", maxlength: 1000 });
    const policy = h("select", { name: "join_policy" },
      Object.entries(POLICIES).map(([value, label]) => h("option", { value }, label)));
    policy.value = room.join_policy || "invite";
    const mutedAll = h("input", { type: "checkbox", name: "muted", checked: Boolean(room.muted) });
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const form = h("form", { class: "room-settings", onsubmit: async (event) => {
      event.preventDefault();
      const changes = {};
      if (name.value.trim() !== room.name) changes.name = name.value.trim();
      if (topic.value.trim() !== (room.topic || "")) changes.topic = topic.value.trim();
      if (policy.value !== room.join_policy) changes.join_policy = policy.value;
      if (mutedAll.checked !== Boolean(room.muted)) changes.muted = mutedAll.checked;
      if (!Object.keys(changes).length) return;
      const updated = await attempt(form, error, () => this.api.patch(this.path(), changes));
      if (updated) {
        Object.assign(room, { name: updated.name, topic: updated.topic, join_policy: updated.join_policy, muted: updated.muted });
        this.chat.emit("rooms");
        this.toast("Group updated.", { kind: "info" });
        this.load();
      }
    } },
    h("h3", {}, "Settings"), field("Name", name), field("Topic", topic), field("Who can join", policy),
    h("label", { class: "check" }, mutedAll, " Mute everyone (only the owner and admins may send)"), error,
    h("button", { type: "submit", class: "small" }, "Save"),
    pictureChooser(this.api, "Change the group's picture", async (file) => {
      const updated = await this.api.patch(this.path(), { avatar: file.id });
      room.avatar = updated.avatar;
      this.chat.emit("rooms");
      this.toast("Group picture changed.", { kind: "info" });
    }, (err) => this.toast(errorWords(err), { kind: "error" })));
    return h("section", {}, form);
  }

  /** Open (or find) the direct room with this member and go there. */
  async message(user) {
    try {
      const id = await this.chat.openDirect(user.id);
      location.hash = `#/room/${encodeURIComponent(id)}`;
    } catch (err) {
      this.toast(errorWords(err), { kind: "error" });
    }
  }

  dissolveSection() {
    // Two clicks: "Dissolve the group", then "Dissolve for everyone? History is deleted." within a few seconds.
    const button = h("button", { type: "button", class: "danger small dissolve", onclick: async () => {
      if (!button.dataset.armed) {
        button.dataset.armed = "1";
        button.textContent = "Dissolve for everyone? Its history is deleted.";
        setTimeout(() => { delete button.dataset.armed; button.textContent = "Dissolve the group"; }, 5000);
        return;
      }
      try {
        await this.api.del(this.path());
        this.chat.removeRoom(this.room.id, true);
        this.toast("The group was dissolved.", { kind: "info" });
        location.hash = "#/";
      } catch (err) {
        this.toast(errorWords(err), { kind: "error" });
      }
    } }, "Dissolve the group");
    return h("section", {}, button);
  }

  async setRole(user, role) {
    await this.run(() => this.api.put(this.path(`/members/${enc(user.id)}/role`), { role }));
  }

  /** Do `work` (an API call), then show the panel anew; a refusal is a toast. */
  async run(work) {
    try {
      await work();
      this.load();
    } catch (err) {
      this.toast(errorWords(err), { kind: "error" });
    }
  }

  async leave() {
    try {
      await this.chat.leave(this.room.id);
      this.toast("You left the group.", { kind: "info" });
    } catch (err) {
      this.toast(errorWords(err), { kind: "error" });
    }
  }
}
