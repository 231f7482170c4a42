// Entry point: signed out → the sign-in page; signed in → the chat shell.
// The token is kept in localStorage (it stays across reloads and tabs); the
// last seq seen per group is kept in sessionStorage (per tab) so a reload
// resumes where the page was.

import { Api } from "./api.js";
import { Chat } from "./chat.js";
import { mountAuth } from "./views/auth.js";
import { Shell } from "./views/shell.js";

const TOKEN_KEY = "chat.token";
const USER_KEY = "chat.user";
const root = document.getElementById("app");
let session = null; // {api, chat, shell}

function start() {
  const token = localStorage.getItem(TOKEN_KEY);
  let user = null;
  try {
    user = JSON.parse(localStorage.getItem(USER_KEY) || "null");
  } catch (err) {
    user = null;
  }
  if (token && user && user.id) signedIn(token, user, true);
  else showAuth();
}

function showAuth(message) {
  mountAuth(root, {
    message,
    onSignedIn(token, user) {
      localStorage.setItem(TOKEN_KEY, token);
      localStorage.setItem(USER_KEY, JSON.stringify(user));
      if (!location.hash || location.hash === "#") location.hash = "#/";
      signedIn(token, user, false);
    },
  });
}

function signedIn(token, user, verify) {
  const api = new Api({ token, onUnauthorized: () => signOut(true) });
  const chat = new Chat({ api, me: user, token });
  chat.socket.addEventListener("unauthorized", () => {
    // Only a token the server refuses ends the session (a 401 here signs out through
    // onUnauthorized): a 4001 can also close a socket whose hello came too late.
    const carryOn = () => session && session.chat === chat && chat.socket.resumeAfterRefusal();
    api.get("/api/me").then(carryOn, carryOn);
  });
  const shell = new Shell(root, { api, chat, signOut: () => signOut(false) });
  session = { api, chat, shell };
  shell.start();
  chat.start();
  if (verify) {
    // The stored user may be stale (a new display name); a 401 signs out via onUnauthorized.
    api.get("/api/me").then((me) => {
      if (me && me.id === user.id) localStorage.setItem(USER_KEY, JSON.stringify(me));
    }).catch(() => {});
  }
}

function signOut(expired) {
  if (!session) return;
  const { api, chat, shell } = session;
  session = null;
  chat.stop({ forget: true });
  if (!expired) api.del("/api/tokens/current").catch(() => {});
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(USER_KEY);
  shell.stop();
  showAuth(expired ? "Your session has ended. Please sign in again." : "You are signed out.");
}

// Signed out in another tab: this one follows.
window.addEventListener("storage", (event) => {
  if (event.key === TOKEN_KEY && !event.newValue && session) signOut(true);
});

start();
