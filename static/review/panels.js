// The side panels: discussions, who is online and typing, members, and the
// connection status.

import { avatar, h, hueClass, initials, reconcile, setText, timeEl } from "./dom.js";
import { textForm } from "./threads.js";

function messageEl(message, pendingLabel) {
  return h("li", { class: `message${pendingLabel ? " is-pending" : ""}` },
    h("div", { class: "card-head" },
      avatar(message.author.username),
      h("span", { class: "who" }, h("strong", { class: "author" }, message.author.username),
        pendingLabel ? h("span", { class: "pending-label" }, pendingLabel) : null),
      timeEl(message.createdAt)),
    h("p", { class: "card-body" }, message.body));
}

/** A hidden message (only moderators and maintainers get it) says so, as a hidden comment does. */
function markHidden(el, hidden) {
  el.classList.toggle("is-hidden", Boolean(hidden));
  const current = el.querySelector(".badge-hidden");
  if (hidden && !current) el.querySelector(".who").append(h("span", { class: "badge badge-hidden" }, "Hidden"));
  else if (!hidden && current) current.remove();
}

class DiscussionBlock {
  constructor(discussion, ctx) {
    this.id = discussion.id;
    this.ctx = ctx;
    this.messageEls = new Map();
    this.title = h("h3", { class: "discussion-title", id: `discussion-${discussion.id}-title` });
    this.count = h("span", { class: "count" });
    this.list = h("ol", { class: "messages", "aria-labelledby": this.title.id });
    this.empty = h("p", { class: "muted small" }, "No messages yet.");
    this.form = ctx.store.canReview ? textForm({
      label: `Message in ${discussion.title}`,
      placeholder: "Write a message…",
      submitText: "Send",
      typingTarget: `discussion:${discussion.id}`,
      onSubmit: (text) => ctx.actions.message(discussion.id, text),
    }) : null;
    this.el = h("section", {
      class: "discussion",
      id: `discussion-${discussion.id}`,
      tabindex: "-1",
      dataset: { key: `d:${discussion.id}` },
    }, h("header", { class: "discussion-head" }, this.title, this.count),
    h("p", { class: "muted small discussion-meta" }, "Started by ", discussion.author.username, " · ",
      timeEl(discussion.createdAt)),
    this.list, this.empty, this.form);
  }

  update(discussion, pending) {
    setText(this.title, discussion.title);
    const messages = [...discussion.messages.values()].sort((a, b) => a.id - b.id);
    const items = messages.map((message) => {
      let el = this.messageEls.get(message.id);
      if (!el) {
        el = messageEl(message);
        el.dataset.key = `m:${message.id}`;
        el.tabIndex = -1;
        this.messageEls.set(message.id, el);
        this.ctx.onCreated(el, message);
      }
      markHidden(el, message.hidden);
      return el;
    });
    for (const item of pending) {
      items.push(this.ctx.pendingEl(item, () => messageEl(
        { author: { username: this.ctx.store.me.username }, createdAt: item.queuedAt, body: item.body.body },
        "Waiting to send")));
    }
    reconcile(this.list, items);
    this.empty.hidden = items.length > 0;
    setText(this.count, messages.length === 1 ? "1 message" : `${messages.length} messages`);
  }
}

export class DiscussionsPanel {
  constructor(ctx) {
    this.ctx = ctx;
    this.blocks = new Map();
    this.list = document.getElementById("discussions");
    this.empty = document.getElementById("discussions-empty");
    const form = document.getElementById("discussion-form");
    if (form) {
      const input = form.querySelector("input[name=title]");
      const error = form.querySelector(".form-error");
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (!input.value.trim()) return;
        error.hidden = true;
        try {
          await ctx.actions.createDiscussion(input.value.trim());
          input.value = "";
        } catch (failure) {
          error.textContent = failure.message;
          error.hidden = false;
        }
      });
    }
  }

  render(pending) {
    const { store } = this.ctx;
    const discussions = [...store.discussions.values()].sort((a, b) => a.id - b.id);
    const els = discussions.map((discussion) => {
      let block = this.blocks.get(discussion.id);
      const isNew = !block;
      if (!block) {
        block = new DiscussionBlock(discussion, this.ctx);
        this.blocks.set(discussion.id, block);
      }
      block.update(discussion, pending.filter((i) => i.kind === "message" && i.meta.discussionId === discussion.id));
      if (isNew) this.ctx.onCreated(block.el, discussion);
      return block.el;
    });
    reconcile(this.list, els);
    this.empty.hidden = els.length > 0;
  }
}

/** Who is online, and who is typing. */
export class PresencePanel {
  constructor(store) {
    this.store = store;
    this.online = new Map();
    this.typing = new Map();
    this.list = document.getElementById("presence");
    this.typingEl = document.getElementById("typing");
    this.timer = null;
  }

  clear() {
    this.online.clear();
    this.render();
  }

  setAll(rows) {
    for (const row of rows) this.set(row, false);
    this.render();
  }

  set({ userId, username, status }, render = true) {
    if (status === "online") this.online.set(userId, username);
    else {
      this.online.delete(userId);
      this.typing.delete(userId);
    }
    if (render) this.render();
  }

  typed({ userId, username, target }) {
    if (userId === this.store.me.id) return;
    this.typing.set(userId, { username, target, until: Date.now() + 4000 });
    this.render();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.render(), 4100);
  }

  render() {
    const me = this.store.me;
    const people = [[me.id, me.username], ...[...this.online].filter(([id]) => id !== me.id)
      .sort((a, b) => a[1].localeCompare(b[1]))];
    reconcile(this.list, people.map(([id, name]) => {
      const el = this.list.querySelector(`[data-user-id="${id}"]`) || h("li", {
        class: "person", dataset: { userId: String(id) }, title: id === me.id ? `${name} (you)` : name,
      }, h("span", { class: `avatar ${hueClass(name)}`, "aria-hidden": "true" }, initials(name)),
      h("span", { class: "person-name" }, id === me.id ? `${name} (you)` : name));
      return el;
    }));
    const now = Date.now();
    for (const [id, entry] of this.typing) if (entry.until < now) this.typing.delete(id);
    const names = [...this.typing.values()].map((t) => t.username);
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length > 1) text = `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]} are typing…`;
    setText(this.typingEl, text);
  }
}

const ROLES = [["viewer", "Viewer"], ["reviewer", "Reviewer"], ["maintainer", "Maintainer"]];

export class MembersPanel {
  constructor(ctx) {
    this.ctx = ctx;
    this.list = document.getElementById("members");
    this.form = document.getElementById("member-form");
    if (!this.list || !this.form) return;
    this.error = this.form.querySelector(".form-error");
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(this.form);
      // A refused name stays in the field to be corrected.
      const added = await this.run(() => ctx.actions.setMember(String(data.get("username")).trim(),
        String(data.get("role"))));
      if (added) this.form.reset();
      else this.form.elements.username?.focus();
    });
  }

  /** Run `action`; true if it succeeded, else its error is shown. */
  async run(action) {
    this.error.hidden = true;
    try {
      await action();
      return true;
    } catch (failure) {
      this.error.textContent = failure.message;
      this.error.hidden = false;
      return false;
    }
  }

  render() {
    const { store, actions } = this.ctx;
    if (!this.list || !store.members) return;
    this.list.replaceChildren(...store.members.map((member) => {
      const selectId = `role-${member.userId}`;
      const select = h("select", { id: selectId, class: "input input-sm" },
        ROLES.map(([value, label]) => h("option", { value, selected: value === member.role ? true : null }, label)));
      select.value = member.role;
      select.addEventListener("change", () => this.run(() => actions.setMember(member.username, select.value)));
      const you = member.userId === store.me.id;
      return h("li", { class: "member" },
        avatar(member.username),
        h("label", { for: selectId, class: "member-name", title: you ? `${member.username} (you)` : member.username },
          member.username, you ? " (you)" : ""),
        select,
        h("button", {
          type: "button",
          class: "btn btn-ghost btn-sm btn-danger",
          "aria-label": `Remove ${member.username}`,
          onclick: () => {
            if (window.confirm(`Remove ${member.username} from this document?`)) {
              this.run(() => actions.removeMember(member.userId));
            }
          },
        }, "Remove"));
    }));
  }
}

const STATUS_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  reloading: "Reloading…",
  offline: "Offline",
  closed: "Not connected",
};

/** The connection pill: live, reconnecting or offline, and writes waiting to be sent. */
export class StatusPill {
  constructor() {
    this.el = document.getElementById("conn-status");
    this.label = this.el.querySelector(".status-label");
    this.detail = this.el.querySelector(".status-detail");
    this.state = "connecting";
    this.waiting = 0;
    this.failed = false;
  }

  set({ state }) {
    this.state = state;
    this.render();
  }

  setQueue(count, waiting) {
    this.waiting = count;
    this.failed = waiting;
    this.render();
  }

  render() {
    const state = navigator.onLine === false ? "offline" : this.state;
    this.el.dataset.state = state;
    setText(this.label, STATUS_TEXT[state] || state);
    const parts = [];
    if (this.waiting) parts.push(this.waiting === 1 ? "1 change waiting to send" : `${this.waiting} changes waiting to send`);
    setText(this.detail, parts.join(" · "));
    this.detail.hidden = parts.length === 0;
  }
}
