// The review page: state from the server-rendered snapshot, kept live by the
// event stream, with writes that wait out a bad network.

import { ApiError, describeError, getAll, request } from "../realtime/api.js";
import { backoffDelay } from "../realtime/backoff.js";
import { LiveStream } from "../realtime/client.js";
import { Outbox } from "../realtime/outbox.js";
import { findQuote, passageAnchor, selectionAnchor } from "./anchors.js";
import { h, refreshTimes } from "./dom.js";
import { DiscussionsPanel, MembersPanel, PresencePanel, StatusPill } from "./panels.js";
import { Store } from "./store.js";
import { renderDiff, textForm } from "./threads.js";
import { composerFor, DocumentView } from "./view.js";

const root = document.getElementById("review");
const snapshot = JSON.parse(document.getElementById("review-state").textContent);
const store = new Store(snapshot);
const docPath = store.doc.path;
const stateUrl = root.dataset.stateUrl;
const liveRegion = document.getElementById("live-region");
const toasts = document.getElementById("toasts");

function announce(text) {
  liveRegion.textContent = text;
}

function toast(text, kind = "error") {
  // The same message again (a burst of refused writes) replaces the one shown.
  for (const shown of [...toasts.children]) if (shown.firstChild && shown.firstChild.textContent === text) shown.remove();
  const el = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", null, text),
    h("button", { type: "button", class: "btn btn-ghost btn-sm", "aria-label": "Dismiss",
      onclick: () => el.remove() }, "×"));
  toasts.append(el);
  setTimeout(() => el.remove(), 8000);
}

// --- writes ---------------------------------------------------------------------

function upsert(map, item) {
  const current = map.get(item.id);
  // An API answer may arrive after a newer event about the same object.
  if (!current || !current.updatedAt || !item.updatedAt || item.updatedAt >= current.updatedAt) map.set(item.id, item);
}

async function guarded(promise) {
  try {
    return await promise;
  } catch (error) {
    throw new Error(describeError(error));
  }
}

// A comment's anchor holds offsets into the version of the document it was
// written on.  If the document changed before it is sent (an approved
// suggestion, an edit while offline), find its quote again, at the
// occurrence nearest the old place, so the comment is not refused.
function relocated(body) {
  const anchor = body && body.anchor;
  if (!anchor) return body;
  const found = findQuote(store.doc.content, anchor.quote, anchor.start, anchor.end);
  if (!found || (found.start === anchor.start && found.end === anchor.end)) return body;
  return { ...body, anchor: { ...anchor, ...found } };
}

const outbox = new Outbox({
  storageKey: `docreview.outbox.v1:${store.me.id}:${docPath}`,
  send: (method, url, options) => request(method, url, { ...options, body: relocated(options.body) }),
  onSent(item, result) {
    if (item.kind === "comment" && result) upsert(store.comments, result);
    if (item.kind === "message" && result) {
      const discussion = store.discussions.get(result.discussionId);
      if (discussion) discussion.messages.set(result.id, result);
    }
    scheduleRender();
  },
  onFailed(item, error) {
    const what = item.kind === "message" ? "message" : "comment";
    // Its text is not lost: it goes back into the general comment box.
    const box = item.kind === "comment" && document.querySelector(".general-form textarea");
    const kept = box && !box.value.trim();
    if (kept) box.value = item.body.body;
    toast(`Your ${what} “${item.body.body.slice(0, 40)}” was not sent: ${describeError(error)}`
      + (kept ? " Its text is back in the comment box below." : ""));
    scheduleRender();
  },
  onChange: () => scheduleRender(),
});

const typing = {
  disabled: false,
  last: 0,
  notify(target) {
    if (this.disabled || !store.canReview || Date.now() - this.last < 2500) return;
    this.last = Date.now();
    request("POST", "/api/typing/", { body: { docPath, target } }).catch((error) => {
      // Not there (yet) on this server: stop asking.
      if (error instanceof ApiError && [404, 405, 501].includes(error.status)) this.disabled = true;
    });
  },
};

const actions = {
  comment({ body, anchor = null, parent = null }) {
    outbox.enqueue({ kind: "comment", url: "/api/comments/", body: { docPath, body, anchor, parent } });
  },
  message(discussionId, body) {
    outbox.enqueue({
      kind: "message", url: `/api/discussions/${discussionId}/messages/`, body: { body }, meta: { discussionId },
    });
  },
  async suggest({ anchor, replacement, note }) {
    // Written on the text as it was shown; placed on the newest text known.
    const body = relocated({
      docPath, anchor: { quote: anchor.quote, start: anchor.start, end: anchor.end }, replacement, note,
    });
    const result = await guarded(request("POST", "/api/suggestions/", { body }));
    upsert(store.suggestions, result);
    scheduleRender();
  },
  async editComment(id, body) {
    // Errors reach the form, which keeps the text.
    upsert(store.comments, await guarded(request("PATCH", `/api/comments/${id}/`, { body: { body } })));
    scheduleRender();
  },
  async setHidden(id, hidden, reason) {
    try {
      const verb = hidden ? "hide" : "unhide";
      upsert(store.comments, await request("POST", `/api/comments/${id}/${verb}/`, { body: { reason } }));
      scheduleRender();
    } catch (error) {
      toast(describeError(error));
    }
  },
  async resolve(id, resolved) {
    try {
      upsert(store.comments, await request("PATCH", `/api/comments/${id}/`, { body: { resolved } }));
      scheduleRender();
    } catch (error) {
      toast(describeError(error));
    }
  },
  async deleteComment(id) {
    try {
      await request("DELETE", `/api/comments/${id}/`);
      store.apply({ type: "comment.deleted", data: { id } });
      scheduleRender();
    } catch (error) {
      toast(describeError(error));
    }
  },
  async approve(id) {
    try {
      upsert(store.suggestions, await request("POST", `/api/suggestions/${id}/approve/`));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        toast("This suggestion no longer applies to the current text.");
        try {
          upsert(store.suggestions, await request("GET", `/api/suggestions/${id}/`));
        } catch { /* the event will tell */ }
      } else {
        toast(describeError(error));
      }
    }
    scheduleRender();
  },
  async reject(id) {
    try {
      upsert(store.suggestions, await request("POST", `/api/suggestions/${id}/reject/`));
      scheduleRender();
    } catch (error) {
      toast(describeError(error));
    }
  },
  async createDiscussion(title) {
    const result = await guarded(request("POST", "/api/discussions/", { body: { docPath, title } }));
    if (!store.discussions.has(result.id)) store.discussions.set(result.id, { ...result, messages: new Map() });
    scheduleRender();
  },
  async setMember(username, role) {
    await guarded(request("POST", `/api/documents/${store.doc.id}/members/`, { body: { username, role } }));
    await refreshMembers();
  },
  async removeMember(userId) {
    await guarded(request("DELETE", `/api/documents/${store.doc.id}/members/${userId}/`));
    await refreshMembers();
  },
};

async function refreshMembers() {
  store.members = await getAll(`/api/documents/${store.doc.id}/members/`);
  members.render();
}

// --- views ----------------------------------------------------------------------

// A thread removed while its user was replying to it or editing it: the text
// goes to the general comment box rather than away with the thread.
function draftLost(comment, draft) {
  const box = document.querySelector(".general-form textarea");
  const what = draft.kind === "reply" ? "replying to" : "editing";
  if (box) {
    box.value = box.value.trim() ? `${box.value}\n\n${draft.text}` : draft.text;
    box.focus({ preventScroll: true });
  }
  toast(`The comment you were ${what} was removed.`
    + (box ? " What you wrote is in the comment box below." : ""));
}

const view = new DocumentView({ store, actions, content: snapshot.doc.content, announce, onDraftLost: draftLost });
const ctx = view.ctx;
const discussions = new DiscussionsPanel(ctx);
const presence = new PresencePanel(store);
const members = new MembersPanel(ctx);
const status = new StatusPill();
let renderedVersion = snapshot.doc.version;

let renderTimer = null;
function scheduleRender() {
  if (renderTimer !== null) return;
  renderTimer = setTimeout(() => {
    renderTimer = null;
    renderAll();
  }, 0);
}

function renderAll() {
  const pending = outbox.items();
  view.setPending(pending, outbox.sendingKey);
  view.render();
  discussions.render(pending);
  status.setQueue(pending.length, outbox.waiting);
  renderCounts();
}

function renderCounts() {
  const open = store.topLevelComments().filter((c) => !c.resolved && !c.hidden).length;
  const openSuggestions = [...store.suggestions.values()].filter((s) => s.status === "open").length;
  document.getElementById("count-comments").textContent = open === 1 ? "1 open comment" : `${open} open comments`;
  document.getElementById("count-suggestions").textContent =
    openSuggestions === 1 ? "1 open suggestion" : `${openSuggestions} open suggestions`;
  document.getElementById("doc-version").textContent = `Version ${store.doc.version}`;
  const title = document.getElementById("doc-title");
  if (title.textContent !== store.doc.title) {
    title.textContent = store.doc.title;
    document.title = `${store.doc.title} · doc-review`;
  }
}

// --- the live stream ------------------------------------------------------------

let refreshing = null;
async function refreshPassages() {
  // The document's text changed: fetch its new rendering (the server renders
  // and sanitises Markdown; the browser never does).
  if (refreshing) return refreshing;
  refreshing = (async () => {
    for (let attempt = 0; attempt < 6; attempt += 1) {
      try {
        const state = await request("GET", stateUrl);
        if (state.doc.version >= renderedVersion) {
          renderedVersion = state.doc.version;
          view.replacePassages(state.html, state.doc.content);
        }
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt) + 200));
      }
    }
  })().finally(() => {
    refreshing = null;
    if (store.doc.version > renderedVersion) refreshPassages();
  });
  return refreshing;
}

async function reloadState(attempt = 0) {
  try {
    const state = await request("GET", stateUrl);
    store.load(state);
    renderedVersion = state.doc.version;
    view.replacePassages(state.html, state.doc.content);
    members.render();
    renderAll();
    stream.resume(state.doc.lastEventId);
  } catch {
    setTimeout(() => reloadState(attempt + 1), backoffDelay(attempt) + 200);
  }
}

const stream = new LiveStream({
  url: `/api/events?docPath=${encodeURIComponent(docPath)}`,
  lastEventId: snapshot.doc.lastEventId,
  onEvent(envelope) {
    const change = store.apply(envelope);
    if (change.kind === "document" && change.contentChanged) refreshPassages();
    scheduleRender();
  },
  onEphemeral({ type, data }) {
    if (!data) return;
    if (type === "user.presence") presence.set(data);
    else if (type === "user.typing") presence.typed(data);
  },
  onReset() {
    reloadState();
  },
  onStatus(next) {
    status.set(next);
    if (next.state === "reconnecting" && next.attempt >= 3) checkAccess();
  },
  onOpen() {
    // The server sends who is online right after the replay: start afresh.
    presence.clear();
    outbox.flushNow();
    opens += 1;
    if (opens > 1) checkRole();
  },
});

// A membership change closes the user's streams; when the page reconnects,
// see whether the role it was built for still holds (the forms and buttons
// it offers depend on it).
let opens = 0;
const pageRole = snapshot.doc.role;
async function checkRole() {
  try {
    const found = await request("GET", `/api/documents/?path=${encodeURIComponent(docPath)}`);
    const role = Array.isArray(found) && found[0] ? found[0].role : null;
    if (role && role !== pageRole) {
      toast(`Your role on this document is now ${role}. Reloading the page…`);
      setTimeout(() => window.location.reload(), 2500);
    }
  } catch {
    /* lost access is checkAccess's to tell */
  }
}

// An EventSource cannot see why it failed.  After a few failed attempts, ask
// the API: signed out or no longer a member means retrying will not help.
let checkingAccess = false;
async function checkAccess() {
  if (checkingAccess) return;
  checkingAccess = true;
  try {
    const found = await request("GET", `/api/documents/?path=${encodeURIComponent(docPath)}`);
    if (Array.isArray(found) && found.length === 0) {
      stream.stop();
      status.set({ state: "closed" });
      toast("You no longer have access to this document.");
    }
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      stream.stop();
      status.set({ state: "closed" });
      toast("You have been signed out. Reload the page to sign in again.");
    }
  } finally {
    checkingAccess = false;
  }
}

window.addEventListener("online", () => {
  status.render();
  stream.reconnectNow();
  outbox.flushNow();
});
window.addEventListener("offline", () => status.render());

// --- selecting text: comment or suggest -------------------------------------------

const toolbar = document.getElementById("selection-toolbar");
let selected = null;

function hideToolbar() {
  toolbar.hidden = true;
  selected = null;
}

const toolbarHint = toolbar.querySelector(".toolbar-hint");

function showToolbarFor(found) {
  selected = found;
  // found null: a selection across passages, which an anchor cannot span.
  for (const button of toolbar.querySelectorAll("button[data-kind]")) button.hidden = !found;
  toolbarHint.hidden = Boolean(found);
  const range = window.getSelection().getRangeAt(0);
  const box = range.getBoundingClientRect();
  toolbar.hidden = false;
  const width = toolbar.offsetWidth;
  const left = Math.min(Math.max(8, box.left + box.width / 2 - width / 2 + window.scrollX),
    window.scrollX + document.documentElement.clientWidth - width - 8);
  toolbar.style.left = `${left}px`;
  toolbar.style.top = `${box.top + window.scrollY - toolbar.offsetHeight - 8}px`;
}

function spansPassages(selection) {
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return false;
  const range = selection.getRangeAt(0);
  const passageOf = (node) => (node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement)?.closest(".passage");
  const first = passageOf(range.startContainer);
  const last = passageOf(range.endContainer);
  return Boolean(first && last && first !== last && view.docRoot.contains(first) && view.docRoot.contains(last)
    && range.toString().trim());
}

function onSelection() {
  if (!store.canReview) return;
  const selection = window.getSelection();
  const found = selectionAnchor(selection, view.renderedContent);
  if (found || spansPassages(selection)) showToolbarFor(found);
  else if (!toolbar.contains(document.activeElement)) hideToolbar();
}

document.addEventListener("mouseup", (event) => {
  if (!toolbar.contains(event.target)) setTimeout(onSelection, 0);
});
document.addEventListener("keyup", (event) => {
  if (event.shiftKey || event.key === "Shift") onSelection();
  if (event.key === "Escape") hideToolbar();
});
document.addEventListener("selectionchange", () => {
  if (!toolbar.hidden && window.getSelection().isCollapsed && !toolbar.contains(document.activeElement)) {
    hideToolbar();
  }
});

function openComposer(kind, found) {
  const composer = composerFor({
    kind,
    anchor: found.anchor,
    passage: found.passage,
    store,
    actions,
    renderPreview: renderDiff,
    onClose: () => {
      view.closeComposer();
      found.passage.querySelector(".passage-comment")?.focus({ preventScroll: true });
    },
  });
  hideToolbar();
  window.getSelection().removeAllRanges();
  view.openComposer(composer);
}

// Keep the selection when the toolbar is clicked (focus would otherwise move first).
toolbar.addEventListener("mousedown", (event) => event.preventDefault());
toolbar.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-kind]");
  if (button && selected) openComposer(button.dataset.kind, selected);
});

// Keyboard and touch users: buttons per passage comment on the whole block
// or suggest a change to it (a selection does either for part of it).
function addPassageButtons() {
  if (!store.canReview) return;
  for (const passage of view.docRoot.querySelectorAll(".passage")) {
    if (passage.querySelector(".passage-comment")) continue;
    const whole = () => ({ passage, anchor: passageAnchor(passage, view.renderedContent) });
    const comment = h("button", {
      type: "button",
      class: "passage-comment",
      title: "Comment on this passage",
      "aria-label": "Comment on this passage",
      onclick: () => openComposer("comment", whole()),
    }, "+");
    const suggest = h("button", {
      type: "button",
      class: "passage-comment passage-suggest",
      title: "Suggest a change to this passage",
      "aria-label": "Suggest a change to this passage",
      onclick: () => openComposer("suggest", whole()),
    }, "✎");
    passage.querySelector(".passage-text").before(comment, suggest);
  }
}
new MutationObserver(addPassageButtons).observe(view.docRoot, { childList: true });

// --- general comments --------------------------------------------------------------

const generalSlot = document.getElementById("general-form-slot");
if (generalSlot && store.canReview) {
  generalSlot.replaceWith(textForm({
    label: "Add a general comment",
    labelHidden: false,
    placeholder: "Comment on the whole document…",
    submitText: "Comment",
    typingTarget: "document",
    rows: 3,
    className: "general-form",
    onSubmit: (text) => actions.comment({ body: text }),
  }));
}

document.addEventListener("input", (event) => {
  const target = event.target.closest && event.target.closest("[data-typing-target]");
  if (target) typing.notify(target.dataset.typingTarget);
});

// --- start ---------------------------------------------------------------------------

addPassageButtons();
renderAll();
members.render();
presence.render();
view.live = true;
stream.start();
outbox.flush();
setInterval(() => refreshTimes(), 60000);
request("GET", `/api/presence/?docPath=${encodeURIComponent(docPath)}`)
  .then((rows) => Array.isArray(rows) && presence.setAll(rows))
  .catch(() => { /* presence comes with the stream anyway */ });

// For tests and debugging: what the stream has applied.
root.dataset.ready = "true";
window.docReview = { store, stream, outbox };
