// The signed-in page: top bar, offline banner, the list of my groups, and the
// view of the current route (`#/room/<id>`, `#/alumni/<id>`, `#/space`, …).

import { clear, displayName, h } from "../dom.js";
import { toast } from "../toast.js";
import { mountAlumni, mountAlumniList } from "./alumni.js";
import { mountChat } from "./chat.js";
import { mountFeed } from "./feed.js";
import { mountCreateGroup, mountHome, mountJoinGroup } from "./groups.js";
import { mountInvitations } from "./invitations.js";
import { mountFindClass, mountProfile, mountSearch, mountSettings, searchBox } from "./search.js";
import { mountSpace } from "./space.js";
import { Sidebar } from "./sidebar.js";

const BANNER_DELAY = 600; // ms disconnected before the banner shows (no flash on a quick reconnect)

/** [view name, mount function, param names] for each route prefix. */
const ROUTES = [
  [/^#\/room\/([^/]+)(?:\/(\d+))?$/, "room", mountChat, ["id", "seq"]],
  [/^#\/search(?:\/(.*))?$/, "search", mountSearch, ["q"]],
  [/^#\/classmates$/, "classmates", mountFindClass, []],
  [/^#\/user\/([^/]+)$/, "user", mountProfile, ["id"]],
  [/^#\/settings$/, "settings", mountSettings, []],
  [/^#\/groups\/new$/, "groups-new", mountCreateGroup, []],
  [/^#\/groups\/join$/, "groups-join", mountJoinGroup, []],
  [/^#\/alumni$/, "alumni-list", mountAlumniList, []],
  [/^#\/alumni\/([^/]+)$/, "alumni", mountAlumni, ["id"]],
  [/^#\/invitations$/, "invitations", mountInvitations, []],
  [/^#\/space(?:\/([^/]+))?(?:\/([^/]+))?$/, "space", mountSpace, ["user", "post"]],
  [/^#\/feed$/, "feed", mountFeed, []],
];

export function parseRoute(hash) {
  for (const [pattern, name, mount, keys] of ROUTES) {
    const match = pattern.exec(hash);
    if (match) {
      const params = {};
      keys.forEach((key, i) => {
        if (match[i + 1] !== undefined) params[key] = decodeURIComponent(match[i + 1]);
      });
      return { name, mount, params };
    }
  }
  return { name: "home", mount: mountHome, params: {} };
}

export class Shell {
  constructor(root, { api, chat, signOut }) {
    this.root = root;
    this.ctx = { api, chat, toast, navigate: (hash) => { location.hash = hash; } };
    this.signOut = signOut;
    this.cleanup = null;
    this.listeners = [];
    this.onHash = () => this.route();
  }

  start() {
    const { chat } = this.ctx;
    this.main = h("main", { class: "main", id: "main", tabindex: "-1" });
    this.sidebar = new Sidebar(this.ctx);
    this.banner = h("div", { class: "banner", id: "offline-banner", role: "alert", hidden: true },
      h("span", { class: "banner-text" }),
      h("button", { type: "button", class: "small", onclick: () => chat.socket.reconnectNow() }, "Retry now"));
    this.inviteBadge = h("span", { class: "badge", hidden: true });
    this.nav = h("nav", { class: "nav", "aria-label": "Sections" },
      h("a", { href: "#/", dataset: { view: "home" } }, "Groups"),
      h("a", { href: "#/alumni", dataset: { view: "alumni" } }, "Alumni"),
      h("a", { href: "#/classmates", dataset: { view: "classmates" } }, "Find your class"),
      h("a", { href: "#/invitations", dataset: { view: "invitations" } }, "Invitations", this.inviteBadge),
      h("a", { href: "#/space", dataset: { view: "space" } }, "My space"),
      h("a", { href: "#/feed", dataset: { view: "feed" } }, "Feed"));
    this.meName = h("span", { class: "me-name", title: chat.me.id }, displayName(chat.me));
    clear(this.root).append(h("div", { class: "shell" },
      h("header", { class: "topbar" },
        h("a", { class: "brand", href: "#/" }, "Chat"),
        this.nav,
        searchBox(this.ctx.navigate),
        h("div", { class: "me" }, h("a", { href: "#/settings", class: "settings-link", title: "Account settings" }, this.meName),
          h("button", { type: "button", class: "small ghost", onclick: () => this.signOut() }, "Sign out"))),
      this.banner,
      h("div", { class: "layout" }, this.sidebar.el, this.main)));
    this.listen(chat, "status", (e) => this.onStatus(e.detail));
    this.listen(chat, "invitations", () => this.updateInvitations());
    this.listen(chat, "notice", (e) => toast(e.detail.text, e.detail));
    this.listen(chat, "removed", (e) => this.onRemoved(e.detail));
    this.listen(window, "hashchange", this.onHash);
    this.bannerTick = setInterval(() => this.renderBanner(), 1000);
    this.sidebar.start();
    this.route();
  }

  stop() {
    for (const [target, type, fn] of this.listeners) target.removeEventListener(type, fn);
    this.listeners = [];
    clearInterval(this.bannerTick);
    clearTimeout(this.bannerTimer);
    if (this.cleanup) this.cleanup();
    this.cleanup = null;
    this.sidebar.stop();
    clear(this.root);
    document.body.removeAttribute("data-view");
    document.body.removeAttribute("data-socket");
  }

  listen(target, type, fn) {
    target.addEventListener(type, fn);
    this.listeners.push([target, type, fn]);
  }

  route() {
    const { name, mount, params } = parseRoute(location.hash);
    if (this.cleanup) this.cleanup();
    this.cleanup = null;
    document.body.dataset.view = name;
    for (const a of this.nav.querySelectorAll("a")) {
      const active = name === a.dataset.view || name.startsWith(`${a.dataset.view}-`)
        || (a.dataset.view === "home" && (name === "room" || name.startsWith("groups")));
      if (active) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    this.sidebar.setActive(name === "room" ? params.id : null);
    clear(this.main);
    document.title = "Chat";
    this.cleanup = mount(this.main, this.ctx, params) || null;
  }

  onStatus({ state }) {
    clearTimeout(this.bannerTimer);
    document.body.dataset.socket = state; // for styling and for the browser tests
    if (state === "open") {
      this.everOpen = true;
      this.banner.hidden = true;
      document.body.classList.remove("offline");
      if (this.wasOffline) toast("Back online.", { kind: "info" });
      this.wasOffline = false;
      return;
    }
    if (state === "closed") return;
    this.bannerTimer = setTimeout(() => {
      const socket = this.ctx.chat.socket;
      if (socket.state === "open" || socket.state === "closed") return;
      this.wasOffline = true;
      this.banner.hidden = false;
      document.body.classList.add("offline");
      this.renderBanner();
    }, BANNER_DELAY);
  }

  renderBanner() {
    if (this.banner.hidden) return;
    const socket = this.ctx.chat.socket;
    let text;
    if (navigator.onLine === false) text = "You are offline. Waiting for the network…";
    else if (!this.everOpen) text = "Connecting to the server…";
    else if (socket.state === "connecting") text = "Connection lost. Reconnecting…";
    else if (socket.retryAt) {
      const s = Math.max(1, Math.ceil((socket.retryAt - Date.now()) / 1000));
      text = `Connection lost. Reconnecting in ${s} s…`;
    } else text = "Connection lost. Reconnecting…";
    this.banner.querySelector(".banner-text").textContent = `${text} Messages you write are sent when it is back.`;
  }

  updateInvitations() {
    const n = this.ctx.chat.invitations.size;
    this.inviteBadge.hidden = n === 0;
    this.inviteBadge.textContent = String(n);
  }

  onRemoved({ room, kicked }) {
    if (kicked) toast("You were removed from a group.", { kind: "info" });
    if (location.hash === `#/room/${encodeURIComponent(room)}`) location.hash = "#/";
  }
}
