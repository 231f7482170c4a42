// The home view, and the forms to create a group and to join an open one.

import { attempt, displayName, field, h, idBadge, showError } from "../dom.js";
import { errorWords } from "../words.js";
import { avatar, pictureChooser } from "../files.js";
import { initials } from "./sidebar.js";

export function mountHome(main, { chat, api, toast }) {
  const face = h("span", { class: "my-avatar" }, avatar(api, chat.me.avatar, initials(displayName(chat.me))));
  main.append(h("section", { class: "page home" },
    h("h1", {}, face, ` Hello, ${displayName(chat.me)}`),
    h("p", {}, "Pick one of your groups, or start a new one."),
    pictureChooser(api, "Change your picture", async (file) => {
      const me = await api.patch("/api/me", { avatar: file.id });
      chat.me.avatar = me.avatar;
      face.replaceChildren(avatar(api, me.avatar, initials(displayName(me))));
    }, (err) => toast(errorWords(err), { kind: "error" })),
    h("div", { class: "card" },
      h("h2", {}, "Your user id"),
      h("p", { class: "muted" }, "Give it to a group's owner or admin so they can add you."),
      idBadge(chat.me.id, { id: "my-user-id" })),
    h("div", { class: "actions" },
      h("a", { class: "button primary", href: "#/groups/new" }, "Create a group"),
      h("a", { class: "button", href: "#/groups/join" }, "Join an open group"))));
}

export function mountCreateGroup(main, { chat, navigate }) {
  const name = h("input", { name: "name", required: true, maxlength: 100, placeholder: "Class of 2010" });
  const topic = h("input", { name: "topic", maxlength: 1000 });
  const policy = h("select", { name: "join_policy" },
    h("option", { value: "invite" }, "Invite only: owner and admins add members"),
    h("option", { value: "open" }, "Open: anyone with its id can join"));
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "page-form", onsubmit: onSubmit },
    h("h1", {}, "Create a group"),
    field("Name", name), field("Topic (optional)", topic), field("Who can join", policy),
    error, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create")));

  async function onSubmit(event) {
    event.preventDefault();
    if (!name.value.trim()) {
      showError(error, "Give the group a name.");
      return;
    }
    const body = { name: name.value.trim(), join_policy: policy.value };
    if (topic.value.trim()) body.topic = topic.value.trim();
    const room = await attempt(form, error, () => chat.createRoom(body));
    if (room) navigate(`#/room/${encodeURIComponent(room.id)}`);
  }

  main.append(h("section", { class: "page" }, form));
  name.focus();
}

const JOIN_ERRORS = {
  not_found: "There is no group with that id.",
  forbidden: "That group is invite-only: ask its owner or an admin to add you.",
  conflict: "You are already in that group.",
};

export function mountJoinGroup(main, { chat, navigate }) {
  const id = h("input", { name: "room", required: true, maxlength: 64, placeholder: "group id", autocapitalize: "none" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "page-form", onsubmit: onSubmit },
    h("h1", {}, "Join an open group"),
    h("p", { class: "muted" }, "Ask someone in the group for its id (shown in the group's member list)."),
    field("Group id", id), error,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Join")));

  async function onSubmit(event) {
    event.preventDefault();
    const roomId = id.value.trim();
    if (!roomId) return;
    const joined = chat.rooms.has(roomId) || await attempt(form, error, () => chat.join(roomId).then(() => true),
      (err) => JOIN_ERRORS[err.code] || errorWords(err));
    if (joined) navigate(`#/room/${encodeURIComponent(roomId)}`);
  }

  main.append(h("section", { class: "page" }, form));
  id.focus();
}
