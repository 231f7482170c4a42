// My pending alumni invitations, with accept and decline; new ones appear live (`notify`).

import { clear, displayName, h, shortTime } from "../dom.js";
import { enc } from "../api.js";
import { errorWords } from "../words.js";

export function mountInvitations(main, { api, chat, toast, navigate }) {
  const list = h("div", { class: "invitation-list", id: "invitations" });
  const status = h("p", { class: "muted" }, "Loading…");
  main.append(h("section", { class: "page" }, h("h1", {}, "Invitations"), status, list));

  const render = () => {
    const items = [...chat.invitations.values()].sort((a, b) => (b.created || 0) - (a.created || 0));
    status.textContent = items.length ? "" : "No invitations waiting for you.";
    status.hidden = items.length > 0;
    clear(list);
    for (const inv of items) list.append(card(inv));
  };

  const card = (inv) => {
    const record = inv.record && typeof inv.record === "object" ? inv.record : { id: inv.record, name: "an alumni record" };
    const error = h("p", { class: "form-error", role: "alert", hidden: true });
    const decide = async (how, buttons) => {
      buttons.forEach((b) => { b.disabled = true; });
      error.hidden = true;
      try {
        const result = await api.post(`/api/invitations/${enc(inv.id)}/${how}`);
        chat.invitationDecided(inv.id);
        if (how === "accept") {
          toast(`You joined ${result.name || record.name}.`, { kind: "info" });
          navigate(`#/alumni/${enc(result.id || record.id)}`);
        } else {
          toast("Invitation declined.", { kind: "info" });
        }
      } catch (err) {
        buttons.forEach((b) => { b.disabled = false; });
        if (err.status === 409 || err.status === 410) chat.invitationDecided(inv.id);
        error.textContent = err.status === 410 ? "This invitation has expired."
          : err.status === 409 ? "This invitation was already answered." : errorWords(err);
        error.hidden = false;
        if (err.status === 409 || err.status === 410) setTimeout(render, 3000);
      }
    };
    const accept = h("button", { type: "button", class: "primary", onclick: () => decide("accept", [accept, decline]) }, "Accept");
    const decline = h("button", { type: "button", onclick: () => decide("decline", [accept, decline]) }, "Decline");
    return h("article", { class: "card invitation", dataset: { invitation: inv.id } },
      h("h2", {}, record.name || "Alumni record"),
      h("p", { class: "muted" }, [record.school, record.year, record.class_name].filter(Boolean).join(" · ")),
      h("p", {}, `${displayName(inv.inviter)} invited you`, inv.created ? ` · ${shortTime(inv.created)}` : ""),
      inv.note ? h("blockquote", { class: "note" }, inv.note) : null,
      error,
      h("div", { class: "actions" }, accept, decline));
  };

  chat.addEventListener("invitations", render);
  chat.loadInvitations().then(render, () => {
    status.textContent = "Could not load invitations.";
  });
  render();
  return () => chat.removeEventListener("invitations", render);
}
