// Building DOM without HTML strings: every piece of user text goes in as a
// text node (append/textContent), never through innerHTML.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "hidden" || key === "disabled" || key === "value" || key === "checked") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function initials(name) {
  return (name || "?").slice(0, 1).toUpperCase();
}

// A stable hue per user, as a class name (inline styles are not allowed).
export function hueClass(name) {
  let hash = 0;
  for (const ch of name || "") hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hue-${hash % 8}`;
}

export function avatar(name, extra = "") {
  return h("span", { class: `avatar ${hueClass(name)} ${extra}`.trim(), "aria-hidden": "true" }, initials(name));
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function relativeTime(iso) {
  if (!iso) return "";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((then - Date.now()) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (Math.abs(minutes) < 60) return relative.format(minutes, "minute");
  const hours = Math.round(minutes / 60);
  if (Math.abs(hours) < 24) return relative.format(hours, "hour");
  return absolute.format(new Date(then));
}

export function timeEl(iso) {
  const el = h("time", { datetime: iso || "", "data-rel": "" }, relativeTime(iso));
  if (iso) el.title = absolute.format(new Date(Date.parse(iso)));
  return el;
}

export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-rel]")) setText(el, relativeTime(el.getAttribute("datetime")));
}

/** Keep `container`'s children equal to `elements`, in order, moving only what is misplaced. */
export function reconcile(container, elements) {
  let index = 0;
  for (const el of elements) {
    const current = container.children[index];
    if (current !== el) container.insertBefore(el, current || null);
    index += 1;
  }
  while (container.children.length > elements.length) container.lastElementChild.remove();
}
