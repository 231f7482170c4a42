// One WebSocket session on the `chat.v1.json` sub-protocol (docs/protocol.md §3) that
// survives network loss: it says `hello` with `resume` (the last seq seen per
// room, asked of its owner at every connect), matches replies to requests by
// `ref`, and reconnects by itself with full-jitter exponential backoff.
//
// Events (EventTarget): "state" (detail: {state, retryAt}), "welcome"
// (detail: the welcome frame), "frame" (detail: any other server frame that
// is not a reply), "unauthorized" (closed with 4001: the token was refused or
// revoked, or the hello came too late; the owner ends the session or calls
// `resumeAfterRefusal()`).

export const SUBPROTOCOL = "chat.v1.json";
const BACKOFF_BASE = 500; // ms; doubles per failed attempt ...
const BACKOFF_CAP = 15000; // ... up to this; the delay is drawn uniformly below it
const HELLO_TIMEOUT = 15000; // ms to get `welcome` after the socket opens
const REQUEST_TIMEOUT = 15000;
// Our own pings, sent when the line is quiet, notice a peer that vanished
// without closing (a laptop lid, a dead Wi-Fi): browsers answer the server's
// pings but never tell the page that none arrive.
const QUIET_BEFORE_PING = 20000;
const PONG_TIMEOUT = 10000;
const UNAUTHORIZED_CLOSE = 4001;

export class SocketError extends Error {
  constructor(code, message, retryAfter) {
    super(message || code);
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export class ChatSocket extends EventTarget {
  /** `resume()` returns {room: last seq seen}; it is asked at each connect. */
  constructor({ url, token, resume }) {
    super();
    this.url = url;
    this.token = token;
    this.resume = resume;
    this.state = "idle"; // idle → connecting → open → offline → connecting … ; closed at the end
    this.ws = null;
    this.welcome = null;
    this.attempt = 0;
    this.retryAt = null;
    this.nextRef = 1;
    this.pending = new Map(); // ref → {resolve, reject, timer}
    this.timers = {};
    this.lastHeard = 0;
    this.stopped = false;
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => this.drop("the browser went offline");
    this.onVisible = () => {
      if (document.visibilityState === "visible" && this.state === "offline") this.reconnectNow();
    };
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.timers.heartbeat = setInterval(() => this.heartbeat(), 5000);
    this.connect();
  }

  /** Close for good (sign out). */
  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearInterval(this.timers.heartbeat);
    clearTimeout(this.timers.retry);
    clearTimeout(this.timers.hello);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "signed out");
    this.failPending(new SocketError("unavailable", "signed out"));
    this.setState("closed");
  }

  get isOpen() {
    return this.state === "open";
  }

  connect() {
    clearTimeout(this.timers.retry);
    if (this.stopped) return;
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, [SUBPROTOCOL]);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const hello = { op: "hello", token: this.token, ref: 0 };
      const resume = this.resume();
      if (resume && Object.keys(resume).length) hello.resume = resume;
      ws.send(JSON.stringify(hello));
      this.lastHeard = Date.now();
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (err) {
        return; // not for us: a newer server's frame, ignored
      }
      this.lastHeard = Date.now();
      this.onFrame(frame);
    };
    ws.onclose = (event) => this.onClose(ws, event.code, event.reason);
    this.timers.hello = setTimeout(() => {
      if (ws === this.ws && this.state !== "open") this.drop("no welcome from the server");
    }, HELLO_TIMEOUT);
  }

  onFrame(frame) {
    if (frame.op === "welcome") {
      clearTimeout(this.timers.hello);
      this.welcome = frame;
      this.attempt = 0;
      this.retryAt = null;
      this.setState("open");
      this.dispatchEvent(new CustomEvent("welcome", { detail: frame }));
      return;
    }
    if (frame.ref !== undefined && frame.ref !== null && this.pending.has(frame.ref)) {
      const { resolve, reject, timer } = this.pending.get(frame.ref);
      this.pending.delete(frame.ref);
      clearTimeout(timer);
      if (frame.op === "error") reject(new SocketError(frame.code, frame.message, frame.retry_after));
      else resolve(frame);
      return;
    }
    if (frame.op === "error" && frame.code === "unauthorized") return; // the close (4001) follows
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
  }

  onClose(ws, code, reason) {
    if (ws !== this.ws) return; // a socket we already gave up on
    clearTimeout(this.timers.hello);
    this.ws = null;
    this.failPending(new SocketError("unavailable", "the connection was lost"));
    if (this.stopped) return;
    if (code === UNAUTHORIZED_CLOSE) {
      this.stopped = true;
      this.setState("closed");
      this.dispatchEvent(new CustomEvent("unauthorized", { detail: { reason } }));
      return;
    }
    this.scheduleReconnect();
  }

  /** The owner checked the token after an "unauthorized" and found it good: connect again.
   *  (A 4001 also follows a hello the server did not get in time, e.g. from a page that was
   *  frozen in the back/forward cache right after its socket opened.) */
  resumeAfterRefusal() {
    if (!this.stopped || this.state !== "closed") return;
    this.stopped = false;
    this.scheduleReconnect();
  }

  /** Give up on the current socket (it may be silently dead) and reconnect. */
  drop(why) {
    const ws = this.ws;
    if (!ws) {
      if (this.state === "connecting") this.scheduleReconnect();
      return;
    }
    this.ws = null;
    clearTimeout(this.timers.hello);
    try {
      ws.close(4000, why.slice(0, 100));
    } catch (err) {
      // already closing
    }
    this.failPending(new SocketError("unavailable", why));
    if (!this.stopped) this.scheduleReconnect();
  }

  /** Reconnect at once, without the offline banner: used to pick up rooms the server did not subscribe. */
  refresh() {
    if (this.state !== "open" || !this.ws) return;
    const ws = this.ws;
    this.ws = null;
    ws.close(1000, "refresh");
    this.failPending(new SocketError("unavailable", "reconnecting"));
    this.connect();
  }

  scheduleReconnect() {
    clearTimeout(this.timers.retry);
    if (this.stopped) return;
    if (navigator.onLine === false) {
      // Nothing to try until the browser is back online ("online" calls reconnectNow).
      this.retryAt = null;
      this.setState("offline");
      return;
    }
    const ceiling = Math.min(BACKOFF_CAP, BACKOFF_BASE * 2 ** Math.min(this.attempt, 16));
    const delay = Math.random() * ceiling;
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState("offline");
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.state === "open" || this.state === "connecting") return;
    this.connect();
  }

  heartbeat() {
    if (this.state !== "open" || Date.now() - this.lastHeard < QUIET_BEFORE_PING) return;
    this.request({ op: "ping" }, PONG_TIMEOUT).catch(() => this.drop("no answer to ping"));
  }

  /** Send a frame that expects a reply; resolves with it, rejects with a SocketError. */
  request(frame, timeout = REQUEST_TIMEOUT) {
    if (this.state !== "open" || !this.ws) {
      return Promise.reject(new SocketError("unavailable", "not connected"));
    }
    const ref = this.nextRef++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new SocketError("unavailable", "the server did not answer in time"));
      }, timeout);
      this.pending.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...frame, ref }));
    });
  }

  /** Send a frame that gets no reply (`typing`); dropped when not connected. */
  fire(frame) {
    if (this.state === "open" && this.ws) this.ws.send(JSON.stringify(frame));
  }

  failPending(error) {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this.pending.clear();
  }

  setState(state) {
    if (state === this.state && state !== "offline") return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, retryAt: this.retryAt } }));
  }
}

export function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws`;
}
