// The review page's state: the API's JSON of every object, by id.
// Applying an event replaces an object whole, so applying one twice, or one
// the snapshot already covered, changes nothing.

export class Store {
  constructor(snapshot) {
    this.load(snapshot);
  }

  load(snapshot) {
    this.doc = snapshot.doc;
    this.me = snapshot.me;
    this.canReview = Boolean(snapshot.canReview);
    this.canMaintain = Boolean(snapshot.canMaintain);
    this.comments = new Map(snapshot.comments.map((c) => [c.id, c]));
    this.suggestions = new Map(snapshot.suggestions.map((s) => [s.id, s]));
    this.discussions = new Map();
    for (const d of snapshot.discussions) {
      const { messages = [], ...discussion } = d;
      this.discussions.set(d.id, { ...discussion, messages: new Map(messages.map((m) => [m.id, m])) });
    }
    this.members = snapshot.members;
  }

  /** Apply one persisted event.  Returns what changed: {kind, id, created}. */
  apply(envelope) {
    const { type, data } = envelope;
    switch (type) {
      case "comment.created":
      case "comment.updated": {
        const created = !this.comments.has(data.id);
        this.comments.set(data.id, data);
        return { kind: "comment", id: data.id, created, item: data };
      }
      case "comment.deleted": {
        this.comments.delete(data.id);
        for (const [id, comment] of this.comments) if (comment.parent === data.id) this.comments.delete(id);
        return { kind: "comment", id: data.id, deleted: true };
      }
      case "suggestion.created":
      case "suggestion.updated":
      case "suggestion.approved": {
        const created = !this.suggestions.has(data.id);
        this.suggestions.set(data.id, data);
        return { kind: "suggestion", id: data.id, created, item: data };
      }
      case "discussion.created": {
        const existing = this.discussions.get(data.id);
        this.discussions.set(data.id, { ...data, messages: existing ? existing.messages : new Map() });
        return { kind: "discussion", id: data.id, created: !existing, item: data };
      }
      case "discussion.message":
      case "discussion.message.updated": {
        const discussion = this.discussions.get(data.discussionId);
        if (!discussion) return { kind: "unknown" };
        const created = !discussion.messages.has(data.id);
        discussion.messages.set(data.id, data);
        return { kind: "message", id: data.id, created, item: data };
      }
      case "discussion.message.deleted": {
        const discussion = this.discussions.get(data.discussionId);
        if (discussion) discussion.messages.delete(data.id);
        return { kind: "message", id: data.id, deleted: true };
      }
      case "document.updated": {
        const contentChanged = data.content !== this.doc.content;
        this.doc = { ...this.doc, ...data };
        return { kind: "document", contentChanged };
      }
      default:
        return { kind: "unknown" };
    }
  }

  topLevelComments() {
    return [...this.comments.values()].filter((c) => c.parent === null).sort((a, b) => a.id - b.id);
  }

  /** Replies by the id of the comment they answer, oldest first. */
  repliesByParent() {
    const index = new Map();
    for (const comment of this.comments.values()) {
      if (comment.parent === null) continue;
      if (!index.has(comment.parent)) index.set(comment.parent, []);
      index.get(comment.parent).push(comment);
    }
    for (const replies of index.values()) replies.sort((a, b) => a.id - b.id);
    return index;
  }
}
