// A document's live event stream over EventSource that survives bad networks.
//
// - Starts right after the id the page was rendered with (`lastEventId`), and
//   applies only events whose id is greater than the last one applied: no gap
//   (the server replays from that id) and no duplicate.
// - A native EventSource retries by itself only after a network error and
//   gives up for good on any non-200 answer (429, 503, 5xx).  So on every
//   error this closes it and reconnects itself, with exponential backoff and
//   full jitter (capped at 30 s), resuming from the last applied id.
// - `stream.reset` (the server no longer holds what follows our id) hands
//   control to `onReset`, which reloads the page's state and calls `resume()`.

import { backoffDelay } from "./backoff.js";

export const PERSISTED_TYPES = [
  "comment.created",
  "comment.updated",
  "comment.deleted",
  "suggestion.created",
  "suggestion.updated",
  "suggestion.approved",
  "discussion.created",
  "discussion.message",
  "discussion.message.updated",
  "discussion.message.deleted",
  "document.updated",
];
export const EPHEMERAL_TYPES = ["user.presence", "user.typing", "user.cursor"];

export class LiveStream {
  /**
   * @param {object} options
   * @param {string} options.url            the stream URL with its docPath, e.g. /api/events?docPath=a.md
   * @param {number} options.lastEventId    the id the page's state already covers
   * @param {(envelope: object) => void} options.onEvent     a persisted event, in order, once
   * @param {(envelope: object) => void} [options.onEphemeral] presence, typing, cursor
   * @param {(lastEventId: number) => void} [options.onReset]
   * @param {(status: {state: string, retryInMs?: number, attempt?: number}) => void} [options.onStatus]
   * @param {() => void} [options.onOpen]
   */
  constructor({ url, lastEventId, onEvent, onEphemeral, onReset, onStatus, onOpen, EventSourceImpl }) {
    this.url = url;
    this.lastId = Number(lastEventId) || 0;
    this.onEvent = onEvent;
    this.onEphemeral = onEphemeral || (() => {});
    this.onReset = onReset || (() => this.resume(this.lastId));
    this.onStatus = onStatus || (() => {});
    this.onOpen = onOpen || (() => {});
    this.EventSourceImpl = EventSourceImpl || window.EventSource;
    this.source = null;
    this.timer = null;
    this.attempt = 0;
    this.stopped = true;
    this.paused = false;
    this.holeAt = null; // lastId when a hole was last seen
  }

  start() {
    this.stopped = false;
    this._connect();
    return this;
  }

  stop() {
    this.stopped = true;
    this._close();
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Connect again now (the browser came back online, or the page's state was reloaded). */
  reconnectNow() {
    if (this.stopped || this.paused) return;
    if (this.source && this.source.readyState === 1) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this._connect();
  }

  /** After a reset: continue from the id the reloaded state covers. */
  resume(lastEventId) {
    this.lastId = Number(lastEventId) || 0;
    this.paused = false;
    this._close();
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.stopped) this._connect();
  }

  _streamUrl() {
    const url = new URL(this.url, window.location.href);
    url.searchParams.set("lastEventId", String(this.lastId));
    return url.toString();
  }

  _connect() {
    this._close();
    this.onStatus({ state: this.attempt === 0 ? "connecting" : "reconnecting", attempt: this.attempt });
    const source = new this.EventSourceImpl(this._streamUrl(), { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      if (source !== this.source) return;
      this.attempt = 0;
      this.onStatus({ state: "live" });
      this.onOpen();
    };
    source.onerror = () => {
      if (source !== this.source) return;
      this._scheduleReconnect();
    };
    for (const type of PERSISTED_TYPES) {
      source.addEventListener(type, (message) => this._onPersisted(source, message));
    }
    for (const type of EPHEMERAL_TYPES) {
      source.addEventListener(type, (message) => this._onEphemeral(source, message));
    }
    source.addEventListener("stream.reset", (message) => this._onReset(source, message));
  }

  _close() {
    if (this.source) {
      this.source.onopen = null;
      this.source.onerror = null;
      this.source.close();
      this.source = null;
    }
  }

  _scheduleReconnect() {
    // Whatever the native object would do next (retry after `retry:` or give
    // up on a non-200), we decide: close it and come back with backoff.
    this._close();
    if (this.stopped || this.paused) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.onStatus({ state: "reconnecting", retryInMs: delay, attempt: this.attempt });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this._connect();
    }, delay);
  }

  _parse(message) {
    try {
      return JSON.parse(message.data);
    } catch {
      return null;
    }
  }

  _onPersisted(source, message) {
    if (source !== this.source) return;
    const envelope = this._parse(message);
    if (!envelope) return;
    const id = Number(envelope.id ?? message.lastEventId);
    if (!Number.isFinite(id) || id <= this.lastId) return; // already applied
    if (id !== this.lastId + 1) {
      // The server sends every id in order; a hole means something upstream
      // went wrong.  Ask again from what we have rather than apply out of order.
      // The same hole twice is an event this page cannot read (a type it does
      // not listen for is never delivered to it): asking again would loop, so
      // reload the page's state instead.
      if (this.holeAt === this.lastId) {
        this.holeAt = null;
        this._reload(id);
        return;
      }
      this.holeAt = this.lastId;
      this._scheduleReconnect();
      return;
    }
    this.holeAt = null;
    this.lastId = id;
    try {
      this.onEvent(envelope);
    } catch (error) {
      console.error("applying event", id, error);
    }
  }

  _onEphemeral(source, message) {
    if (source !== this.source) return;
    const envelope = this._parse(message);
    if (envelope) this.onEphemeral(envelope);
  }

  _onReset(source, message) {
    if (source !== this.source) return;
    const envelope = this._parse(message) || {};
    this._reload(Number(envelope.lastEventId) || 0);
  }

  _reload(lastEventId) {
    this.paused = true;
    this._close();
    this.onStatus({ state: "reloading" });
    this.onReset(lastEventId);
  }
}
