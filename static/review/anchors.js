// Between what a reader sees and the Markdown source.
//
// Each passage carries its source range (data-start/data-end).  Inside it the
// rendered text (the passage's text nodes, in order) is aligned with the
// source by walking both: equal characters match, whitespace matches any
// whitespace, and source characters with no rendered counterpart (Markdown
// syntax: `*_[]()#>` and the like) are skipped.  That gives, for every
// rendered character, its offset in the source, which turns a selection into
// an anchor {quote, start, end} on `content` and an anchor back into a range
// to highlight.

const SPACE = /\s/;

export function passageSource(passage, content) {
  return content.slice(Number(passage.dataset.start), Number(passage.dataset.end));
}

function textNodes(root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) nodes.push(node);
  return nodes;
}

// Character references the renderer turns into one character: `&lt;`,
// `&amp;`, `&#60;`, `&#x3C;` and the like.
const REFERENCE = /^&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(amp|lt|gt|quot|apos|nbsp));/;
const NAMED = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

function referenceAt(source, i) {
  const match = REFERENCE.exec(source.slice(i, i + 12));
  if (!match) return null;
  try {
    const ch = match[3] ? NAMED[match[3]]
      : String.fromCodePoint(match[1] ? Number(match[1]) : parseInt(match[2], 16));
    return ch.length === 1 ? { ch, length: match[0].length } : null;
  } catch {
    return null; // not a code point
  }
}

/**
 * For each character of the rendered text, its offset in `source` (or -1),
 * and how many source characters it stands for (more than one for a
 * character reference).
 */
export function align(rendered, source) {
  const map = new Int32Array(rendered.length).fill(-1);
  const span = new Uint8Array(rendered.length).fill(1);
  let i = 0;
  let j = 0;
  while (j < rendered.length && i < source.length) {
    const r = rendered[j];
    const s = source[i];
    const reference = s === "&" ? referenceAt(source, i) : null;
    if (reference && (reference.ch === r || (SPACE.test(r) && SPACE.test(reference.ch)))) {
      map[j] = i;
      span[j] = reference.length;
      i += reference.length;
      j += 1;
    } else if (r === s || (SPACE.test(r) && SPACE.test(s))) {
      map[j] = i;
      i += 1;
      j += 1;
    } else if (SPACE.test(r)) {
      j += 1; // whitespace the renderer added between elements
    } else {
      i += 1; // Markdown syntax that does not render as text
    }
  }
  return { map, span };
}

function alignmentFor(textRoot, source) {
  const nodes = textNodes(textRoot);
  const rendered = nodes.map((n) => n.data).join("");
  return { nodes, rendered, ...align(rendered, source) };
}

function offsetWithin(textRoot, nodes, container, offset) {
  // A DOM boundary point as an offset into the concatenated text nodes.
  if (container.nodeType !== Node.TEXT_NODE) {
    const probe = document.createRange();
    probe.selectNodeContents(textRoot);
    probe.setEnd(container, offset);
    return probe.toString().length;
  }
  let total = 0;
  for (const node of nodes) {
    if (node === container) return total + offset;
    total += node.data.length;
  }
  return total;
}

/**
 * The anchor of the current selection, or null when it is empty or does not
 * lie inside one passage.  {passage, anchor: {quote, start, end}, text}.
 */
export function selectionAnchor(selection, content) {
  if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
  const range = selection.getRangeAt(0);
  const startEl = range.startContainer.nodeType === Node.ELEMENT_NODE
    ? range.startContainer : range.startContainer.parentElement;
  const endEl = range.endContainer.nodeType === Node.ELEMENT_NODE
    ? range.endContainer : range.endContainer.parentElement;
  const textRoot = startEl && startEl.closest(".passage-text");
  if (!textRoot || !endEl || endEl.closest(".passage-text") !== textRoot) return null;
  const passage = textRoot.closest(".passage");
  const source = passageSource(passage, content);
  const { nodes, rendered, map, span } = alignmentFor(textRoot, source);
  let from = offsetWithin(textRoot, nodes, range.startContainer, range.startOffset);
  let to = offsetWithin(textRoot, nodes, range.endContainer, range.endOffset);
  // Trim whitespace and unmatched characters at both ends.
  while (from < to && (SPACE.test(rendered[from]) || map[from] < 0)) from += 1;
  while (to > from && (SPACE.test(rendered[to - 1]) || map[to - 1] < 0)) to -= 1;
  if (from >= to) return null;
  const base = Number(passage.dataset.start);
  const start = base + map[from];
  const end = base + map[to - 1] + span[to - 1];
  return {
    passage,
    text: rendered.slice(from, to),
    anchor: { quote: content.slice(start, end), start, end },
  };
}

/** The anchor of a whole passage (for keyboard users: "comment on this passage"). */
export function passageAnchor(passage, content) {
  const start = Number(passage.dataset.start);
  const end = Number(passage.dataset.end);
  return { quote: content.slice(start, end), start, end };
}

/** The passage whose source range holds offset `at` (or the next one after it). */
export function passageAt(passages, at) {
  let candidate = null;
  for (const passage of passages) {
    const start = Number(passage.dataset.start);
    const end = Number(passage.dataset.end);
    if (at >= start && at < end) return passage;
    if (start >= at && !candidate) candidate = passage;
  }
  return candidate || passages[passages.length - 1] || null;
}

/** Remove every highlight from a passage's text. */
export function clearMarks(textRoot) {
  const marks = textRoot.querySelectorAll("mark.anchor-mark");
  if (!marks.length) return;
  for (const mark of marks) mark.replaceWith(...mark.childNodes);
  textRoot.normalize();
}

/**
 * Wrap the rendered text of source range [start, end) (document offsets) in
 * <mark class="anchor-mark"> elements carrying `key`.  Returns the marks.
 */
export function markRange(passage, content, start, end, key, extraClass = "") {
  const textRoot = passage.querySelector(".passage-text");
  const base = Number(passage.dataset.start);
  const source = passageSource(passage, content);
  const { nodes, map } = alignmentFor(textRoot, source);
  const from = Math.max(0, start - base);
  const to = Math.min(source.length, end - base);
  const marks = [];
  let offset = 0;
  for (const node of nodes) {
    const length = node.data.length;
    let first = -1;
    let last = -1;
    for (let k = 0; k < length; k += 1) {
      const s = map[offset + k];
      if (s >= from && s < to) {
        if (first < 0) first = k;
        last = k;
      }
    }
    offset += length;
    if (first < 0 || !node.data.slice(first, last + 1).trim()) continue;
    const range = document.createRange();
    range.setStart(node, first);
    range.setEnd(node, last + 1);
    const mark = document.createElement("mark");
    mark.className = `anchor-mark ${extraClass}`.trim();
    mark.dataset.key = key;
    range.surroundContents(mark);
    marks.push(mark);
  }
  return marks;
}

/**
 * Where the text `quote` is now: at [start, end) if it is still there, else
 * at its occurrence in `content` nearest to `near` (null when it is gone).
 */
export function findQuote(content, quote, start, end, near = start) {
  if (typeof quote !== "string" || !quote) return null;
  if (typeof start === "number" && content.slice(start, end) === quote) return { start, end };
  let best = -1;
  for (let at = content.indexOf(quote); at >= 0; at = content.indexOf(quote, at + 1)) {
    if (best < 0 || Math.abs(at - near) < Math.abs(best - near)) best = at;
  }
  return best < 0 ? null : { start: best, end: best + quote.length };
}

/**
 * An anchor written on `before`, placed in `after`: its offsets carried over
 * the edit when the edit is entirely before or after it (the common prefix
 * and suffix of the two texts), else its quote found again nearest to where
 * it was.  Null when the quoted text is gone.
 */
export function carryAnchor(anchor, before, after) {
  const { quote, start, end } = anchor;
  if (before === after) return { ...anchor };
  let prefix = 0;
  const limit = Math.min(before.length, after.length);
  while (prefix < limit && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix += 1;
  let suffix = 0;
  while (suffix < limit - prefix
    && before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)) suffix += 1;
  const shift = after.length - before.length;
  let near = start;
  if (end <= prefix) near = start; // the edit is after it
  else if (start >= before.length - suffix) near = start + shift; // the edit is before it
  const found = findQuote(after, quote, near, near + (end - start), near);
  return found ? { ...anchor, ...found } : null;
}
