// One group's conversation: messages by seq (each shown once), older history
// loaded on scroll-back without moving what the reader looks at, own messages
// marked, system messages set apart, typing, recall, edits (with their
// history), reactions, replies that quote, @-mentions, and a composer whose
// messages survive a lost connection (sent again with the same cid).

import { enc } from "../api.js";
import { clear, displayName, fullTime, h, shortTime } from "../dom.js";
import { describeSystem } from "../system.js";
import { errorWords } from "../words.js";
import { fileSize, filesView } from "../files.js";
import { MembersPanel } from "./members.js";

const RECALL_WINDOW = 120000; // ms an author may recall (CHAT_RECALL_WINDOW default; the server decides)
const NEAR_TOP = 150; // px from the top that loads older history
const REVEAL_TRIES = 60; // pages (or waits of 200 ms) to find a linked message
const NEAR_BOTTOM = 60; // px from the bottom that counts as "reading the newest"
const FILL_PAGES = 4; // at most this many pages loaded to fill a tall screen
const ADMIN_ROLES = new Set(["owner", "admin"]);
const EDIT_WINDOW = 172800000; // ms an author may edit (CHAT_EDIT_WINDOW default; the server decides)
const QUICK_EMOJI = ["👍", "❤️", "😂", "🎉"]; // offered on every message; any emoji already there toggles too
const MENTION_AT = /(^|\s)@([a-z0-9_.-]*)$/; // an @name being typed right before the caret

export function mountChat(main, ctx, { id, seq }) {
  const { chat } = ctx;
  const section = h("section", { class: "chat", dataset: { room: id } });
  main.append(section);
  let view = null;
  let outsider = false;
  const open = () => {
    const room = chat.rooms.get(id);
    if (room) {
      chat.removeEventListener("rooms", open);
      clear(section);
      view = new ChatView(section, ctx, room);
      view.start();
      if (seq) view.reveal(Number(seq));
    } else if (chat.socket.welcome && !outsider) {
      outsider = true;
      showOutsider(section, ctx, id);
    } else if (!chat.socket.welcome) {
      clear(section).append(h("p", { class: "placeholder" }, "Connecting…"));
    }
  };
  chat.addEventListener("rooms", open);
  open();
  return () => {
    chat.removeEventListener("rooms", open);
    if (view) view.stop();
  };
}

/** The page for a group the user is not in: join it if it is open. */
async function showOutsider(section, { api, chat }, id) {
  clear(section).append(h("p", { class: "placeholder" }, "Looking for the group…"));
  let text = "You are not a member of this group.";
  let room = null;
  try {
    room = await api.get(`/api/rooms/${enc(id)}`);
  } catch (err) {
    if (err.code === "not_found") text = "There is no group with that id.";
    else if (err.code === "forbidden") text = "This group is invite-only: ask its owner or an admin to add you.";
    else text = errorWords(err);
  }
  if (chat.rooms.has(id)) return;
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const join = room && room.join_policy === "open"
    ? h("button", {
      type: "button", class: "primary", async onclick() {
        try {
          await chat.join(id);
        } catch (err) {
          error.textContent = errorWords(err);
          error.hidden = false;
        }
      },
    }, "Join this group")
    : null;
  clear(section).append(h("div", { class: "page" },
    h("h1", {}, room ? room.name : "Group"),
    room && room.topic ? h("p", { class: "muted" }, room.topic) : null,
    h("p", {}, room && room.join_policy === "open" ? "This group is open: anyone can join." : text),
    error, join, h("p", {}, h("a", { href: "#/" }, "Back to my groups"))));
}

class ChatView {
  constructor(section, ctx, room) {
    this.section = section;
    this.ctx = ctx;
    this.chat = ctx.chat;
    this.room = room;
    this.rendered = new Map(); // seq → <li>
    this.listeners = [];
    this.unseen = 0;
    this.loadError = null;
    this.replyTo = null; // the message the composer replies to
    this.people = []; // members, for @-mentions
  }

  start() {
    const { chat, room } = this;
    this.nameEl = h("h2", { class: "room-name" });
    this.topicEl = h("p", { class: "room-topic" });
    this.onlineEl = h("span", { class: "online", hidden: true });
    this.members = new MembersPanel(this.ctx, room, () => this.updateActions());
    this.list = h("ol", { class: "message-list", id: "messages" });
    this.pendingList = h("ol", { class: "pending-list", id: "pending" });
    this.top = h("div", { class: "history-top" });
    this.scroller = h("div", { class: "messages", role: "log", "aria-label": "Messages", tabindex: "0" },
      this.top, this.list, this.pendingList);
    this.jump = h("button", { type: "button", class: "jump", hidden: true, onclick: () => this.toBottom() });
    this.typingEl = h("p", { class: "typing", "aria-live": "polite" });
    this.input = h("textarea", {
      name: "text", rows: 1, placeholder: "Write a message…", "aria-label": "Message", maxlength: 100000,
      oninput: () => this.onInput(), onkeydown: (e) => this.onKey(e),
    });
    this.input.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData ? e.clipboardData.files : [])];
      if (files.length) {
        e.preventDefault();
        this.attach(files);
      }
    });
    this.counter = h("span", { class: "counter", hidden: true });
    this.replyBar = h("div", { class: "reply-bar", id: "reply-bar", hidden: true });
    this.mentionList = h("ul", { class: "mention-list", id: "mention-list", role: "listbox", hidden: true });
    // Files: chosen with the button, dropped on the conversation, or pasted (docs/protocol.md §12.10).
    this.attached = []; // {name, size, state: "uploading"|"ready", info}
    this.attachedEl = h("ul", { class: "attachments", id: "attachments", hidden: true });
    this.fileInput = h("input", { type: "file", multiple: true, hidden: true, name: "files",
      onchange: () => { this.attach([...this.fileInput.files]); this.fileInput.value = ""; } });
    this.composer = h("form", { class: "composer", onsubmit: (e) => this.onSubmit(e) },
      this.fileInput,
      h("button", { type: "button", class: "attach ghost", title: "Attach files", "aria-label": "Attach files",
        onclick: () => this.fileInput.click() }, "+"),
      this.input, this.counter, h("button", { type: "submit", class: "primary send" }, "Send"));
    this.section.append(
      h("header", { class: "chat-head" },
        h("a", { class: "back", href: "#/", "aria-label": "Back to groups" }, "‹"),
        h("div", { class: "chat-title" }, this.nameEl, this.topicEl),
        this.onlineEl,
        h("button", { type: "button", class: "small ghost", "aria-expanded": "false", onclick: (e) => this.toggleMembers(e.currentTarget) }, "Members")),
      h("div", { class: "chat-body" },
        h("div", { class: "chat-main" }, this.scroller, this.jump, this.typingEl, this.attachedEl, this.replyBar,
          this.mentionList, this.composer),
        this.members.el));
    this.renderHead();
    this.renderAll();
    this.renderPending();
    this.renderTyping();
    this.toBottom();

    this.listen(chat, "room", (e) => e.detail.room === room.id && this.sync(e.detail));
    this.listen(chat, "pending", (e) => e.detail.room === room.id && this.renderPending());
    this.listen(chat, "typing", (e) => e.detail.room === room.id && this.renderTyping());
    this.listen(chat, "rooms", () => this.renderHead());
    this.listen(chat, "status", (e) => {
      if (e.detail.state === "open") this.onConnected();
      else this.onlineEl.hidden = true;
    });
    this.listen(this.scroller, "scroll", () => this.onScroll());
    this.listen(this.section, "dragover", (e) => {
      if (e.dataTransfer && [...e.dataTransfer.types].includes("Files")) {
        e.preventDefault();
        this.section.classList.add("dropping");
      }
    });
    this.listen(this.section, "dragleave", () => this.section.classList.remove("dropping"));
    this.listen(this.section, "drop", (e) => {
      this.section.classList.remove("dropping");
      if (e.dataTransfer && e.dataTransfer.files.length) {
        e.preventDefault();
        this.attach([...e.dataTransfer.files]);
      }
    });
    this.listen(document, "visibilitychange", () => this.onScroll());
    this.listen(window, "resize", () => this.onScroll());
    this.tick = setInterval(() => this.updateActions(), 10000);
    this.presenceTick = setInterval(() => this.refreshPresence(), 30000);
    chat.members(room.id).then((items) => {
      this.people = items.map((m) => m.user);
      this.updateActions();
    }).catch(() => {});
    if (room.join_policy === null) chat.fetchRoom(room.id); // welcome gives names only: get the topic
    this.refreshPresence();
    this.fill();
    this.onScroll();
    this.input.focus();
  }

  stop() {
    this.stopped = true;
    for (const [target, type, fn] of this.listeners) target.removeEventListener(type, fn);
    clearInterval(this.tick);
    clearInterval(this.presenceTick);
    if (this.chat.viewing === this.room.id) this.chat.viewing = null;
  }

  listen(target, type, fn) {
    target.addEventListener(type, fn);
    this.listeners.push([target, type, fn]);
  }

  onConnected() {
    this.refreshPresence();
    if (this.loadError) this.fill();
  }

  // ------------------------------------------------------------------ header

  renderHead() {
    const { room } = this;
    this.nameEl.textContent = room.name;
    this.topicEl.textContent = room.topic || "";
    this.topicEl.hidden = !room.topic;
    document.title = `${room.name} · Chat`;
  }

  async refreshPresence() {
    try {
      const reply = await this.chat.presence(this.room.id);
      this.onlineEl.textContent = `${reply.count} online`;
      this.onlineEl.hidden = false;
    } catch (err) {
      this.onlineEl.hidden = true;
    }
  }

  toggleMembers(button) {
    const open = this.members.toggle();
    button.setAttribute("aria-expanded", String(open));
  }

  // ------------------------------------------------------------------ messages

  renderAll() {
    clear(this.list);
    this.rendered.clear();
    const seqs = [...this.room.msgs.keys()].sort((a, b) => a - b);
    const fragment = document.createDocumentFragment();
    for (const seq of seqs) {
      const li = this.renderMessage(this.room.msgs.get(seq));
      this.rendered.set(seq, li);
      fragment.append(li);
    }
    this.list.append(fragment);
    for (const li of this.list.children) groupWithPrevious(li);
    this.renderTop();
  }

  /** Put new or changed messages in place, keeping what the reader looks at where it is. */
  sync({ reset, seqs, older }) {
    const anchor = this.captureAnchor();
    const membership = !older && seqs.some((seq) => {
      const m = this.room.msgs.get(seq);
      return m && m.system && m.system.type.startsWith("member.");
    });
    if (membership) this.refreshPresence();
    let appended = 0;
    let mineAppended = false;
    if (reset) {
      this.renderAll();
    } else {
      const newest = this.newestRendered();
      for (const seq of [...seqs].sort((a, b) => a - b)) {
        const m = this.room.msgs.get(seq);
        if (!m) continue;
        const li = this.renderMessage(m);
        const old = this.rendered.get(seq);
        if (old) {
          old.replaceWith(li);
        } else {
          this.list.insertBefore(li, this.firstAfter(seq));
          if (seq > newest) {
            appended += 1;
            if (m.from && m.from.id === this.chat.me.id) mineAppended = true;
          }
        }
        this.rendered.set(seq, li);
        groupWithPrevious(li);
        if (li.nextElementSibling) groupWithPrevious(li.nextElementSibling);
      }
      this.renderTop();
    }
    if (mineAppended) {
      this.toBottom();
    } else {
      this.restoreAnchor(anchor);
      if (!anchor.bottom && appended && !older) {
        this.unseen += appended;
        this.jump.textContent = `${this.unseen} new message${this.unseen === 1 ? "" : "s"} ↓`;
        this.jump.hidden = false;
      }
    }
    this.onScroll();
  }

  newestRendered() {
    const last = this.list.lastElementChild;
    return last ? Number(last.dataset.seq) : 0;
  }

  /** The rendered message with the smallest seq above `seq` (binary search), or null. */
  firstAfter(seq) {
    const items = this.list.children;
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (Number(items[mid].dataset.seq) > seq) hi = mid;
      else lo = mid + 1;
    }
    return items[lo] || null;
  }

  renderMessage(m) {
    if (m.kind === "system") return this.renderSystem(m);
    const me = this.chat.me.id;
    const mine = Boolean(m.from && m.from.id === me);
    const mentioned = m.mentions === "all" || (Array.isArray(m.mentions) && m.mentions.includes(me));
    const classes = ["msg", mine ? "mine" : "theirs"];
    if (m.recalled) classes.push("recalled");
    if (mentioned && !mine) classes.push("mention");
    if (m.pinned) classes.push("pinned");
    const li = h("li", { class: classes.join(" "), dataset: { seq: m.seq, ts: m.ts, author: (m.from && m.from.id) || "" } },
      h("div", { class: "msg-meta" },
        h("span", { class: "msg-author" }, mine ? "You" : displayName(m.from)),
        m.from && m.from.bot ? h("span", { class: "tag" }, "bot") : null,
        h("time", { datetime: new Date(m.ts).toISOString(), title: fullTime(m.ts) }, shortTime(m.ts))),
      m.reply_to ? this.renderQuote(m) : null,
      m.recalled
        ? h("div", { class: "msg-text" }, h("em", {}, "This message was recalled."))
        : h("div", { class: "msg-text" }, withMentions(m.text || "")),
      m.recalled ? null : h("div", { class: "msg-foot" },
        m.edited_ts ? h("button", {
          type: "button", class: "edited", title: `edited ${fullTime(m.edited_ts)}: show earlier versions`,
          onclick: () => this.showEdits(li, m),
        }, "edited") : null,
        m.pinned ? h("span", { class: "tag pinned-tag" }, "pinned") : null,
        this.renderReactions(m)),
      m.recalled ? null : filesView(this.ctx.api, m.files),
      h("div", { class: "msg-actions" }));
    this.fillActions(li, m);
    // Touch screens have no hover: a tap on a message shows its actions.
    li.addEventListener("click", (event) => {
      if (!event.target.closest("button, a")) li.classList.toggle("selected");
    });
    return li;
  }

  /** The quote above a reply: who and what it answers; a click shows the original. */
  renderQuote(m) {
    const original = this.room.msgs.get(m.reply_to);
    const reply = m.reply || {};
    const from = reply.from || (original && original.from);
    const text = original ? (original.recalled ? "" : original.text) : reply.excerpt;
    return h("button", { type: "button", class: "msg-reply quote", dataset: { target: m.reply_to },
      onclick: () => this.scrollToMessage(m.reply_to) },
    `↪ ${from ? displayName(from) : "an earlier message"}: `,
    text ? excerpt(text) : h("em", {}, "recalled"));
  }

  renderReactions(m) {
    const reactions = m.reactions || [];
    return h("div", { class: "reactions", hidden: !reactions.length },
      reactions.map((r) => h("button", {
        type: "button", class: `reaction${r.me ? " me" : ""}`, dataset: { emoji: r.emoji },
        "aria-pressed": String(Boolean(r.me)), onclick: () => this.react(m.seq, r.emoji),
      }, h("span", { class: "emoji" }, r.emoji), h("span", { class: "count" }, String(r.count)))));
  }

  async react(seq, emoji) {
    try {
      await this.chat.react(this.room.id, seq, emoji);
    } catch (err) {
      this.ctx.toast(errorWords(err), { kind: "error" });
    }
  }

  /** Bring a message into view (paging older history in when it is not loaded yet) and flash it. */
  async scrollToMessage(seq) {
    for (let i = 0; i < 20 && !this.rendered.has(seq) && this.room.more !== false; i += 1) {
      if (!(await this.loadOlder()) && this.loadError) break;
    }
    const li = this.rendered.get(seq);
    if (!li) {
      this.ctx.toast("That message is no longer in this group's history.", { kind: "info" });
      return;
    }
    li.scrollIntoView({ block: "center" });
    li.classList.add("flash");
    setTimeout(() => li.classList.remove("flash"), 1600);
  }

  /** The earlier versions of an edited message, under it (a second click hides them). */
  async showEdits(li, m) {
    const shown = li.querySelector(".msg-edits");
    if (shown) {
      shown.remove();
      return;
    }
    try {
      const items = await this.chat.edits(this.room.id, m.seq);
      li.querySelector(".msg-text").after(h("ol", { class: "msg-edits", "aria-label": "Earlier versions" },
        items.map((e) => h("li", {}, h("time", { title: fullTime(e.ts) }, shortTime(e.ts)), " ", e.text))));
    } catch (err) {
      this.ctx.toast(errorWords(err), { kind: "error" });
    }
  }

  canEdit(m) {
    return Boolean(m && m.kind === "text" && !m.recalled && m.from && m.from.id === this.chat.me.id
      && Date.now() - m.ts < EDIT_WINDOW);
  }

  /** Edit in place: the text becomes a field with Save and Cancel. */
  startEdit(li, m) {
    const text = li.querySelector(".msg-text");
    if (!text || li.querySelector(".edit-form")) return;
    const field = h("textarea", { name: "edit", rows: 2, "aria-label": "Edit message" });
    field.value = m.text || "";
    const form = h("form", { class: "edit-form", onsubmit: async (event) => {
      event.preventDefault();
      const value = field.value;
      if (!value.trim() || value === m.text) {
        form.remove();
        text.hidden = false;
        return;
      }
      try {
        await this.chat.edit(this.room.id, m.seq, value);
        form.remove();
        text.hidden = false;
      } catch (err) {
        this.ctx.toast(errorWords(err), { kind: "error" });
      }
    } }, field,
    h("button", { type: "submit", class: "small primary" }, "Save"),
    h("button", { type: "button", class: "small ghost", onclick: () => {
      form.remove();
      text.hidden = false;
    } }, "Cancel"));
    text.hidden = true;
    text.after(form);
    field.focus();
  }

  startReply(m) {
    this.replyTo = m;
    clear(this.replyBar).append(
      h("span", { class: "reply-quote" }, `Replying to ${displayName(m.from)}: ${excerpt(m.text)}`),
      h("button", { type: "button", class: "small ghost", "aria-label": "Cancel reply", onclick: () => this.endReply() }, "×"));
    this.replyBar.hidden = false;
    this.input.focus();
  }

  endReply() {
    this.replyTo = null;
    clear(this.replyBar);
    this.replyBar.hidden = true;
  }

  renderSystem(m) {
    const { text, detail, links } = describeSystem(m);
    return h("li", { class: "msg system", dataset: { seq: m.seq, ts: m.ts, systemType: (m.system && m.system.type) || "" } },
      h("div", { class: "system-body" },
        h("span", { class: "system-text" }, text),
        h("time", { datetime: new Date(m.ts).toISOString(), title: fullTime(m.ts) }, shortTime(m.ts)),
        detail ? h("span", { class: "system-detail" }, detail) : null,
        links.map((l) => h("a", { href: l.href, class: "system-link" }, l.label))));
  }

  canRecall(m) {
    if (!m || m.kind === "system" || m.recalled) return false;
    if (ADMIN_ROLES.has(this.room.role)) return true;
    return Boolean(m.from && m.from.id === this.chat.me.id && Date.now() - m.ts < RECALL_WINDOW);
  }

  fillActions(li, m) {
    const box = li.querySelector(".msg-actions");
    if (!box) return;
    if (m && m.kind === "text" && !m.recalled && !box.querySelector(".reply")) {
      box.append(
        h("button", { type: "button", class: "reply small ghost", onclick: () => this.startReply(m) }, "Reply"),
        ...QUICK_EMOJI.map((emoji) => h("button", {
          type: "button", class: "react-choice small ghost", dataset: { emoji }, "aria-label": `React ${emoji}`,
          onclick: () => this.react(m.seq, emoji),
        }, emoji)));
    }
    const editable = this.canEdit(m);
    const edit = box.querySelector(".edit");
    if (editable && !edit) {
      box.append(h("button", { type: "button", class: "edit small ghost", onclick: () => this.startEdit(li, m) }, "Edit"));
    } else if (!editable && edit) {
      edit.remove();
    }
    const allowed = this.canRecall(m);
    const button = box.querySelector(".recall");
    if (allowed && !button) {
      // Two clicks: "Recall", then "Recall for everyone?" within a few seconds.
      const recall = h("button", {
        type: "button", class: "recall small ghost", onclick: () => {
          if (recall.dataset.armed) {
            this.recall(m.seq);
            return;
          }
          recall.dataset.armed = "1";
          recall.textContent = "Recall for everyone?";
          setTimeout(() => {
            delete recall.dataset.armed;
            recall.textContent = "Recall";
          }, 4000);
        },
      }, "Recall");
      box.append(recall);
    } else if (!allowed && button) {
      button.remove();
    }
  }

  updateActions() {
    for (const [seq, li] of this.rendered) this.fillActions(li, this.room.msgs.get(seq));
  }

  async recall(seq) {
    try {
      await this.chat.recall(this.room.id, seq);
    } catch (err) {
      this.ctx.toast(err.code === "forbidden"
        ? "You can no longer recall that message (only within 2 minutes, or as an owner or admin)."
        : errorWords(err), { kind: "error" });
    }
  }

  renderTop() {
    const { room } = this;
    clear(this.top);
    if (this.loadError) {
      this.top.append(h("p", { class: "form-error" }, `Could not load older messages: ${this.loadError}`),
        h("button", { type: "button", class: "small", onclick: () => this.loadOlder() }, "Try again"));
    } else if (room.more === false) {
      this.top.append(h("p", { class: "history-start" }, room.msgs.size ? "The beginning of this group." : "No messages yet. Say hello!"));
    } else if (room.loading) {
      this.top.append(h("p", { class: "history-loading" }, "Loading older messages…"));
    } else {
      this.top.append(h("button", { type: "button", class: "small ghost load-older", onclick: () => this.loadOlder() }, "Load older messages"));
    }
  }

  async loadOlder() {
    const { room } = this;
    if (room.more === false || room.loading) return 0;
    this.loadError = null;
    const done = this.chat.loadOlder(room.id);
    this.renderTop();
    try {
      return await done;
    } catch (err) {
      this.loadError = err.code === "unavailable" ? "waiting for the connection." : errorWords(err);
      return 0;
    } finally {
      this.renderTop();
    }
  }

  /** Show message `seq` (a search result links here): load older pages until it is in the
   * list, then scroll to it and mark it. */
  async reveal(seq) {
    for (let i = 0; i < REVEAL_TRIES && !this.stopped; i += 1) {
      const li = this.list.querySelector(`li[data-seq="${seq}"]`);
      if (li) {
        li.classList.add("found");
        li.scrollIntoView({ block: "center" });
        return;
      }
      if (this.room.more === false && this.room.msgs.size) return;
      const added = await this.loadOlder();
      if (!added) await new Promise((resolve) => { setTimeout(resolve, 200); });
    }
  }

  /** Load pages until the list can scroll (or there is no more). */
  async fill() {
    for (let i = 0; i < FILL_PAGES; i += 1) {
      if (this.room.more === false) break;
      if (this.room.msgs.size && this.scroller.scrollHeight > this.scroller.clientHeight + NEAR_TOP) break;
      const added = await this.loadOlder();
      if (!added && this.loadError) break;
    }
    this.renderTop();
  }

  // ------------------------------------------------------------------ scrolling

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM;
  }

  captureAnchor() {
    if (this.atBottom()) return { bottom: true };
    const top = this.scroller.scrollTop;
    for (const el of this.list.children) {
      if (el.offsetTop + el.offsetHeight > top) return { bottom: false, el, offset: el.offsetTop - top };
    }
    return { bottom: true };
  }

  restoreAnchor(anchor) {
    if (anchor.bottom) this.scroller.scrollTop = this.scroller.scrollHeight;
    else if (anchor.el.isConnected) this.scroller.scrollTop = anchor.el.offsetTop - anchor.offset;
  }

  toBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.unseen = 0;
    this.jump.hidden = true;
    this.onScroll();
  }

  onScroll() {
    const reading = this.atBottom() && document.visibilityState === "visible";
    if (reading) {
      this.unseen = 0;
      this.jump.hidden = true;
      this.chat.viewing = this.room.id;
      this.chat.markRead(this.room.id);
    } else if (this.chat.viewing === this.room.id) {
      this.chat.viewing = null;
    }
    if (this.scroller.scrollTop < NEAR_TOP && this.room.more !== false && !this.room.loading && !this.loadError) {
      this.loadOlder();
    }
  }

  // ------------------------------------------------------------------ pending, typing, composer

  renderPending() {
    clear(this.pendingList);
    for (const p of this.chat.pendingIn(this.room.id)) {
      const status = {
        sending: "Sending…",
        acked: "Sent",
        queued: "Waiting for the connection…",
        waiting: p.error,
        failed: `Not sent: ${p.error}`,
      }[p.state];
      this.pendingList.append(h("li", { class: `msg mine pending ${p.state}`, dataset: { cid: p.cid } },
        h("div", { class: "msg-meta" }, h("span", { class: "msg-author" }, "You")),
        h("div", { class: "msg-text" }, p.text),
        p.files && p.files.length ? h("div", { class: "msg-files muted" }, p.files.map((f) => f.name).join(", ")) : null,
        h("div", { class: "msg-status" }, status,
          p.state === "failed" ? [
            h("button", { type: "button", class: "small ghost", onclick: () => this.chat.retry(p.cid) }, "Retry"),
            h("button", { type: "button", class: "small ghost", onclick: () => this.chat.discard(p.cid) }, "Discard"),
          ] : null)));
    }
    if (this.atBottom() || this.pendingList.children.length) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  renderTyping() {
    const names = this.chat.typingIn(this.room.id).map(displayName);
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    this.typingEl.textContent = text;
    this.typingEl.classList.toggle("active", Boolean(text));
  }

  onInput() {
    const text = this.input.value;
    if (text) this.chat.sendTyping(this.room.id);
    this.suggestMentions();
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
    const max = this.chat.limits.max_text || 4000;
    const length = [...text].length;
    this.counter.hidden = length < max * 0.9;
    this.counter.textContent = `${length}/${max}`;
    this.counter.classList.toggle("over", length > max);
  }

  /** While an @name is typed, offer the members it could be. */
  suggestMentions() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const typed = MENTION_AT.exec(before);
    const prefix = typed ? typed[2].toLowerCase() : null;
    const matches = prefix === null ? [] : this.people.filter((u) => u.id !== this.chat.me.id
      && (u.name.startsWith(prefix) || displayName(u).toLowerCase().startsWith(prefix))).slice(0, 8);
    clear(this.mentionList);
    this.mentionList.hidden = !matches.length;
    matches.forEach((u, i) => this.mentionList.append(h("li", {
      role: "option", class: i === 0 ? "active" : "", dataset: { name: u.name },
      onmousedown: (event) => {
        event.preventDefault(); // keep the focus in the composer
        this.insertMention(u);
      },
    }, h("strong", {}, displayName(u)), " ", h("span", { class: "muted" }, `@${u.name}`))));
  }

  insertMention(user) {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret).replace(/@([a-z0-9_.-]*)$/, `@${user.name} `);
    this.input.value = before + this.input.value.slice(caret);
    this.input.selectionStart = this.input.selectionEnd = before.length;
    this.mentionList.hidden = true;
    this.input.focus();
  }

  /** Ids of the members named as @name in `text`. */
  mentionsIn(text) {
    const names = new Set([...text.matchAll(/@([a-z0-9_.-]{3,32})/g)].map((x) => x[1]));
    return this.people.filter((u) => names.has(u.name) && u.id !== this.chat.me.id).map((u) => u.id);
  }

  onKey(event) {
    if (!this.mentionList.hidden && (event.key === "Enter" || event.key === "Tab")) {
      const first = this.mentionList.querySelector("li");
      const user = first && this.people.find((u) => u.name === first.dataset.name);
      if (user) {
        event.preventDefault();
        this.insertMention(user);
        return;
      }
    }
    if (event.key === "Escape") {
      this.mentionList.hidden = true;
      if (this.replyTo) this.endReply();
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.composer.requestSubmit();
    }
  }

  onSubmit(event) {
    event.preventDefault();
    const text = this.input.value;
    if (this.attached.some((a) => a.state === "uploading")) {
      this.ctx.toast("Wait until the files are uploaded.", { kind: "info" });
      return;
    }
    const files = this.attached.map((a) => a.info);
    if (!text.trim() && !files.length) return;
    try {
      this.chat.send(this.room.id, text, files, {
        replyTo: this.replyTo ? this.replyTo.seq : null, mentions: this.mentionsIn(text),
      });
    } catch (err) {
      this.ctx.toast(err.code === "too_large"
        ? `That message is too long: ${err.message}.` : errorWords(err), { kind: "error" });
      return;
    }
    this.input.value = "";
    this.endReply();
    this.attached = [];
    this.renderAttached();
    this.onInput();
    this.toBottom();
  }

  /** Upload files at once (at most 10 to a message); they go with the next message sent. */
  attach(files) {
    for (const file of files) {
      if (this.attached.length >= 10) {
        this.ctx.toast("At most 10 files go with one message.", { kind: "error" });
        break;
      }
      const item = { name: file.name || "pasted", size: file.size, state: "uploading", info: null };
      this.attached.push(item);
      this.ctx.api.upload(file).then((info) => {
        item.info = info;
        item.state = "ready";
        this.renderAttached();
      }).catch((err) => {
        this.attached = this.attached.filter((a) => a !== item);
        this.ctx.toast(err.code === "too_large" ? `${item.name} is too large to send.`
          : `${item.name} could not be uploaded: ${errorWords(err)}`, { kind: "error" });
        this.renderAttached();
      });
    }
    this.renderAttached();
    this.input.focus();
  }

  renderAttached() {
    clear(this.attachedEl);
    this.attachedEl.hidden = !this.attached.length;
    for (const item of this.attached) {
      this.attachedEl.append(h("li", { class: `attachment ${item.state}`, dataset: { state: item.state } },
        h("span", { class: "file-name" }, item.name),
        h("span", { class: "muted" }, item.state === "uploading" ? " uploading…" : ` ${fileSize(item.size)}`),
        h("button", { type: "button", class: "small ghost", "aria-label": `Remove ${item.name}`, onclick: () => {
          this.attached = this.attached.filter((a) => a !== item);
          this.renderAttached();
        } }, "×")));
    }
  }
}

const GROUP_WITHIN = 5 * 60 * 1000; // ms: one author's messages closer than this share a header

/** Mark a message that follows one of the same author shortly before: its header is left out. */
function groupWithPrevious(li) {
  const prev = li.previousElementSibling;
  const same = Boolean(prev && li.dataset.author && prev.dataset.author === li.dataset.author
    && !li.classList.contains("system") && !prev.classList.contains("system")
    && Number(li.dataset.ts) - Number(prev.dataset.ts) < GROUP_WITHIN);
  li.classList.toggle("cont", same);
}

/** Text with each @name set apart as a mention badge (as text nodes: never HTML). */
function withMentions(text) {
  const parts = String(text).split(/(@[a-z0-9_.-]{3,32})/g);
  return parts.map((part, i) => (i % 2 ? h("span", { class: "mention-badge" }, part) : part));
}

function excerpt(text) {
  const s = String(text || "");
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
