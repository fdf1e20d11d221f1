// Dockyard portal: small conveniences on top of pages that work without JavaScript.
// - [data-confirm-dialog] links open a dialog asking to type DELETE (the link's page is the
//   no-JavaScript fallback and the form posts to the same URL).
// - [data-copy=ID] buttons copy the text of element ID.
// - [data-dialog-open=ID] buttons open dialog ID; [data-dialog-close] buttons close theirs.
// - form[data-confirm] asks before it posts (a destructive action that is not a typed DELETE).
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function openConfirm(link) {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return false;
  const title = link.getAttribute("aria-label") || link.textContent.trim() || "Delete";
  dialog.querySelector("#confirm-title").textContent = title + "?";
  const input = el("input", {id: "confirm-input", name: "confirm", autocomplete: "off", required: "", pattern: "DELETE"});
  const cancel = el("button", {type: "button", class: "button secondary"}, "Cancel");
  cancel.addEventListener("click", () => dialog.close());
  const form = el("form", {method: "post", action: link.getAttribute("href"), class: "confirm-form"},
    el("input", {type: "hidden", name: "csrf_token", value: csrfToken()}),
    el("div", {class: "field"}, el("label", {for: "confirm-input"}, "Type DELETE to confirm"), input),
    el("div", {class: "actions"}, el("button", {type: "submit", class: "button danger"}, "Delete"), cancel));
  const body = dialog.querySelector("#confirm-body");
  body.replaceChildren(form);
  dialog.showModal();
  input.focus();
  return true;
}

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  const confirmLink = target.closest("[data-confirm-dialog]");
  if (confirmLink && openConfirm(confirmLink)) { event.preventDefault(); return; }
  const copy = target.closest("[data-copy]");
  if (copy) {
    const source = document.getElementById(copy.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(() => {
        copy.textContent = "Copied";
        setTimeout(() => { copy.textContent = "Copy"; }, 1500);
      }, () => {});
    }
    return;
  }
  const opener = target.closest("[data-dialog-open]");
  if (opener) {
    const dialog = document.getElementById(opener.getAttribute("data-dialog-open"));
    if (dialog && typeof dialog.showModal === "function") dialog.showModal();
    return;
  }
  const closer = target.closest("[data-dialog-close]");
  if (closer) {
    const dialog = closer.closest("dialog");
    if (dialog) dialog.close();
    const summary = document.getElementById(closer.getAttribute("data-summary") || "");
    if (summary && dialog) {
      const chosen = [...dialog.querySelectorAll("input[type=checkbox]:checked")].map((box) => box.value);
      summary.textContent = chosen.length ? "Members: " + chosen.join(", ") : "No members chosen";
    }
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target instanceof HTMLFormElement ? event.target : null;
  const question = form && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

// Logs: follow a component live (the page's data-follow-url answers JSON lines).
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-follow-url]");
  const toggle = document.getElementById("follow");
  if (!box || !toggle) return;
  let timer = null;
  const poll = () => {
    fetch(box.getAttribute("data-follow-url"), {credentials: "same-origin"})
      .then((r) => r.ok ? r.json() : {lines: []})
      .then((data) => {
        box.replaceChildren(...data.lines.map((line) => el("div", {class: "logline"}, line)));
        box.scrollTop = box.scrollHeight;
      }).catch(() => {});
  };
  const update = () => {
    if (timer) { clearInterval(timer); timer = null; }
    if (toggle.checked) { poll(); timer = setInterval(poll, 2000); }
  };
  toggle.addEventListener("change", update);
  update();
});
