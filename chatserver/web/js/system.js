// System messages (docs/protocol.md §6.2) in words, with a link to what they are about.
// The server's own `text` is the fallback for anything not recognised here.

import { displayName } from "./dom.js";

const POLICY_WORDS = { open: "open to anyone", invite: "invite-only" };

/** {text, detail?, links: [{href, label}]} for a system message. */
export function describeSystem(msg) {
  const type = (msg.system && msg.system.type) || "";
  const data = (msg.system && msg.system.data) || {};
  const fallback = msg.text || type.replace(".", " ");
  const links = [];
  let text = fallback;
  let detail = null;
  switch (type) {
    case "member.joined":
      if (data.user) text = data.by ? `${displayName(data.by)} added ${displayName(data.user)}` : `${displayName(data.user)} joined`;
      break;
    case "member.left":
      if (data.user) text = `${displayName(data.user)} left`;
      break;
    case "member.kicked":
      if (data.user) text = `${displayName(data.user)} was removed${data.by ? ` by ${displayName(data.by)}` : ""}`;
      break;
    case "room.updated":
      text = roomUpdated(data) || fallback;
      break;
    case "post.published":
    case "post.updated":
    case "post.deleted": {
      const post = data.post || {};
      const author = post.author || data.author || data.actor;
      const verb = { "post.published": "published", "post.updated": "updated", "post.deleted": "deleted" }[type];
      if (post.title) text = `${displayName(author)} ${verb} the post “${post.title}”`;
      if (type !== "post.deleted") {
        detail = post.excerpt || null;
        const href = postHref(post, author);
        if (href) links.push({ href, label: "Read the post" });
      }
      break;
    }
    default:
      if (type.startsWith("alumni.")) {
        const record = recordId(data);
        if (record) links.push({ href: `#/alumni/${encodeURIComponent(record)}`, label: "Open the alumni record" });
        if (type === "alumni.invitation") links.push({ href: "#/invitations", label: "My invitations" });
        if (data.note) detail = data.note;
      }
  }
  return { text, detail, links };
}

function roomUpdated(data) {
  const by = displayName(data.by);
  const changes = data.changes || {};
  const parts = [];
  if ("name" in changes) parts.push(`renamed the group to “${changes.name}”`);
  if ("topic" in changes) parts.push(changes.topic ? `set the topic to “${changes.topic}”` : "cleared the topic");
  if ("join_policy" in changes) parts.push(`made the group ${POLICY_WORDS[changes.join_policy] || changes.join_policy}`);
  if (changes.role && changes.role.user) return `${displayName(changes.role.user)} is now ${changes.role.role}`;
  return parts.length ? `${by} ${parts.join(", ")}` : null;
}

/** The id of the alumni record a system message or feed entry is about, if it says. */
export function recordId(data) {
  if (!data) return null;
  if (data.record && typeof data.record === "object") return data.record.id || null;
  return data.record_id || data.alumni_id || (typeof data.record === "string" ? data.record : null)
    || (data.alumni && data.alumni.id) || null;
}

/** Where a post is read: its author's space, scrolled to it. */
export function postHref(post, author) {
  if (!post || !post.id) return null;
  const who = (post.author && post.author.id) || (author && author.id) || post.author_id;
  return who ? `#/space/${encodeURIComponent(who)}/${encodeURIComponent(post.id)}` : null;
}
