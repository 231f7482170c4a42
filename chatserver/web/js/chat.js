// The signed-in user's chat state: groups, their messages (deduplicated by
// seq), unread counts, messages on their way out, typing, invitations. Views
// read it and listen to its events; it talks to the server through the socket
// and the API.
//
// Changes to earlier messages (edits, reactions, pins, recalls) arrive as
// update entries with their own seq (docs/protocol.md §6.4): they are folded
// into the message they target, never shown as rows, and each is applied
// once. Each message knows the seq its state reflects (`asOf`): a page of
// history is folded up to the reply's `last_seq`, a live message is as of its
// own seq, and an entry changes a message only past that. An entry that comes
// while a page is on its way, for a message not held yet, waits for the page.
//
// Events: "rooms" (the list or a badge changed), "room" (detail: {room,
// reset, seqs}: messages of one room changed), "pending" (detail: {room}),
// "typing" (detail: {room}), "status" (detail: socket state), "invitations",
// "removed" (detail: {room, kicked}), "notice" (detail: {text, kind}),
// "requests" (detail: {room}: a join request arrived for a group we run),
// "pins" (detail: {room}: a message was pinned or unpinned).

import { ChatSocket, SocketError, socketUrl } from "./socket.js";
import { enc } from "./api.js";
import { displayName } from "./dom.js";
import { errorWords, seconds } from "./words.js";

const PAGE = 50; // history page size
const TYPING_EVERY = 3000; // ms between our own `typing` frames per room
const TYPING_SHOWN = 5000; // ms someone shows as typing after their last `typing`
const SAVE_DELAY = 200; // ms: the resume map is saved at most this often

export class Chat extends EventTarget {
  constructor({ api, me, token }) {
    super();
    this.api = api;
    this.me = me;
    this.rooms = new Map();
    this.limits = { max_text: 4000 };
    this.pending = new Map(); // cid → {cid, room, text, state, error, created}
    this.typing = new Map(); // room → Map(user id → {user, timer})
    this.typingSent = new Map(); // room → ms of our last typing frame
    this.invitations = new Map(); // id → pending invitation
    this.viewing = null; // the room the chat view shows, when it can see the newest message
    this.resumeKey = `chat.resume:${me.id}`;
    this.lastSeq = loadJson(sessionStorage, this.resumeKey) || {};
    this.socket = new ChatSocket({ url: socketUrl(), token, resume: () => ({ ...this.lastSeq }) });
    this.socket.addEventListener("welcome", (e) => this.onWelcome(e.detail));
    this.socket.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.socket.addEventListener("state", (e) => this.emit("status", e.detail));
    this.onPageHide = () => this.saveResume();
  }

  start() {
    window.addEventListener("pagehide", this.onPageHide);
    this.socket.start();
    this.loadInvitations();
  }

  stop({ forget = false } = {}) {
    window.removeEventListener("pagehide", this.onPageHide);
    this.socket.stop();
    clearTimeout(this.saveTimer);
    if (forget) sessionStorage.removeItem(this.resumeKey);
    else this.saveResume();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  notice(text, kind = "error") {
    this.emit("notice", { text, kind });
  }

  // ------------------------------------------------------------------ rooms

  /** Groups, most recently active first. */
  roomList() {
    return [...this.rooms.values()].sort((a, b) => b.activity - a.activity || a.name.localeCompare(b.name));
  }

  ensureRoom(id, fields = {}) {
    let room = this.rooms.get(id);
    if (!room) {
      room = {
        id, name: fields.name || "…", topic: "", join_policy: null, last_seq: 0, read_seq: 0, unread: 0,
        counted: 0, msgs: new Map(), more: null, loading: null, role: null, activity: 0, mentions: 0,
        early: [], // update entries that came while a page was on its way, for messages not held
        kind: "group",
        muted: false, announcement: null, muted_until: null, // who may send, and the group's newest announcement
      };
      this.rooms.set(id, room);
    }
    Object.assign(room, fields);
    return room;
  }

  /** Name, topic and policy from the API, for a room first met through an event. */
  async fetchRoom(id) {
    try {
      const data = await this.api.get(`/api/rooms/${enc(id)}`);
      const room = this.rooms.get(id);
      if (room) {
        Object.assign(room, {
          name: data.name, topic: data.topic, join_policy: data.join_policy, owner: data.owner, avatar: data.avatar,
          muted: Boolean(data.muted), announcement: data.announcement || null,
          kind: data.kind || "group",
        });
        this.emit("rooms");
        this.emit("room", { room: id, reset: false, seqs: [] });
      }
      return data;
    } catch (err) {
      return null;
    }
  }

  removeRoom(id, kicked = false) {
    if (!this.rooms.delete(id)) return;
    delete this.lastSeq[id];
    this.scheduleSave();
    for (const [cid, p] of this.pending) if (p.room === id) this.pending.delete(cid);
    this.emit("rooms");
    this.emit("removed", { room: id, kicked });
  }

  async createRoom(body) {
    const data = await this.api.post("/api/rooms", body);
    const room = this.ensureRoom(data.id, {
      name: data.name, topic: data.topic, join_policy: data.join_policy, owner: data.owner,
      last_seq: data.last_seq, read_seq: data.last_seq, counted: data.last_seq, more: false, role: "owner",
      activity: Date.now(),
    });
    this.lastSeq[room.id] = data.last_seq;
    this.scheduleSave();
    this.emit("rooms");
    // The server subscribes a connection to the groups it is a member of at
    // `hello`, and on joins and adds, but not to a group it creates: a quick
    // reconnect (resuming everything) picks the new group up.
    this.socket.refresh();
    return data;
  }

  async join(id) {
    await this.socket.request({ op: "join", room: id });
    this.ensureRoom(id, { activity: Date.now() });
    this.fetchRoom(id);
    this.emit("rooms");
  }

  async leave(id) {
    await this.socket.request({ op: "leave", room: id });
    this.removeRoom(id);
  }

  /** Drop the groups the server no longer counts us in. A removed member may never get its own
   * `member.kicked` (docs/protocol.md §4.3), so a refusal in a group is the cue to ask. */
  async reconcileRooms() {
    try {
      const data = await this.api.get("/api/rooms");
      const ids = new Set(data.items.map((r) => r.id));
      for (const id of [...this.rooms.keys()]) {
        if (!ids.has(id)) this.removeRoom(id, true);
      }
    } catch (err) {
      // unreachable now: the next welcome reconciles too
    }
  }

  async members(id) {
    const data = await this.api.get(`/api/rooms/${enc(id)}/members`);
    const mine = data.items.find((m) => m.user.id === this.me.id);
    const room = this.rooms.get(id);
    if (room && mine) {
      room.role = mine.role;
      room.muted_until = mine.muted_until || null;
      this.emit("rooms");
    }
    return data.items;
  }

  async addMember(id, userId) {
    return this.api.post(`/api/rooms/${enc(id)}/members`, { user_id: userId });
  }

  /** Why we may not send in a group now, or null: {text, until?} (until: ms of a mute's end). */
  sendBlock(id) {
    const room = this.rooms.get(id);
    if (!room) return null;
    if (room.muted_until && room.muted_until > Date.now()) {
      return { text: "You are muted in this group", until: room.muted_until };
    }
    if (room.muted && room.role !== "owner" && room.role !== "admin") {
      return { text: "The group is muted: only the owner and admins may send" };
    }
    return null;
  }

  async presence(id) {
    return this.socket.request({ op: "presence", room: id });
  }

  // ------------------------------------------------------------------ frames

  onWelcome(welcome) {
    this.me = welcome.user;
    this.limits = welcome.limits || this.limits;
    const present = new Set();
    for (const r of welcome.rooms) {
      present.add(r.id);
      const room = this.ensureRoom(r.id, {
        name: r.name, read_seq: r.read_seq, unread: r.unread, mentions: r.mentions || 0, kind: r.kind || "group",
      });
      room.last_seq = Math.max(room.last_seq, r.last_seq);
      room.counted = Math.max(room.counted, r.last_seq);
      if (room.last_seq === 0) room.more = false;
      // Rooms we did not resume are served from their current last seq on.
      if (!(r.id in this.lastSeq)) this.lastSeq[r.id] = r.last_seq;
    }
    for (const id of [...this.rooms.keys()]) if (!present.has(id)) this.removeRoom(id);
    for (const id of Object.keys(this.lastSeq)) if (!present.has(id)) delete this.lastSeq[id];
    this.scheduleSave();
    this.emit("rooms");
    // Whatever was on its way out when the line dropped goes again (same cid: never twice).
    for (const p of this.pending.values()) {
      if (p.state === "queued" || p.state === "sending") this.transmit(p);
    }
    if (this.viewing) this.markRead(this.viewing);
  }

  onFrame(frame) {
    switch (frame.op) {
      case "message":
        this.onMessage(frame);
        break;
      case "gap":
        this.onGap(frame);
        break;
      case "typing":
        this.onTyping(frame);
        break;
      case "read": {
        const room = this.rooms.get(frame.room);
        if (room && frame.seq > room.read_seq) {
          room.read_seq = frame.seq;
          room.unread = this.countUnread(room);
          this.emit("rooms");
        }
        break;
      }
      case "recalled": {
        const room = this.rooms.get(frame.room);
        const msg = room && room.msgs.get(frame.seq);
        if (msg) {
          msg.recalled = true;
          msg.text = null;
          msg.recalled_by = frame.by;
          this.emit("room", { room: room.id, reset: false, seqs: [frame.seq], changed: true });
        }
        break;
      }
      case "notify":
        if (frame.type === "mention") {
          const room = this.rooms.get(frame.room);
          if (room && this.viewing !== room.id && frame.seq > room.read_seq) {
            room.mentions = (room.mentions || 0) + 1;
            this.emit("rooms");
          }
        } else if (frame.type === "comment" || frame.type === "like") {
          const what = frame.type === "like" ? "liked" : "commented on";
          this.emit("notice", {
            kind: "info", text: `${displayName(frame.by)} ${what} your post.`,
            action: { label: "Open my space", href: `#/space/${this.me.id}` },
          });
        } else if (frame.type === "invitation" && frame.invitation) {
          const inv = frame.invitation;
          if (!inv.status || inv.status === "pending") this.invitations.set(inv.id, inv);
          this.emit("invitations");
          const record = inv.record && typeof inv.record === "object" ? inv.record.name : "an alumni record";
          this.emit("notice", {
            kind: "info",
            text: `${displayName(inv.inviter)} invited you to ${record}.`,
            action: { label: "See invitations", href: "#/invitations" },
          });
        } else if (frame.type === "join_request" && frame.request) {
          const req = frame.request;
          const room = this.rooms.get(req.room);
          this.emit("requests", { room: req.room });
          this.emit("notice", {
            kind: "info",
            text: `${displayName(req.user)} asks to join ${room ? room.name : "your group"}.`,
            action: { label: "Open the group", href: `#/room/${encodeURIComponent(req.room)}` },
          });
        } else if (frame.type === "record_request" && frame.request) {
          const req = frame.request;
          const record = req.record && typeof req.record === "object" ? req.record : { id: req.record, name: "your record" };
          this.emit("notice", {
            kind: "info",
            text: `${displayName(req.user)} asks to join ${record.name}.`,
            action: { label: "See requests", href: `#/alumni/${encodeURIComponent(record.id)}` },
          });
        }
        break;
      case "room_deleted": {
        const room = this.rooms.get(frame.room);
        if (room) {
          this.removeRoom(frame.room, true);
          this.notice(`The group “${room.name}” was dissolved by its owner.`, "info");
        }
        break;
      }
      case "error":
        this.notice(errorWords({ code: frame.code, message: frame.message, retryAfter: frame.retry_after }));
        break;
      default:
        break; // pong and frames of newer servers
    }
  }

  onMessage(m) {
    let room = this.rooms.get(m.room);
    if (!room) {
      room = this.ensureRoom(m.room);
      this.fetchRoom(m.room);
    }
    if (m.kind === "update") {
      this.onUpdate(room, m);
      return;
    }
    // Our own joining counts as read (docs/protocol.md §4.6: read_seq starts at our member.joined).
    const sys = m.kind === "system" && m.system;
    const joined = sys && sys.type === "member.joined" && sys.data && sys.data.user && sys.data.user.id === this.me.id;
    const mine = (m.from && m.from.id === this.me.id) || joined;
    const added = this.addMessages(room, [m]);
    this.lastSeq[room.id] = Math.max(this.lastSeq[room.id] || 0, m.seq);
    this.scheduleSave();
    room.last_seq = Math.max(room.last_seq, m.seq);
    room.activity = Date.now();
    if (mine) {
      room.read_seq = Math.max(room.read_seq, m.seq);
    } else if (m.seq > room.counted && m.seq > room.read_seq) {
      room.unread += 1;
    }
    room.counted = Math.max(room.counted, m.seq);
    if (m.from) this.stopTyping(room.id, m.from.id);
    if (sys) this.onSystem(room, m, sys);
    if (added.length) this.emit("room", { room: room.id, reset: false, seqs: added });
    if (this.viewing === room.id) this.markRead(room.id);
    this.emit("rooms");
  }

  /** Fold a live or replayed update entry into its target (once), and move past its seq. */
  onUpdate(room, m) {
    this.lastSeq[room.id] = Math.max(this.lastSeq[room.id] || 0, m.seq);
    this.scheduleSave();
    room.last_seq = Math.max(room.last_seq, m.seq);
    room.counted = Math.max(room.counted, m.seq); // update entries never count as unread
    const target = room.msgs.get(m.update.target);
    if (target) {
      if (applyUpdate(target, m, this.me.id)) {
        this.emit("room", { room: room.id, reset: false, seqs: [target.seq], changed: true });
      }
    } else if (room.loading) {
      room.early.push(m); // the page on its way may hold the target, read before this entry
    }
    if (m.update.type === "pinned" || m.update.type === "unpinned") this.emit("pins", { room: room.id });
  }

  onSystem(room, m, sys) {
    const data = sys.data || {};
    const subject = data.user && data.user.id;
    if ((sys.type === "member.left" || sys.type === "member.kicked") && subject === this.me.id) {
      this.removeRoom(room.id, sys.type === "member.kicked");
    } else if (sys.type === "room.updated" && data.changes) {
      for (const key of ["name", "topic", "join_policy", "muted", "announcement"]) {
        if (key in data.changes) room[key] = data.changes[key];
      }
      const role = data.changes.role;
      if (role && role.user && role.user.id === this.me.id) room.role = role.role;
      else if (role && role.role === "owner" && data.by && data.by.id === this.me.id) room.role = "admin";
    } else if (sys.type === "member.muted" && subject === this.me.id) {
      room.muted_until = data.until;
    } else if (sys.type === "member.unmuted" && subject === this.me.id) {
      room.muted_until = null;
    } else if (sys.type === "room.announcement") {
      room.announcement = data.announcement || null;
    }
  }

  onGap(gap) {
    // Messages up to `to` were skipped: keep only the unbroken run after it,
    // and page the rest in with `history` when the reader scrolls back.
    const room = this.rooms.get(gap.room);
    if (!room) return;
    for (const seq of [...room.msgs.keys()]) if (seq <= gap.to) room.msgs.delete(seq);
    room.more = true;
    this.emit("room", { room: room.id, reset: true, seqs: [] });
  }

  /** Store messages by seq (a seq already held is skipped: it has every update since it came);
   * returns the seqs added. Update entries are not stored: a page holds its messages already
   * folded up to `asOf`. */
  addMessages(room, messages, asOf = 0) {
    const added = [];
    for (const m of messages) {
      if (m.kind === "update") continue;
      if (asOf) m.asOf = asOf;
      if (room.msgs.has(m.seq)) {
        if (m.recalled && !room.msgs.get(m.seq).recalled) {
          room.msgs.set(m.seq, m);
          added.push(m.seq);
        }
        continue;
      }
      room.msgs.set(m.seq, m);
      added.push(m.seq);
      if (m.cid && m.from && m.from.id === this.me.id && this.pending.delete(m.cid)) {
        this.emit("pending", { room: room.id });
      }
    }
    return added;
  }

  countUnread(room) {
    if (room.read_seq >= room.last_seq) return 0;
    let n = 0;
    for (const m of room.msgs.values()) if (m.seq > room.read_seq && !(m.from && m.from.id === this.me.id)) n += 1;
    return Math.min(n || room.unread, room.last_seq - room.read_seq);
  }

  // ------------------------------------------------------------------ history

  /** Load the page before the oldest message held (or the newest page); resolves to the count added. */
  loadOlder(id) {
    const room = this.rooms.get(id);
    if (!room || room.more === false) return Promise.resolve(0);
    if (room.loading) return room.loading;
    const held = [...room.msgs.keys()];
    const frame = { op: "history", room: id, limit: PAGE };
    if (held.length) frame.before = Math.min(...held);
    if (frame.before === 1) {
      room.more = false;
      return Promise.resolve(0);
    }
    room.loading = this.socket
      .request(frame)
      .then((reply) => {
        // The page shows every update up to the room's last seq when the server read it, none
        // after (docs/protocol.md §5.2). A server that does not say: the newest seq known here.
        const asOf = reply.last_seq ?? Math.max(room.last_seq, ...reply.messages.map((m) => m.seq));
        const added = this.addMessages(room, reply.messages, asOf);
        for (const entry of room.early) {
          const target = room.msgs.get(entry.update.target);
          if (target) applyUpdate(target, entry, this.me.id); // only those past the read change it
        }
        room.more = reply.more;
        if (added.length || !reply.more) this.emit("room", { room: id, reset: false, seqs: added, older: true });
        return added.length;
      })
      .finally(() => {
        room.loading = null;
        room.early = [];
      });
    return room.loading;
  }

  // ------------------------------------------------------------------ sending

  /** Send `text` with `files` (file objects already uploaded, docs/protocol.md §12.10), as a reply to
   * seq `replyTo`, mentioning the user ids `mentions` (docs/protocol.md §6.5). */
  send(roomId, text, files = [], { replyTo = null, mentions = null } = {}) {
    const max = this.limits.max_text || 4000;
    if ([...text].length > max) throw new SocketError("too_large", `at most ${max} characters`);
    const p = { cid: newCid(), room: roomId, text, files, state: "sending", error: null, created: Date.now() };
    if (replyTo) p.reply_to = replyTo;
    if (mentions && mentions.length) p.mentions = mentions;
    this.pending.set(p.cid, p);
    this.transmit(p);
    this.emit("pending", { room: roomId });
    return p;
  }

  transmit(p) {
    clearTimeout(p.timer);
    if (!this.socket.isOpen) {
      p.state = "queued";
      this.emit("pending", { room: p.room });
      return;
    }
    p.state = "sending";
    p.error = null;
    this.socket
      .request({
        op: "send", room: p.room, text: p.text, cid: p.cid,
        ...(p.files.length ? { files: p.files.map((f) => f.id) } : {}),
        ...(p.reply_to ? { reply_to: p.reply_to } : {}), ...(p.mentions ? { mentions: p.mentions } : {}),
      })
      .then((ack) => {
        const room = this.rooms.get(p.room);
        if (room) room.read_seq = Math.max(room.read_seq, ack.seq);
        const delivered = room && room.msgs.get(ack.seq);
        if (delivered || !this.pending.has(p.cid)) {
          this.pending.delete(p.cid);
        } else {
          p.state = "acked";
          p.seq = ack.seq;
        }
        this.emit("pending", { room: p.room });
      })
      .catch((err) => {
        if (!this.pending.has(p.cid)) return;
        if (err.code === "unavailable") {
          p.state = "queued"; // sent again on the next welcome
        } else if (err.code === "rate_limited") {
          // Those already waiting go first, one retry_after apart: retrying all at once
          // would only be refused again (and repeated refusals end in a 4008 close).
          const ahead = [...this.pending.values()].filter((q) => q.state === "waiting" && q !== p).length;
          const wait = (err.retryAfter || 1000) * (ahead + 1);
          p.state = "waiting";
          p.error = `Sending too fast: retrying in ${seconds(wait)}.`;
          p.timer = setTimeout(() => this.pending.has(p.cid) && this.transmit(p), wait);
        } else {
          p.state = "failed";
          p.error = errorWords(err);
          if (err.code === "forbidden" || err.code === "not_found") this.reconcileRooms();
        }
        this.emit("pending", { room: p.room });
      });
  }

  retry(cid) {
    const p = this.pending.get(cid);
    if (p) this.transmit(p);
  }

  discard(cid) {
    const p = this.pending.get(cid);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(cid);
    this.emit("pending", { room: p.room });
  }

  pendingIn(roomId) {
    return [...this.pending.values()].filter((p) => p.room === roomId).sort((a, b) => a.created - b.created);
  }

  // ------------------------------------------------------------------ typing, reading, recall

  sendTyping(roomId) {
    const now = Date.now();
    if (now - (this.typingSent.get(roomId) || 0) < TYPING_EVERY) return;
    this.typingSent.set(roomId, now);
    this.socket.fire({ op: "typing", room: roomId });
  }

  onTyping({ room, user }) {
    if (!user || user.id === this.me.id) return;
    let who = this.typing.get(room);
    if (!who) this.typing.set(room, (who = new Map()));
    const entry = who.get(user.id);
    if (entry) clearTimeout(entry.timer);
    who.set(user.id, { user, timer: setTimeout(() => this.stopTyping(room, user.id), TYPING_SHOWN) });
    this.emit("typing", { room });
  }

  stopTyping(room, userId) {
    const who = this.typing.get(room);
    const entry = who && who.get(userId);
    if (!entry) return;
    clearTimeout(entry.timer);
    who.delete(userId);
    this.emit("typing", { room });
  }

  typingIn(roomId) {
    return [...(this.typing.get(roomId) || new Map()).values()].map((t) => t.user);
  }

  /** Tell the server everything up to the newest message of `roomId` is read. */
  markRead(roomId) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    const newest = Math.max(0, ...room.msgs.keys());
    if (room.unread || room.mentions) {
      room.unread = 0;
      room.mentions = 0;
      this.emit("rooms");
    }
    if (newest <= room.read_seq || !this.socket.isOpen) return;
    room.read_seq = newest;
    this.socket.request({ op: "read", room: roomId, seq: newest }).catch(() => {});
  }

  async recall(roomId, seq) {
    await this.socket.request({ op: "recall", room: roomId, seq });
  }

  async edit(roomId, seq, text) {
    await this.socket.request({ op: "edit", room: roomId, seq, text });
  }

  /** Toggle our reaction: on when we have not reacted with it yet. */
  async react(roomId, seq, emoji) {
    const room = this.rooms.get(roomId);
    const msg = room && room.msgs.get(seq);
    const mine = Boolean(msg && (msg.reactions || []).some((r) => r.emoji === emoji && r.me));
    await this.socket.request({ op: "react", room: roomId, seq, emoji, on: !mine });
  }

  async edits(roomId, seq) {
    return (await this.api.get(`/api/rooms/${enc(roomId)}/messages/${seq}/edits`)).items;
  }

  /** The direct room with another user (opened if new); resolves to its id. */
  async openDirect(userId) {
    const data = await this.api.post("/api/dms", { user_id: userId });
    if (!this.rooms.has(data.id)) {
      this.ensureRoom(data.id, {
        name: data.name, topic: data.topic, join_policy: data.join_policy, owner: data.owner, kind: "direct",
        last_seq: data.last_seq, read_seq: data.last_seq, counted: data.last_seq, activity: Date.now(),
      });
      if (!(data.id in this.lastSeq)) this.lastSeq[data.id] = data.last_seq;
      this.scheduleSave();
      this.emit("rooms");
    }
    return data.id;
  }

  // ------------------------------------------------------------------ invitations

  async loadInvitations() {
    try {
      const data = await this.api.get("/api/me/invitations?status=pending");
      this.invitations = new Map(data.items.map((inv) => [inv.id, inv]));
      this.emit("invitations");
    } catch (err) {
      // The alumni API may be absent on this server: no invitations then.
    }
  }

  invitationDecided(id) {
    if (this.invitations.delete(id)) this.emit("invitations");
  }

  // ------------------------------------------------------------------ resume map

  scheduleSave() {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => this.saveResume(), SAVE_DELAY);
  }

  saveResume() {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    try {
      sessionStorage.setItem(this.resumeKey, JSON.stringify(this.lastSeq));
    } catch (err) {
      // storage full or disabled: a reload then starts from the newest page
    }
  }
}

/** Apply one update entry to the message it targets, once: only an entry past the seq the
 * message's state reflects changes it (entries come in seq order). False when it was in already. */
export function applyUpdate(msg, entry, meId) {
  if (entry.seq <= (msg.asOf || msg.seq)) return false;
  msg.asOf = entry.seq;
  const u = entry.update;
  if (u.type === "edited") {
    if (!msg.recalled) msg.text = u.text;
    msg.edited_ts = u.edited_ts;
  } else if (u.type === "recalled") {
    msg.recalled = true;
    msg.text = null;
    msg.reactions = [];
  } else if (u.type === "pinned" || u.type === "unpinned") {
    msg.pinned = u.type === "pinned";
  } else if (u.type === "reaction") {
    const reactions = msg.reactions || (msg.reactions = []);
    let r = reactions.find((x) => x.emoji === u.emoji);
    if (!r && u.on) reactions.push((r = { emoji: u.emoji, count: 0, me: false }));
    if (!r) return true;
    r.count += u.on ? 1 : -1;
    if (entry.from && entry.from.id === meId) r.me = u.on;
    if (r.count <= 0) reactions.splice(reactions.indexOf(r), 1);
  }
  return true;
}

function loadJson(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) || "null");
  } catch (err) {
    return null;
  }
}

function newCid() {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
