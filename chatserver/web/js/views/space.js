// A personal space (docs/protocol.md §12.8): a user's posts and
// records; in my own, writing, editing and deleting posts and publishing them
// to my records. `#/space/<user>/<post>` opens a space at one post.

import { enc, withQuery } from "../api.js";
import { attempt, clear, displayName, field, fullTime, h, idBadge, shortTime, showError } from "../dom.js";
import { errorWords } from "../words.js";
import { filesView } from "../files.js";

export function mountSpace(main, ctx, params) {
  const { api, chat } = ctx;
  const userId = params.user || chat.me.id;
  const page = h("section", { class: "page space", dataset: { user: userId } }, h("p", { class: "muted" }, "Loading…"));
  main.append(page);
  let alive = true;

  const load = async () => {
    let space;
    try {
      space = await api.get(withQuery(`/api/users/${enc(userId)}/space`, { limit: 20 }));
    } catch (err) {
      if (alive) clear(page).append(h("h1", {}, "Space"),
        h("p", { class: "form-error" }, err.code === "not_found" ? "There is no such user." : errorWords(err)));
      return;
    }
    if (!alive) return;
    const mine = space.user.id === chat.me.id;
    const records = new Map(space.alumni.map((r) => [r.id, r]));
    const ctxPosts = { ...ctx, records, mine };
    const list = h("ul", { class: "post-list", id: "posts" });
    const more = h("button", { type: "button", class: "small ghost", hidden: !space.next }, "Older posts");
    let next = space.next;
    const addPosts = (posts) => posts.forEach((p) => list.append(postItem(p, ctxPosts, { onChange: load })));
    addPosts(space.posts);
    more.addEventListener("click", async () => {
      try {
        const older = await api.get(withQuery(`/api/users/${enc(userId)}/space`, { before: next, limit: 20 }));
        addPosts(older.posts);
        next = older.next;
        more.hidden = !next;
      } catch (err) {
        ctx.toast(errorWords(err), { kind: "error" });
      }
    });
    clear(page).append(
      h("header", { class: "card" },
        h("h1", {}, mine ? "My space" : `${displayName(space.user)}'s space`),
        h("p", { class: "muted" }, `@${space.user.name} · `, idBadge(space.user.id)),
        space.alumni.length ? h("p", {}, "Alumni records: ", space.alumni.map((r, i) => [i ? ", " : "",
          h("a", { href: `#/alumni/${enc(r.id)}` }, r.name)])) : null),
      mine ? h("div", { class: "card" }, postEditor(ctxPosts, {
        title: "Write a post",
        submitLabel: "Publish",
        records: space.alumni,
        save: (body) => api.post("/api/posts", body),
        onSaved: load,
      })) : null,
      h("div", { class: "card" }, h("h2", {}, "Posts"),
        space.posts.length ? null : h("p", { class: "muted" }, "No posts yet."), list, more));
    if (params.post) focusPost(list, params.post, ctxPosts);
  };
  load();
  return () => { alive = false; };
}

/** Scroll to the linked post; fetch it on its own when it is not on the first page. */
async function focusPost(list, postId, ctx) {
  let item = list.querySelector(`[data-post="${CSS.escape(postId)}"]`);
  if (!item) {
    try {
      const post = await ctx.api.get(`/api/posts/${enc(postId)}`);
      item = postItem(post, ctx, {});
      list.prepend(item);
    } catch (err) {
      list.prepend(h("li", { class: "form-error" }, err.code === "not_found"
        ? "That post was deleted." : `That post cannot be shown: ${errorWords(err)}`));
      return;
    }
  }
  item.classList.add("focused");
  item.scrollIntoView({ block: "start" });
}

/** One post: title, dates, records, the body as text; edit and delete for its author. */
export function postItem(post, ctx, { onChange }) {
  const { chat, records = new Map() } = ctx;
  const mine = post.author && post.author.id === chat.me.id;
  const item = h("li", { class: "post", dataset: { post: post.id }, id: `post-${post.id}` });
  const view = () => {
    const edited = post.updated && post.updated !== post.created;
    const inRecords = (post.alumni_ids || []).map((id, i) => [i ? ", " : "",
      h("a", { href: `#/alumni/${enc(id)}` }, (records.get(id) && records.get(id).name) || "a record")]);
    clear(item).append(
      h("h3", { class: "post-title" }, h("a", { href: `#/space/${enc(post.author.id)}/${enc(post.id)}` }, post.title || "(untitled)")),
      h("p", { class: "muted small" }, `${displayName(post.author)} · `,
        h("time", { datetime: new Date(post.created).toISOString(), title: fullTime(post.created) }, shortTime(post.created)),
        edited ? ` · edited ${shortTime(post.updated)}` : "",
        inRecords.length ? [" · in ", inRecords] : null),
      h("div", { class: "post-body prewrap" }, post.body || ""),
      filesView(ctx.api, post.files),
      postSocial(post, ctx),
      mine && onChange ? h("div", { class: "actions" },
        h("button", { type: "button", class: "small ghost", onclick: edit }, "Edit"),
        deleteButton()) : null);
  };
  const deleteButton = () => {
    const button = h("button", { type: "button", class: "small ghost danger-text", onclick: async () => {
      if (!button.dataset.armed) {
        button.dataset.armed = "1";
        button.textContent = "Delete for good?";
        setTimeout(() => { delete button.dataset.armed; button.textContent = "Delete"; }, 4000);
        return;
      }
      try {
        await ctx.api.del(`/api/posts/${enc(post.id)}`);
        item.remove();
        if (onChange) onChange();
      } catch (err) {
        ctx.toast(errorWords(err), { kind: "error" });
      }
    } }, "Delete");
    return button;
  };
  const edit = () => {
    clear(item).append(postEditor(ctx, {
      title: "Edit the post",
      submitLabel: "Save",
      post,
      records: [...records.values()],
      save: (body) => ctx.api.patch(`/api/posts/${enc(post.id)}`, body),
      onSaved: (updated) => {
        Object.assign(post, updated);
        view();
      },
      onCancel: view,
    }));
  };
  view();
  return item;
}

/** Likes and comments under a post (docs/protocol.md §12.12): the like toggles; the comments open
 * on a click, newest page first, with older ones on demand and a form to add one. */
function postSocial(post, ctx) {
  const { api, chat } = ctx;
  const likes = h("span", { class: "like-count" }, String(post.likes || 0));
  const like = h("button", {
    type: "button", class: `small ghost like${post.liked ? " liked" : ""}`, "aria-pressed": String(Boolean(post.liked)),
    onclick: async () => {
      try {
        if (post.liked) {
          await api.del(`/api/posts/${enc(post.id)}/likes/me`);
          post.liked = false;
          post.likes = Math.max(0, (post.likes || 1) - 1);
        } else {
          const reply = await api.put(`/api/posts/${enc(post.id)}/likes/me`);
          post.liked = true;
          post.likes = reply.count;
        }
        like.classList.toggle("liked", post.liked);
        like.setAttribute("aria-pressed", String(post.liked));
        likes.textContent = String(post.likes);
      } catch (err) {
        ctx.toast(errorWords(err), { kind: "error" });
      }
    },
  }, "♥ ", likes);
  const count = h("span", { class: "comment-count" }, String(post.comments || 0));
  const box = h("div", { class: "comments", hidden: true });
  const list = h("ol", { class: "comment-list" });
  const older = h("button", { type: "button", class: "small ghost", hidden: true }, "Older comments");
  let next = null;
  const row = (c) => h("li", { class: "comment", dataset: { comment: c.id } },
    h("strong", {}, c.author.id === chat.me.id ? "You" : displayName(c.author)), " ",
    h("span", { class: "comment-text" }, c.text), " ",
    h("time", { class: "muted small", title: fullTime(c.created) }, shortTime(c.created)));
  const page = async (before) => {
    const data = await api.get(withQuery(`/api/posts/${enc(post.id)}/comments`, { before, limit: 20 }));
    list.prepend(...data.items.map(row));
    next = data.next;
    older.hidden = !next;
  };
  older.addEventListener("click", () => page(next).catch((err) => ctx.toast(errorWords(err), { kind: "error" })));
  const text = h("input", { name: "comment", maxlength: 2000, required: true, placeholder: "Write a comment…" });
  const form = h("form", { class: "comment-form", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const comment = await api.post(`/api/posts/${enc(post.id)}/comments`, { text: text.value });
      list.append(row(comment));
      text.value = "";
      post.comments = (post.comments || 0) + 1;
      count.textContent = String(post.comments);
    } catch (err) {
      ctx.toast(errorWords(err), { kind: "error" });
    }
  } }, text, h("button", { type: "submit", class: "small primary" }, "Comment"));
  box.append(older, list, form);
  const toggle = h("button", { type: "button", class: "small ghost show-comments", onclick: async () => {
    box.hidden = !box.hidden;
    if (!box.hidden && !box.dataset.loaded) {
      box.dataset.loaded = "1";
      await page(null).catch((err) => ctx.toast(errorWords(err), { kind: "error" }));
    }
  } }, "Comments (", count, ")");
  return h("div", { class: "post-social-wrap" }, h("div", { class: "post-social" }, like, toggle), box);
}

/** The write/edit form: title, body, and (with `records`) the records to publish to. */
export function postEditor(ctx, { title, submitLabel, post = null, records = null, save, onSaved, onCancel }) {
  const titleInput = h("input", { name: "title", maxlength: 200, required: true, value: post ? post.title : "" });
  const body = h("textarea", { name: "body", rows: 6, maxlength: 100000, value: post ? post.body : "" });
  const chosen = new Set(post ? post.alumni_ids || [] : []);
  const boxes = (records || []).map((r) => h("label", { class: "check" },
    h("input", { type: "checkbox", name: "alumni_ids", value: r.id, checked: chosen.has(r.id) }), ` ${r.name}`));
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  // Pictures and files the post carries (docs/protocol.md §12.10), uploaded as soon as they are chosen.
  let files = post ? [...(post.files || [])] : [];
  let uploading = 0;
  const fileList = h("ul", { class: "attachments" });
  const renderFiles = () => {
    clear(fileList).append(files.map((f) => h("li", { class: "attachment ready" }, h("span", { class: "file-name" }, f.name),
      h("button", { type: "button", class: "small ghost", "aria-label": `Remove ${f.name}`,
        onclick: () => { files = files.filter((x) => x !== f); renderFiles(); } }, "×"))),
    uploading ? h("li", { class: "attachment uploading" }, "uploading…") : null);
  };
  const fileInput = h("input", { type: "file", multiple: true, hidden: true, name: "post-files", onchange: async () => {
    const chosen = [...fileInput.files];
    fileInput.value = "";
    uploading += chosen.length;
    renderFiles();
    for (const file of chosen) {
      try {
        files.push(await ctx.api.upload(file));
      } catch (err) {
        showError(error, `${file.name}: ${errorWords(err)}`);
      }
      uploading -= 1;
      renderFiles();
    }
  } });
  renderFiles();
  const form = h("form", { class: "post-form", onsubmit: async (event) => {
    event.preventDefault();
    if (!titleInput.value.trim()) {
      showError(error, "A post needs a title.");
      return;
    }
    if (uploading) {
      showError(error, "Wait until the files are uploaded.");
      return;
    }
    const data = { title: titleInput.value.trim(), body: body.value, files: files.map((f) => f.id) };
    if (records) data.alumni_ids = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    const saved = await attempt(form, error, () => save(data));
    if (!saved) return;
    ctx.toast(post ? "Post saved." : "Post published.", { kind: "info" });
    if (!post) {
      titleInput.value = "";
      body.value = "";
      files = [];
      renderFiles();
    }
    onSaved(saved);
  } },
  h("h2", {}, title),
  field("Title", titleInput), field("Text", body),
  fileInput, fileList,
  h("button", { type: "button", class: "small ghost", onclick: () => fileInput.click() }, "Add pictures or files"),
  boxes.length ? h("fieldset", { class: "records" }, h("legend", {}, "Publish to my alumni records"), boxes) : null,
  error,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, submitLabel),
    onCancel ? h("button", { type: "button", onclick: onCancel }, "Cancel") : null));
  return form;
}
