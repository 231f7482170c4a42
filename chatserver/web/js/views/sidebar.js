// My groups, most recently active first, with unread badges; live.

import { clear, h } from "../dom.js";
import { avatar } from "../files.js";

export class Sidebar {
  constructor({ chat }) {
    this.chat = chat;
    this.active = null;
    this.list = h("ul", { class: "room-list", id: "room-list" });
    this.empty = h("p", { class: "empty" }, "No groups yet. Create one, or join an open group by its id.");
    this.el = h("aside", { class: "sidebar", id: "sidebar", "aria-label": "My groups" },
      h("div", { class: "sidebar-head" },
        h("h2", {}, "Groups"),
        h("div", { class: "sidebar-actions" },
          h("a", { class: "button small", href: "#/groups/new" }, "New group"),
          h("a", { class: "button small ghost", href: "#/groups/join" }, "Join"))),
      this.list, this.empty);
    this.onRooms = () => this.render();
  }

  start() {
    this.chat.addEventListener("rooms", this.onRooms);
    this.render();
  }

  stop() {
    this.chat.removeEventListener("rooms", this.onRooms);
  }

  setActive(id) {
    this.active = id;
    this.render();
  }

  render() {
    const rooms = this.chat.roomList();
    this.empty.hidden = rooms.length > 0 || !this.chat.socket.welcome;
    clear(this.list);
    for (const room of rooms) {
      const unread = room.id === this.active ? 0 : room.unread;
      const mentions = room.id === this.active ? 0 : room.mentions || 0;
      this.list.append(h("li", {},
        h("a", {
          class: `room-item${room.id === this.active ? " active" : ""}${unread ? " has-unread" : ""}`,
          href: `#/room/${encodeURIComponent(room.id)}`,
          dataset: { room: room.id },
          "aria-current": room.id === this.active ? "page" : null,
        },
        avatar(this.chat.api, room.avatar, initials(room.name)),
        h("span", { class: "room-name" }, room.name),
        room.kind === "direct" ? h("span", { class: "tag direct-tag" }, "direct") : null,
        mentions ? h("span", { class: "badge mention-count", "aria-label": `${mentions} mentions` }, `@${mentions}`) : null,
        unread ? h("span", { class: "badge", "aria-label": `${unread} unread` }, unread > 99 ? "99+" : String(unread)) : null)));
    }
  }
}

export function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [...words[0]][0] + [...words[1]][0] : [...(words[0] || "?")].slice(0, 2).join("");
  return letters.toUpperCase();
}
