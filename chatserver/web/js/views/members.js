// A group's side panel: its id (to share), members with roles, adding a
// member by user id (owner/admin), group settings (owner/admin), leaving.

import { append, attempt, clear, displayName, field, h, idBadge } from "../dom.js";
import { enc } from "../api.js";
import { errorWords } from "../words.js";
import { avatar, pictureChooser } from "../files.js";
import { initials } from "./sidebar.js";

const ADMIN_ROLES = new Set(["owner", "admin"]);

export class MembersPanel {
  constructor({ chat, api, toast }, room, onRole) {
    this.chat = chat;
    this.api = api;
    this.toast = toast;
    this.room = room;
    this.onRole = onRole;
    this.open = false;
    this.el = h("aside", { class: "members-panel", id: "members-panel", hidden: true, "aria-label": "Group members" });
  }

  toggle() {
    this.open = !this.open;
    this.el.hidden = !this.open;
    if (this.open) this.load();
    return this.open;
  }

  async load() {
    clear(this.el).append(h("p", { class: "muted" }, "Loading members…"));
    let members;
    try {
      members = await this.chat.members(this.room.id);
    } catch (err) {
      clear(this.el).append(h("p", { class: "form-error" }, errorWords(err)));
      return;
    }
    this.onRole();
    this.render(members);
  }

  render(members) {
    const { room } = this;
    const admin = ADMIN_ROLES.has(room.role);
    const order = { owner: 0, admin: 1, member: 2 };
    members.sort((a, b) => order[a.role] - order[b.role] || displayName(a.user).localeCompare(displayName(b.user)));
    // dom.js `append`, not Element.append: the null of a section a member does not get is skipped, not shown.
    append(clear(this.el), [
      h("section", {},
        h("h3", {}, "Group id"),
        h("p", { class: "muted" }, room.join_policy === "open"
          ? "Anyone with this id can join." : "Invite only: owners and admins add members."),
        idBadge(room.id, { id: "group-id" })),
      h("section", {},
        h("h3", {}, `Members (${members.length})`),
        h("ul", { class: "member-list" }, members.map((m) => h("li", { dataset: { user: m.user.id } },
          avatar(this.api, m.user.avatar, initials(displayName(m.user)), { class: "avatar small" }),
          h("span", { class: "member-name" }, displayName(m.user)),
          h("span", { class: "muted" }, ` @${m.user.name}`),
          m.role !== "member" ? h("span", { class: `tag role-${m.role}` }, m.role) : null,
          m.user.bot ? h("span", { class: "tag" }, "bot") : null,
          m.user.id !== this.chat.me.id && room.kind !== "direct"
            ? h("button", { type: "button", class: "small ghost message-user", onclick: () => this.message(m.user) },
              "Message") : null,
          admin && m.role === "member" && m.user.id !== this.chat.me.id
            ? h("button", { type: "button", class: "small ghost", onclick: () => this.remove(m.user) }, "Remove") : null)))),
      admin ? this.addForm() : null,
      admin ? this.settingsForm() : null,
      room.role !== "owner" && room.kind !== "direct" ? h("section", {},
        h("button", { type: "button", class: "danger small", onclick: () => this.leave() }, "Leave this group")) : null]);
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
          : err.code === "conflict" ? "That user is already a member." : errorWords(err)));
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
      h("option", { value: "invite" }, "Invite only"), h("option", { value: "open" }, "Open"));
    policy.value = room.join_policy || "invite";
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const form = h("form", { class: "room-settings", onsubmit: async (event) => {
      event.preventDefault();
      const changes = {};
      if (name.value.trim() !== room.name) changes.name = name.value.trim();
      if (topic.value.trim() !== (room.topic || "")) changes.topic = topic.value.trim();
      if (policy.value !== room.join_policy) changes.join_policy = policy.value;
      if (!Object.keys(changes).length) return;
      const updated = await attempt(form, error, () => this.api.patch(`/api/rooms/${enc(room.id)}`, changes));
      if (updated) {
        Object.assign(room, { name: updated.name, topic: updated.topic, join_policy: updated.join_policy });
        this.chat.emit("rooms");
        this.toast("Group updated.", { kind: "info" });
      }
    } },
    h("h3", {}, "Settings"), field("Name", name), field("Topic", topic), field("Who can join", policy), error,
    h("button", { type: "submit", class: "small" }, "Save"),
    pictureChooser(this.api, "Change the group's picture", async (file) => {
      const updated = await this.api.patch(`/api/rooms/${enc(room.id)}`, { avatar: file.id });
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

  async remove(user) {
    try {
      await this.api.del(`/api/rooms/${enc(this.room.id)}/members/${enc(user.id)}`);
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
