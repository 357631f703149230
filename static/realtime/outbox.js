// Writes that must survive a bad network: new comments and messages.
//
// Each write is queued in localStorage *before* it is sent (so it survives a
// reload), carries its own Idempotency-Key chosen once, and is sent strictly
// in order.  A network error, 408, 429 or 5xx stops the queue and retries it
// later with backoff, with the same key, so the server applies it once.  Any
// other error drops that write and reports it.

import { ApiError, isTransient, request } from "./api.js";
import { backoffDelay } from "./backoff.js";

function randomKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Outbox {
  /**
   * @param {object} options
   * @param {string} options.storageKey       one queue per user and document
   * @param {(item, result) => void} options.onSent
   * @param {(item, error) => void} options.onFailed   a write the server refused for good
   * @param {() => void} options.onChange              the queue or its state changed
   */
  constructor({ storageKey, onSent, onFailed, onChange, send = request }) {
    this.storageKey = storageKey;
    this.onSent = onSent || (() => {});
    this.onFailed = onFailed || (() => {});
    this.onChange = onChange || (() => {});
    this.send = send;
    this.flushing = false;
    this.timer = null;
    this.attempt = 0;
    this.sendingKey = null;
    this.waiting = false;
    window.addEventListener("storage", (event) => {
      if (event.key === this.storageKey) this.onChange();
    });
  }

  items() {
    try {
      const raw = window.localStorage.getItem(this.storageKey);
      const items = raw ? JSON.parse(raw) : [];
      return Array.isArray(items) ? items : [];
    } catch {
      return [];
    }
  }

  _save(items) {
    try {
      if (items.length) window.localStorage.setItem(this.storageKey, JSON.stringify(items));
      else window.localStorage.removeItem(this.storageKey);
    } catch (error) {
      console.warn("outbox not saved", error);
    }
  }

  _remove(key) {
    this._save(this.items().filter((item) => item.key !== key));
  }

  /** Queue a POST of `body` to `url`; `meta` is what the page needs to show it as pending. */
  enqueue({ kind, url, body, meta }) {
    const item = { key: randomKey(), kind, url, body, meta: meta || {}, queuedAt: new Date().toISOString() };
    this._save([...this.items(), item]);
    this.onChange();
    this.flush();
    return item;
  }

  /** Forget a write that cannot be sent (the user discarded it). */
  discard(key) {
    this._remove(key);
    this.onChange();
  }

  /** Send what is queued, now (coming back online, the stream reopened). */
  flushNow() {
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.flush();
  }

  async flush() {
    if (this.flushing || this.timer) return;
    this.flushing = true;
    try {
      if (navigator.locks && navigator.locks.request) {
        // Two tabs of the same user share the queue: one sends at a time.
        await navigator.locks.request(`outbox:${this.storageKey}`, () => this._drain());
      } else {
        await this._drain();
      }
    } finally {
      this.flushing = false;
    }
  }

  async _drain() {
    for (;;) {
      const [item] = this.items();
      if (!item) {
        this.waiting = false;
        this.onChange();
        return;
      }
      this.sendingKey = item.key;
      this.onChange();
      let result;
      try {
        result = await this.send("POST", item.url, { body: item.body, idempotencyKey: item.key });
      } catch (error) {
        this.sendingKey = null;
        if (isTransient(error)) {
          this.waiting = true;
          const retryAfter = error instanceof ApiError ? error.retryAfterMs : null;
          const delay = Math.max(retryAfter || 0, backoffDelay(this.attempt, { base: 1000 }));
          this.attempt += 1;
          this.timer = setTimeout(() => {
            this.timer = null;
            this.flush();
          }, delay);
          this.onChange();
          return;
        }
        this._remove(item.key);
        this.onFailed(item, error);
        continue;
      }
      this.sendingKey = null;
      this.attempt = 0;
      this.waiting = false;
      this._remove(item.key);
      this.onSent(item, result);
    }
  }
}
