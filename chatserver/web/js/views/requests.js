// Requests to join an alumni record (docs/protocol.md §12.13): the owner's list to
// approve or decline, and the button for someone outside the record.

import { enc, withQuery } from "../api.js";
import { attempt, clear, displayName, field, h } from "../dom.js";
import { errorWords } from "../words.js";

/** The record page's join requests (owner): approve or decline each. */
export function requestsCard(record, { api, toast }, reload) {
  const list = h("ul", { class: "request-list", id: "record-requests" }, h("li", { class: "muted" }, "Loading…"));
  const render = async () => {
    let items;
    try {
      items = (await api.get(withQuery(`/api/alumni/${enc(record.id)}/requests`, { status: "pending" }))).items;
    } catch (err) {
      clear(list).append(h("li", { class: "form-error" }, errorWords(err)));
      return;
    }
    clear(list);
    if (!items.length) list.append(h("li", { class: "muted" }, "No one is waiting."));
    for (const request of items) {
      const decide = (verb) => async () => {
        try {
          await api.post(`/api/record-requests/${enc(request.id)}/${verb}`, {});
          toast(verb === "approve" ? `${displayName(request.user)} joined the record.` : "Request declined.", { kind: "info" });
          if (verb === "approve") reload();
          else render();
        } catch (err) {
          toast(errorWords(err), { kind: "error" });
          render();
        }
      };
      list.append(h("li", { dataset: { user: request.user.id } },
        h("a", { href: `#/user/${enc(request.user.id)}` }, displayName(request.user)),
        request.note ? h("span", { class: "muted" }, ` “${request.note}” `) : " ",
        h("button", { type: "button", class: "small primary", onclick: decide("approve") }, "Approve"),
        h("button", { type: "button", class: "small ghost", onclick: decide("decline") }, "Decline")));
    }
  };
  render();
  return h("div", { class: "card" }, h("h2", {}, "Requests to join"), list);
}

/** For someone outside the record: ask to join it. */
export function requestButton(record, { api, toast }) {
  const note = h("input", { name: "note", maxlength: 1000, placeholder: "A note for the owner (optional)" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "inline-form", id: "request-join", onsubmit: async (event) => {
    event.preventDefault();
    const done = await attempt(form, error, () => api.post(`/api/alumni/${enc(record.id)}/requests`,
      note.value.trim() ? { note: note.value.trim() } : {}),
    (err) => (err.code === "conflict" ? "You already asked; the owner decides." : errorWords(err)));
    if (done) {
      clear(form).append(h("p", { class: "muted", role: "status" }, "Asked to join: the owner decides."));
      toast("Asked to join.", { kind: "info" });
    }
  } }, field("Note", note), h("button", { type: "submit", class: "primary" }, "Request to join"), error);
  return h("div", { class: "card" }, h("p", { class: "muted" }, "You are not a member of this record."), form);
}
