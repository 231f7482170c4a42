// Files in the page (docs/protocol.md §12.10): thumbnails and pictures in messages and posts,
// file cards, the full-size view, and avatars. Bytes are fetched with the token (it never goes
// in a URL) and shown through blob: URLs, each fetched once per page.

import { h } from "./dom.js";

const objectUrls = new Map(); // path → Promise<blob: URL>

/** A blob: URL for the bytes at `path`, fetched once. */
export function objectUrl(api, path) {
  if (!objectUrls.has(path)) {
    const url = api.blob(path).then((blob) => URL.createObjectURL(blob));
    url.catch(() => objectUrls.delete(path));
    objectUrls.set(path, url);
  }
  return objectUrls.get(path);
}

const filePath = (id) => `/api/files/${encodeURIComponent(id)}`;

/** An <img> that shows `path` once it is fetched (and says so in `data-state`). */
export function picture(api, path, props = {}) {
  const img = h("img", { ...props, dataset: { state: "loading" } });
  objectUrl(api, path).then((url) => {
    img.src = url;
    img.dataset.state = "loaded";
  }).catch(() => {
    img.dataset.state = "failed";
  });
  return img;
}

export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The files a message or post carries: image thumbnails that open full size, cards for the rest. */
export function filesView(api, files) {
  if (!files || !files.length) return null;
  return h("div", { class: "files" }, files.map((f) => (f.width
    ? h("button", {
      type: "button", class: "file-image", title: f.name, dataset: { file: f.id },
      onclick: (e) => { e.stopPropagation(); openImage(api, f); },
    }, picture(api, `${filePath(f.id)}/thumb`, { alt: f.name, class: "thumb" }))
    : h("button", {
      type: "button", class: "file-card", dataset: { file: f.id },
      onclick: (e) => { e.stopPropagation(); download(api, f); },
    }, h("span", { class: "file-name" }, f.name), h("span", { class: "file-size muted" }, fileSize(f.size))))));
}

/** The full-size picture over the page; Escape, the button or a click beside it closes it. */
export function openImage(api, file) {
  const close = () => {
    overlay.remove();
    document.removeEventListener("keydown", onKey);
  };
  const onKey = (e) => e.key === "Escape" && close();
  const overlay = h("div", { class: "lightbox", role: "dialog", "aria-label": file.name, onclick: (e) => e.target === overlay && close() },
    picture(api, filePath(file.id), { alt: file.name, class: "full-image" }),
    h("div", { class: "lightbox-bar" },
      h("span", {}, `${file.name} · ${file.width}×${file.height} · ${fileSize(file.size)}`),
      h("button", { type: "button", class: "small", onclick: () => download(api, file) }, "Download"),
      h("button", { type: "button", class: "small ghost close", onclick: close }, "Close")));
  document.addEventListener("keydown", onKey);
  document.body.append(overlay);
  return overlay;
}

async function download(api, file) {
  const url = await objectUrl(api, filePath(file.id));
  const a = h("a", { href: url, download: file.name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

/** A round picture for a user or group: its avatar, or its initials when it has none. */
export function avatar(api, id, initials, props = {}) {
  if (!id) return h("span", { class: "avatar", "aria-hidden": "true", ...props }, initials);
  return picture(api, `${filePath(id)}/thumb`, { class: "avatar", alt: "", ...props });
}

/** A button that picks an image, uploads it and hands the file object to `use` (avatars). */
export function pictureChooser(api, label, use, onError) {
  const input = h("input", { type: "file", accept: "image/*", hidden: true, name: "picture" });
  input.addEventListener("change", async () => {
    const [file] = input.files;
    input.value = "";
    if (!file) return;
    try {
      await use(await api.upload(file));
    } catch (err) {
      onError(err);
    }
  });
  return h("span", { class: "picture-chooser" }, input,
    h("button", { type: "button", class: "small ghost", onclick: () => input.click() }, label));
}
