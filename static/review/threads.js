// Comment threads and suggestion cards: built once per object, then updated
// in place (so a half-written reply keeps its text and focus when the thread
// changes underneath it).

import { avatar, h, reconcile, setText, timeEl } from "./dom.js";
import { wordDiff } from "./diff.js";

const QUOTE_MAX = 160;
// The document no longer holds an orphaned comment's text: show more of it.
const REMOVED_QUOTE_MAX = 400;

function clip(text, max = QUOTE_MAX) {
  const flat = (text || "").replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Whether an anchor's text was removed from the document by an edit. */
export function isOrphaned(anchor) {
  return Boolean(anchor) && anchor.state === "orphaned";
}

/**
 * The text to quote on a comment's card: the passage now, or for an orphaned
 * comment the text it was written on (an approximate match on an earlier edit
 * may have changed `quote`; `originalQuote` keeps what the author saw).
 */
export function quoteOf(anchor) {
  if (!anchor) return "";
  if (isOrphaned(anchor)) return anchor.originalQuote || anchor.quote || "";
  return anchor.quote || "";
}

function byline(name, iso, extra) {
  return h("header", { class: "card-head" },
    avatar(name),
    h("span", { class: "who" }, h("strong", { class: "author" }, name), extra || null),
    iso ? timeEl(iso) : null);
}

/**
 * Put a card's buttons in place.  A keyboard user's focus on one of the old
 * buttons goes to the button that took its place (Resolve and Reopen, Hide
 * and Unhide share `data-action`), else to the card itself.
 */
function setButtons(container, buttons, card) {
  const focused = container.contains(document.activeElement) ? document.activeElement.dataset.action || "" : null;
  container.replaceChildren(...buttons);
  container.hidden = buttons.length === 0;
  if (focused === null) return;
  const next = buttons.find((button) => button.dataset.action === focused);
  (next || card).focus({ preventScroll: true });
}

function badge(text, kind) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

/** A textarea form with a visible or hidden label; `onSubmit(text)` may return a promise. */
export function textForm({ label, placeholder, submitText, typingTarget, onSubmit, onCancel, labelHidden = true,
  rows = 2, className = "" }) {
  const id = `f-${Math.random().toString(36).slice(2, 10)}`;
  const area = h("textarea", { id, rows, placeholder, required: true, maxlength: 10000,
    "data-typing-target": typingTarget || null });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-sm" }, submitText);
  const cancel = onCancel ? h("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: onCancel },
    "Cancel") : null;
  const form = h("form", { class: `text-form ${className}`.trim() },
    h("label", { for: id, class: labelHidden ? "visually-hidden" : "field-label" }, label),
    area, error, h("div", { class: "form-actions" }, cancel, submit));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape" && onCancel) {
      event.preventDefault();
      onCancel();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = area.value;
    if (!text.trim()) {
      area.focus();
      return;
    }
    error.hidden = true;
    submit.disabled = true;
    try {
      await onSubmit(text);
      area.value = "";
    } catch (failure) {
      error.textContent = failure && failure.message ? failure.message : String(failure);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  form.area = area;
  return form;
}

function replyEl(reply, pending) {
  const li = h("li", { class: `reply${pending ? " is-pending" : ""}` },
    byline(reply.author.username, reply.createdAt,
      pending ? h("span", { class: "pending-label" }, pending) : null),
    h("p", { class: "card-body" }, reply.body));
  return li;
}

export class ThreadCard {
  constructor(comment, ctx) {
    this.id = comment.id;
    this.ctx = ctx;
    this.replyEls = new Map();
    this.quote = h("blockquote", { class: "card-quote" });
    this.body = h("p", { class: "card-body" });
    this.badges = h("span", { class: "badges" });
    this.replies = h("ol", { class: "replies", "aria-label": "Replies" });
    this.actions = h("div", { class: "card-actions" });
    this.replyForm = null;
    this.editForm = null;
    this.el = h("article", {
      class: "card thread",
      id: `comment-${comment.id}`,
      tabindex: "-1",
      dataset: { key: `c:${comment.id}` },
      "aria-label": `Comment by ${comment.author.username}`,
    }, byline(comment.author.username, comment.createdAt, this.badges), this.quote, this.body, this.replies,
    this.actions);
    this.update(comment, []);
  }

  update(comment, replies, pendingReplies = []) {
    const { store } = this.ctx;
    this.comment = comment;
    setText(this.body, comment.body);
    this._quote(comment.anchor);
    this.el.classList.toggle("is-resolved", comment.resolved);
    this.el.classList.toggle("is-hidden", comment.hidden);
    const badges = [];
    if (comment.resolved) badges.push(badge("Resolved", "resolved"));
    if (comment.hidden) badges.push(badge("Hidden", "hidden"));
    this.badges.replaceChildren(...badges);

    const items = replies.map((reply) => {
      let el = this.replyEls.get(reply.id);
      if (!el) {
        el = replyEl(reply);
        el.id = `comment-${reply.id}`;
        el.dataset.key = `c:${reply.id}`;
        el.tabIndex = -1;
        this.replyEls.set(reply.id, el);
        this.ctx.onCreated(el, reply);
      } else {
        setText(el.querySelector(".card-body"), reply.body);
      }
      return el;
    });
    const live = new Set(replies.map((r) => r.id));
    for (const id of [...this.replyEls.keys()]) if (!live.has(id)) this.replyEls.delete(id);
    for (const item of pendingReplies) items.push(this.ctx.pendingEl(item, () => replyEl(
      { author: { username: store.me.username }, createdAt: item.queuedAt, body: item.body.body }, "Waiting to send")));
    reconcile(this.replies, items);
    this.replies.hidden = items.length === 0;
    this._actions(comment);
  }

  _quote(anchor) {
    const removed = isOrphaned(anchor);
    const quote = clip(quoteOf(anchor), removed ? REMOVED_QUOTE_MAX : QUOTE_MAX);
    const signature = `${removed}\u0000${quote}`;
    if (this.quote.dataset.sig !== signature) {
      this.quote.dataset.sig = signature;
      if (removed) {
        // Shown in "Comments on removed text"; the label is for screen readers.
        this.quote.replaceChildren(h("span", { class: "visually-hidden" }, "Removed text: "),
          h("span", { class: "card-quote-text" }, quote));
      } else {
        this.quote.textContent = quote;
      }
    }
    this.quote.classList.toggle("is-removed", removed);
    this.quote.hidden = !quote;
  }

  _actions(comment) {
    const { store, actions } = this.ctx;
    const mine = comment.author.id === store.me.id;
    const signature = [store.canReview, store.canMaintain, comment.resolved, comment.hidden, mine].join();
    if (this.actions.dataset.sig === signature) return;
    this.actions.dataset.sig = signature;
    const buttons = [];
    if (store.canReview) {
      buttons.push(h("button", { type: "button", class: "btn btn-ghost btn-sm", dataset: { action: "reply" },
        onclick: () => this.openReply() }, "Reply"));
    }
    if (store.canReview && (mine || store.canMaintain)) {
      buttons.push(h("button", {
        type: "button",
        class: "btn btn-ghost btn-sm",
        dataset: { action: "resolve" },
        onclick: () => actions.resolve(this.id, !this.comment.resolved),
      }, comment.resolved ? "Reopen" : "Resolve"));
    }
    if (mine && store.canReview) {
      buttons.push(h("button", { type: "button", class: "btn btn-ghost btn-sm", dataset: { action: "edit" },
        onclick: () => this.openEdit() }, "Edit"));
    }
    if (store.canMaintain) {
      // Hiding keeps the comment (and its replies) for maintainers and
      // moderators, with a reason in the moderation log; readers see it go.
      buttons.push(h("button", {
        type: "button",
        class: "btn btn-ghost btn-sm",
        dataset: { action: "hide" },
        onclick: () => {
          const reason = window.prompt(comment.hidden ? "Why show this comment again?" : "Why hide this comment?");
          if (reason && reason.trim()) actions.setHidden(this.id, !this.comment.hidden, reason.trim());
        },
      }, comment.hidden ? "Unhide" : "Hide"));
    }
    if ((mine && store.canReview) || store.canMaintain) {
      buttons.push(h("button", {
        type: "button",
        class: "btn btn-ghost btn-sm btn-danger",
        dataset: { action: "delete" },
        onclick: () => {
          if (window.confirm("Delete this comment and its replies?")) actions.deleteComment(this.id);
        },
      }, "Delete"));
    }
    setButtons(this.actions, buttons, this.el);
  }

  /** Text written in this card's open reply or edit form and not sent, if any. */
  draft() {
    for (const [form, kind] of [[this.replyForm, "reply"], [this.editForm, "edit"]]) {
      if (form && !form.hidden && form.area.value.trim() && !(kind === "edit" && form.area.value === this.comment.body)) {
        return { kind, text: form.area.value };
      }
    }
    return null;
  }

  openEdit() {
    if (!this.editForm) {
      this.editForm = textForm({
        label: "Edit your comment",
        submitText: "Save",
        typingTarget: `comment:${this.id}`,
        onSubmit: async (text) => {
          await this.ctx.actions.editComment(this.id, text);
          this.closeEdit();
        },
        onCancel: () => this.closeEdit(),
        className: "edit-form",
      });
      this.body.after(this.editForm);
    }
    this.editForm.area.value = this.comment.body;
    this.editForm.hidden = false;
    this.body.hidden = true;
    this.editForm.area.focus();
  }

  closeEdit() {
    if (this.editForm) this.editForm.hidden = true;
    this.body.hidden = false;
    this.el.querySelector(".card-actions button")?.focus();
  }

  openReply() {
    if (!this.replyForm) {
      this.replyForm = textForm({
        label: `Reply to ${this.comment.author.username}`,
        placeholder: "Reply…",
        submitText: "Reply",
        typingTarget: `comment:${this.id}`,
        onSubmit: (text) => this.ctx.actions.comment({ body: text, parent: this.id }),
        onCancel: () => this.closeReply(),
        className: "reply-form",
      });
      this.el.append(this.replyForm);
    }
    this.replyForm.hidden = false;
    this.replyForm.area.focus();
  }

  closeReply() {
    if (this.replyForm) this.replyForm.hidden = true;
    this.el.querySelector(".card-actions button")?.focus();
  }
}

const STATUS_TEXT = { open: "Open", approved: "Approved", rejected: "Rejected", outdated: "Outdated" };

export class SuggestionCard {
  constructor(suggestion, ctx) {
    this.id = suggestion.id;
    this.ctx = ctx;
    this.status = h("span", { class: "badges" });
    this.diff = h("p", { class: "diff", "aria-label": "Proposed change" });
    this.note = h("p", { class: "card-note" });
    this.actions = h("div", { class: "card-actions" });
    this.el = h("article", {
      class: "card suggestion",
      id: `suggestion-${suggestion.id}`,
      tabindex: "-1",
      dataset: { key: `s:${suggestion.id}` },
      "aria-label": `Suggestion by ${suggestion.author.username}`,
    }, byline(suggestion.author.username, suggestion.createdAt,
      [h("span", { class: "muted" }, "suggested"), this.status]),
    this.diff, this.note, this.actions);
    this.update(suggestion);
  }

  update(suggestion) {
    const { store, actions } = this.ctx;
    this.suggestion = suggestion;
    this.el.dataset.status = suggestion.status;
    this.status.replaceChildren(badge(STATUS_TEXT[suggestion.status] || suggestion.status, suggestion.status));
    // What its author proposed to replace: an edit that made it outdated may
    // have moved `quote` onto the changed text (`originalQuote` keeps theirs).
    const before = suggestion.anchor.originalQuote || suggestion.anchor.quote || "";
    const signature = `${before}\u0000${suggestion.replacement}`;
    if (this.diff.dataset.sig !== signature) {
      this.diff.dataset.sig = signature;
      this.diff.replaceChildren(...renderDiff(before, suggestion.replacement));
    }
    setText(this.note, suggestion.note || "");
    this.note.hidden = !suggestion.note;
    const open = suggestion.status === "open";
    const signatureActions = `${open}:${store.canMaintain}`;
    if (this.actions.dataset.sig !== signatureActions) {
      this.actions.dataset.sig = signatureActions;
      const buttons = [];
      if (open && store.canMaintain) {
        buttons.push(
          h("button", { type: "button", class: "btn btn-primary btn-sm", dataset: { action: "approve" },
            onclick: () => actions.approve(this.id) }, "Approve"),
          h("button", { type: "button", class: "btn btn-ghost btn-sm", dataset: { action: "reject" },
            onclick: () => actions.reject(this.id) }, "Reject"));
      }
      setButtons(this.actions, buttons, this.el);
    }
  }
}

export function renderDiff(before, after) {
  const parts = wordDiff(before, after).map(({ op, text }) => {
    if (op === "del") return h("del", { class: "diff-del" }, h("span", { class: "visually-hidden" }, "removed: "), text);
    if (op === "ins") return h("ins", { class: "diff-ins" }, h("span", { class: "visually-hidden" }, "added: "), text);
    return h("span", { class: "diff-eq" }, text);
  });
  if (!parts.length) parts.push(h("span", { class: "muted" }, "(no change)"));
  return parts;
}

/** A queued top-level comment, shown where it will appear once sent. */
export function pendingCommentEl(item, me) {
  const quote = item.body.anchor && item.body.anchor.quote ? clip(item.body.anchor.quote) : "";
  return h("article", { class: "card thread is-pending", dataset: { key: `p:${item.key}` } },
    byline(me.username, item.queuedAt, h("span", { class: "pending-label" }, "Waiting to send")),
    quote ? h("blockquote", { class: "card-quote" }, quote) : null,
    h("p", { class: "card-body" }, item.body.body));
}
