// The review page's document column: passages, the notes beside them,
// highlights of anchored passages, the general comments, the comments whose
// text an edit removed, and the "N new" marker that shows what arrived out of
// sight instead of moving the page.

import { carryAnchor, clearMarks, findQuote, markRange, passageAt } from "./anchors.js";
import { h, reconcile, setText } from "./dom.js";
import { isOrphaned, pendingCommentEl, SuggestionCard, ThreadCard } from "./threads.js";

export class DocumentView {
  constructor({ store, actions, content, announce, onDraftLost }) {
    this.store = store;
    this.actions = actions;
    this.onDraftLost = onDraftLost;
    this.renderedContent = content;
    this.announce = announce;
    this.docRoot = document.getElementById("doc");
    this.generalList = document.getElementById("general-threads");
    this.generalEmpty = document.getElementById("general-empty");
    this.orphanPanel = document.getElementById("orphans-panel");
    this.orphanList = document.getElementById("orphan-threads");
    this.orphanIds = new Set(); // top-level comments in the orphan list at the last render
    this.threads = new Map();
    this.suggestionCards = new Map();
    this.pendingEls = new Map();
    this.pending = [];
    this.sendingKey = null;
    this.composer = null;
    this.live = false; // false while the first render runs: nothing is "new" then
    this.unseen = new Set();
    this.marker = document.getElementById("new-marker");
    this.marker.addEventListener("click", () => this.revealUnseen());
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) {
          this.unseen.delete(entry.target);
          this.observer.unobserve(entry.target);
        }
      }
      this.updateMarker();
    }, { threshold: 0.4 });
    this.ctx = {
      store,
      actions,
      onCreated: (el, item) => this.created(el, item),
      pendingEl: (item, build) => this.pendingElement(item, build),
    };
    this.docRoot.addEventListener("click", (event) => {
      const mark = event.target.closest("mark.anchor-mark");
      if (mark) this.focusKey(mark.dataset.key);
    });
    this.layoutQueued = false;
    new MutationObserver(() => this.queueLayout()).observe(this.docRoot, {
      childList: true, subtree: true, attributes: true, attributeFilter: ["hidden"],
    });
    window.addEventListener("resize", () => this.queueLayout());
    for (const type of ["mouseover", "focusin"]) {
      document.addEventListener(type, (event) => {
        const card = event.target.closest && event.target.closest(".card[data-key]");
        this.activate(card ? card.dataset.key : null);
      });
    }
  }

  passages() {
    return [...this.docRoot.querySelectorAll(".passage")];
  }

  /** Swap in passages rendered from a newer version of the document. */
  replacePassages(html, content) {
    const active = document.activeElement;
    const parsed = new DOMParser().parseFromString(html, "text/html"); // sanitised on the server
    this.docRoot.replaceChildren(...parsed.body.childNodes);
    const before = this.renderedContent;
    this.renderedContent = content;
    if (this.composer) {
      // An open comment or suggestion stays with the text it was opened on.
      const carried = carryAnchor(this.composer.anchor, before, content);
      if (carried) this.composer.moveTo(carried, passageAt(this.passages(), carried.start));
      else this.composer.lost(passageAt(this.passages(), this.composer.anchor.start));
    }
    this.render();
    if (active && active !== document.body && active.isConnected) active.focus({ preventScroll: true });
  }

  /**
   * Where an anchor's text is in the document as shown: at its offsets, or,
   * when an edit moved it and the server did not place it again (resolved
   * and hidden comments, closed suggestions, or its update not here yet),
   * where its quote is now, nearest to its offsets.  Null if not found.
   */
  rangeOf(anchor) {
    if (!anchor || isOrphaned(anchor)) return null;
    return findQuote(this.renderedContent, anchor.quote, anchor.start, anchor.end,
      typeof anchor.start === "number" ? anchor.start : 0);
  }

  placeOf(anchor) {
    if (!anchor || isOrphaned(anchor)) return null;
    const found = this.rangeOf(anchor);
    const start = found ? found.start : anchor.start;
    if (typeof start !== "number" || start > this.renderedContent.length) return null;
    return passageAt(this.passages(), start);
  }

  flash(el) {
    el.classList.add("is-new");
    el.addEventListener("animationend", () => el.classList.remove("is-new"), { once: true });
  }

  created(el, item) {
    if (!this.live) return;
    this.flash(el);
    const mine = item && item.author && item.author.id === this.store.me.id;
    if (mine) return;
    if (this.announce && item) {
      const text = item.body || item.replacement || item.title || "";
      this.announce(`${item.author.username}: ${text.slice(0, 80)}`);
    }
    // Measured after this render is laid out.
    requestAnimationFrame(() => {
      if (!el.isConnected) return;
      const box = el.getBoundingClientRect();
      const visible = box.bottom > 0 && box.top < window.innerHeight && box.height > 0;
      if (!visible) {
        this.unseen.add(el);
        this.observer.observe(el);
        this.updateMarker();
      }
    });
  }

  updateMarker() {
    for (const el of [...this.unseen]) if (!el.isConnected) this.unseen.delete(el);
    const count = this.unseen.size;
    this.marker.hidden = count === 0;
    if (!count) return;
    const first = this.firstUnseen();
    const above = first && first.getBoundingClientRect().bottom < 0;
    setText(this.marker.querySelector(".new-count"), `${count} new`);
    setText(this.marker.querySelector(".new-arrow"), above ? "↑" : "↓");
  }

  firstUnseen() {
    return [...this.unseen].sort((a, b) =>
      (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1))[0];
  }

  revealUnseen() {
    const first = this.firstUnseen();
    if (!first) return;
    first.scrollIntoView({ behavior: "smooth", block: "center" });
    first.focus({ preventScroll: true });
    // Everything arrived together is "seen" once the reader goes to it.
    this.unseen.clear();
    this.updateMarker();
  }

  focusKey(key) {
    const card = document.querySelector(`.card[data-key="${CSS.escape(key)}"]`);
    if (!card) return;
    card.scrollIntoView({ behavior: "smooth", block: "nearest" });
    card.focus({ preventScroll: true });
  }

  activate(key) {
    if (this.activeKey === key) return;
    this.activeKey = key;
    for (const mark of this.docRoot.querySelectorAll("mark.is-active")) mark.classList.remove("is-active");
    if (key) {
      for (const mark of this.docRoot.querySelectorAll(`mark[data-key="${CSS.escape(key)}"]`)) {
        mark.classList.add("is-active");
      }
    }
  }

  pendingElement(item, build) {
    let el = this.pendingEls.get(item.key);
    if (!el) {
      el = build();
      el.dataset.key = `p:${item.key}`;
      this.pendingEls.set(item.key, el);
    }
    const label = el.querySelector(".pending-label");
    if (label) setText(label, item.key === this.sendingKey ? "Sending…" : "Waiting to send");
    return el;
  }

  setPending(items, sendingKey) {
    this.pending = items;
    this.sendingKey = sendingKey;
    const keys = new Set(items.map((i) => i.key));
    for (const key of [...this.pendingEls.keys()]) if (!keys.has(key)) this.pendingEls.delete(key);
  }

  openComposer(composer) {
    this.closeComposer(false);
    this.composer = composer;
    this.render();
    composer.focus();
  }

  closeComposer(rerender = true) {
    if (!this.composer) return;
    this.composer.el.remove();
    this.composer = null;
    if (rerender) this.render();
  }

  render() {
    const { store } = this;
    const passages = this.passages();
    const notes = new Map(passages.map((p) => [p, []]));
    const general = [];
    const orphans = [];
    const orphanIds = new Set();
    const movedIn = [];
    const movedOut = [];
    const seenThreads = new Set();
    const seenSuggestions = new Set();

    const repliesByParent = store.repliesByParent();
    for (const comment of store.topLevelComments()) {
      seenThreads.add(comment.id);
      let card = this.threads.get(comment.id);
      const replies = repliesByParent.get(comment.id) || [];
      const pendingReplies = this.pending.filter((i) => i.kind === "comment" && i.body.parent === comment.id);
      const known = Boolean(card);
      if (!card) {
        card = new ThreadCard(comment, this.ctx);
        this.threads.set(comment.id, card);
        card.update(comment, replies, pendingReplies);
        this.created(card.el, comment);
      } else {
        card.update(comment, replies, pendingReplies);
      }
      const entry = { el: card.el, order: [comment.anchor ? comment.anchor.start ?? 0 : 0, 0, comment.id] };
      if (isOrphaned(comment.anchor)) {
        // Its passage is gone: listed apart with the text it was written on.
        orphans.push(entry);
        orphanIds.add(comment.id);
        if (known && !this.orphanIds.has(comment.id)) movedIn.push(card.el);
        continue;
      }
      if (known && this.orphanIds.has(comment.id)) movedOut.push(card.el);
      const place = this.placeOf(comment.anchor);
      if (place) notes.get(place).push(entry);
      else general.push(entry);
    }
    // Threads gone (deleted, or hidden from this reader): a reply or edit
    // being written in one is not dropped silently, nor is the focus.
    const gone = [];
    for (const [id, card] of this.threads) {
      if (seenThreads.has(id)) continue;
      this.threads.delete(id);
      const draft = card.draft();
      const focused = card.el.contains(document.activeElement);
      if (draft || focused) {
        const near = [card.el.nextElementSibling, card.el.previousElementSibling].filter((el) => el && el.matches(".card"));
        gone.push({ comment: card.comment, draft, focused, near });
      }
    }

    for (const suggestion of store.suggestions.values()) {
      seenSuggestions.add(suggestion.id);
      let card = this.suggestionCards.get(suggestion.id);
      if (!card) {
        card = new SuggestionCard(suggestion, this.ctx);
        this.suggestionCards.set(suggestion.id, card);
        this.created(card.el, suggestion);
      } else {
        card.update(suggestion);
      }
      const place = this.placeOf(suggestion.anchor) || passages[passages.length - 1];
      if (place) notes.get(place).push({ el: card.el, order: [suggestion.anchor.start ?? 0, 1, suggestion.id] });
    }
    for (const [id] of this.suggestionCards) if (!seenSuggestions.has(id)) this.suggestionCards.delete(id);

    for (const item of this.pending) {
      if (item.kind !== "comment" || item.body.parent) continue;
      const el = this.pendingElement(item, () => pendingCommentEl(item, store.me));
      const place = item.body.anchor ? this.placeOf(item.body.anchor) : null;
      const entry = { el, order: [Infinity, 2, item.queuedAt] };
      if (place) notes.get(place).push(entry);
      else general.push(entry);
    }

    // Cards move between lists (a passage removed, or back): keep the reader's
    // place in a half-written reply.
    const active = document.activeElement;
    const sortKey = (a, b) => {
      for (let k = 0; k < 3; k += 1) {
        if (a.order[k] < b.order[k]) return -1;
        if (a.order[k] > b.order[k]) return 1;
      }
      return 0;
    };
    for (const [passage, entries] of notes) {
      const container = passage.querySelector(".passage-notes");
      const els = entries.sort(sortKey).map((e) => e.el);
      if (this.composer && this.composer.passage === passage) els.unshift(this.composer.el);
      reconcile(container, els);
      passage.classList.toggle("has-notes", els.length > 0);
    }
    if (this.composer && !this.composer.passage.isConnected) {
      // The document changed under an open composer: keep it with the passage now at its offset.
      const moved = passageAt(passages, this.composer.anchor.start);
      if (moved) {
        this.composer.passage = moved;
        moved.querySelector(".passage-notes").prepend(this.composer.el);
      }
    }
    reconcile(this.generalList, general.sort(sortKey).map((e) => e.el));
    this.generalEmpty.hidden = general.length > 0;
    reconcile(this.orphanList, orphans.sort(sortKey).map((e) => e.el));
    this.orphanPanel.hidden = orphans.length === 0;
    this.orphanIds = orphanIds;
    if (active && active !== document.body && active.isConnected && document.activeElement !== active) {
      active.focus({ preventScroll: true });
    }
    for (const { comment, draft, focused, near } of gone) {
      if (draft && this.onDraftLost) this.onDraftLost(comment, draft);
      else if (focused && document.activeElement === document.body) {
        near.find((el) => el.isConnected)?.focus({ preventScroll: true });
      }
    }
    this.announceMoves(movedIn, movedOut);
    this.renderMarks(passages);
    this.updateMarker();
    this.queueLayout();
  }

  announceMoves(movedIn, movedOut) {
    if (!this.live) return;
    for (const el of [...movedIn, ...movedOut]) this.flash(el);
    const count = (n, what) => (n === 1 ? `1 ${what}` : `${n} ${what}s`);
    const parts = [];
    if (movedIn.length) parts.push(`${count(movedIn.length, "comment")} moved to Comments on removed text.`);
    if (movedOut.length) {
      parts.push(`${count(movedOut.length, "comment")} found ${movedOut.length === 1 ? "its" : "their"} text again.`);
    }
    if (parts.length && this.announce) this.announce(parts.join(" "));
  }

  queueLayout() {
    if (this.layoutQueued) return;
    this.layoutQueued = true;
    requestAnimationFrame(() => {
      this.layoutQueued = false;
      this.layoutNotes();
    });
  }

  /**
   * Wide screens: each passage's notes start level with the passage, unless
   * the notes of the passages above reach further down; then they start just
   * below those.  The document grows at the bottom to hold the last notes.
   */
  layoutNotes() {
    const wide = window.matchMedia("(min-width: 901px)").matches;
    const passages = this.passages();
    let floor = -Infinity;
    for (const passage of passages) {
      const notes = passage.querySelector(".passage-notes");
      if (!notes) continue;
      if (notes.style.transform) notes.style.transform = "";
      if (!wide || !notes.children.length) continue;
      const top = notes.getBoundingClientRect().top + window.scrollY;
      const shift = Math.max(0, floor - top);
      if (shift) notes.style.transform = `translateY(${Math.ceil(shift)}px)`;
      floor = top + shift + notes.scrollHeight + 10;
    }
    const last = passages[passages.length - 1];
    const bottom = last ? last.getBoundingClientRect().bottom + window.scrollY : 0;
    const extra = wide && floor > bottom ? `${Math.ceil(floor - bottom)}px` : "";
    if (this.docRoot.style.paddingBottom !== extra) this.docRoot.style.paddingBottom = extra;
  }

  renderMarks(passages) {
    const byPassage = new Map(passages.map((p) => [p, []]));
    const add = (anchor, key, kind) => {
      const found = this.rangeOf(anchor);
      if (!found) return;
      const passage = passageAt(passages, found.start);
      if (passage) byPassage.get(passage).push([found.start, found.end, key, kind]);
    };
    for (const comment of this.store.topLevelComments()) {
      if (!comment.resolved) add(comment.anchor, `c:${comment.id}`, "mark-comment");
    }
    for (const suggestion of this.store.suggestions.values()) {
      if (suggestion.status === "open") add(suggestion.anchor, `s:${suggestion.id}`, "mark-suggestion");
    }
    if (this.composer && !this.composer.gone) add(this.composer.anchor, "composer", "mark-draft");
    for (const [passage, ranges] of byPassage) {
      const signature = JSON.stringify(ranges);
      if (passage.dataset.marks === signature) continue;
      passage.dataset.marks = signature;
      const textRoot = passage.querySelector(".passage-text");
      clearMarks(textRoot);
      for (const [start, end, key, kind] of ranges) {
        markRange(passage, this.renderedContent, start, end, key, kind);
      }
    }
    if (this.activeKey) {
      const key = this.activeKey;
      this.activeKey = null;
      this.activate(key);
    }
  }
}

/** The composer for a new comment or suggestion on a selected passage. */
export function composerFor({ kind, anchor, passage, store, actions, onClose, renderPreview }) {
  const id = `composer-${Date.now()}`;
  const quote = anchor.quote.replace(/\s+/g, " ").trim();
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-sm" },
    kind === "suggest" ? "Suggest" : "Comment");
  const cancel = h("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: () => onClose() }, "Cancel");
  let area;
  let note = null;
  let preview = null;
  const fields = [];
  if (kind === "suggest") {
    area = h("textarea", { id: `${id}-text`, rows: 3, required: false, "data-typing-target": "suggestion" });
    area.value = anchor.quote;
    note = h("input", { id: `${id}-note`, type: "text", maxlength: 10000, placeholder: "Why? (optional)" });
    preview = h("p", { class: "diff", "aria-live": "polite" });
    const update = () => preview.replaceChildren(...renderPreview(anchor.quote, area.value));
    area.addEventListener("input", update);
    update();
    fields.push(
      h("label", { for: area.id, class: "field-label" }, "Replace with"), area,
      h("div", { class: "field-label" }, "Preview"), preview,
      h("label", { for: note.id, class: "field-label" }, "Note"), note);
  } else {
    area = h("textarea", { id: `${id}-text`, rows: 3, required: true, placeholder: "Add a comment…",
      "data-typing-target": "comment" });
    fields.push(h("label", { for: area.id, class: "visually-hidden" }, "Comment"), area);
  }
  const form = h("form", { class: "card composer", "aria-label": kind === "suggest" ? "New suggestion" : "New comment" },
    h("div", { class: "composer-title" }, kind === "suggest" ? "Suggest a change to" : "Comment on"),
    h("blockquote", { class: "card-quote" }, quote.length > 160 ? `${quote.slice(0, 159)}…` : quote),
    ...fields, error, h("div", { class: "form-actions" }, cancel, submit));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      onClose();
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  const composer = {
    el: form,
    anchor,
    passage,
    focus: () => area.focus(),
    /** The document changed: the selected text is now at `next`, in `where`. */
    moveTo(next, where) {
      composer.anchor = next;
      if (where) composer.passage = where;
    },
    /** The document changed and the selected text is gone from it. */
    lost(where) {
      composer.gone = true;
      if (where) composer.passage = where;
      error.textContent = "Someone changed this text while you were writing: it is no longer in the document. "
        + "Copy what you wrote, cancel, and select the new text.";
      error.hidden = false;
      submit.disabled = true;
    },
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (composer.gone) return;
    error.hidden = true;
    if (kind === "comment" && !area.value.trim()) {
      area.focus();
      return;
    }
    submit.disabled = true;
    try {
      if (kind === "suggest") {
        await actions.suggest({ anchor: composer.anchor, replacement: area.value, note: note.value });
      } else {
        await actions.comment({ body: area.value, anchor: composer.anchor });
      }
      onClose({ submitted: true });
    } catch (failure) {
      error.textContent = failure && failure.message ? failure.message : String(failure);
      error.hidden = false;
    } finally {
      submit.disabled = Boolean(composer.gone);
    }
  });
  return composer;
}
