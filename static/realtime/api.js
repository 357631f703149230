// fetch() for the JSON API with the session cookie: CSRF header on writes,
// an optional Idempotency-Key, and errors that say whether a retry can help.

export class ApiError extends Error {
  constructor(status, body, retryAfterMs) {
    super(describeBody(body) || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
  }
}

export class NetworkError extends Error {
  constructor(message) {
    super(message || "Network unavailable");
    this.name = "NetworkError";
  }
}

function describeBody(body) {
  if (!body || typeof body !== "object") return "";
  if (typeof body.detail === "string") return body.detail;
  const parts = [];
  for (const [field, messages] of Object.entries(body)) {
    const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
    parts.push(field === "non_field_errors" ? text : `${field}: ${text}`);
  }
  return parts.join("; ");
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return cookie("csrftoken") || (meta ? meta.content : "");
}

function retryAfterMs(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/** A request to the API; resolves to the JSON body (null for 204). */
export async function request(method, url, { body, idempotencyKey, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  let response;
  let text;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
    text = await response.text();
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new NetworkError(error && error.message);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data, retryAfterMs(response.headers.get("Retry-After")));
  return data;
}

/** Every page of a cursor-paginated list. */
export async function getAll(url) {
  const items = [];
  let next = url;
  while (next) {
    const page = await request("GET", next);
    if (Array.isArray(page)) return page;
    items.push(...(page.results || []));
    next = page.next;
  }
  return items;
}

/** Whether the same request may succeed later: no network, 408, 429 or 5xx. */
export function isTransient(error) {
  if (error instanceof NetworkError) return true;
  if (error instanceof ApiError) return error.status === 408 || error.status === 429 || error.status >= 500;
  return false;
}

export function describeError(error) {
  if (error instanceof NetworkError) return "You appear to be offline.";
  if (error instanceof ApiError) {
    if (error.status === 403) return "You do not have permission to do that.";
    if (error.status === 404) return "That no longer exists.";
    if (error.status === 429) return "Too many changes at once; try again in a moment.";
    if (error.status >= 500) return "The server is having trouble; try again in a moment.";
    return error.message;
  }
  return String(error && error.message ? error.message : error);
}
