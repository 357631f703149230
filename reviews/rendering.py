"""Markdown to sanitised HTML, one passage per top-level block.

The review page shows each block of the source beside the comments anchored in
it, so the document is split into blocks that remember their character range
in ``content``: the browser maps a selection back to source offsets (the
anchors' ``start``/``end``) inside one passage.  Each block is rendered with
Python-Markdown and cleaned with nh3; only the wrapper this module writes
carries attributes of ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import markdown
import nh3

EXTENSIONS = ["fenced_code", "tables", "sane_lists"]

FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
LIST_RE = re.compile(r"^ {0,3}([*+-]|\d{1,9}[.)])\s")
REFERENCE_RE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S")

ALLOWED_TAGS = set(nh3.ALLOWED_TAGS) - {"map", "area"}
ALLOWED_ATTRIBUTES = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"align", "colspan", "rowspan"},
    "td": {"align", "colspan", "rowspan"},
    "ol": {"start"},
    "code": {"class"},
}


@dataclass(frozen=True)
class Block:
    """One top-level block: ``content[start:end]`` is its source."""

    start: int
    end: int
    source: str


def split_blocks(content: str) -> list[Block]:
    """Top-level blocks separated by blank lines, keeping fenced code and lists whole.

    A fence runs to its closing fence whatever it holds; a block that starts
    indented or with a list marker right after a list continues that list, so
    a loose list stays one list (its numbering intact).
    """
    blocks: list[Block] = []
    lines = content.splitlines(keepends=True)
    offset = 0
    current_start: int | None = None
    current_end = 0
    fence: str | None = None
    last_was_list = False
    pending_join = False

    def close() -> None:
        nonlocal current_start
        if current_start is not None:
            blocks.append(Block(current_start, current_end, content[current_start:current_end]))
        current_start = None

    for line in lines:
        stripped = line.rstrip("\r\n")
        line_start, offset = offset, offset + len(line)
        if fence is not None:
            current_end = line_start + len(stripped)
            if stripped.strip().startswith(fence) and stripped.strip().strip(fence[0]) == "":
                fence = None
            continue
        if not stripped.strip():
            if current_start is not None:
                pending_join = last_was_list
                close()
            continue
        continues_list = pending_join and (line[:1] in (" ", "\t") or bool(LIST_RE.match(line)))
        if current_start is None:
            if continues_list and blocks:
                previous = blocks.pop()
                current_start = previous.start
            else:
                current_start = line_start
                last_was_list = bool(LIST_RE.match(line))
        pending_join = False
        current_end = line_start + len(stripped)
        match = FENCE_RE.match(stripped)
        if match:
            fence = match.group(1)
    close()
    return blocks


def _references(content: str) -> str:
    """Reference-style link definitions, appended to every block so its links resolve."""
    found = [line for line in content.splitlines() if REFERENCE_RE.match(line)]
    return "\n\n" + "\n".join(found) if found else ""


def _clean(html: str) -> str:
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")


def render_block(source: str, references: str = "") -> str:
    """One block's sanitised HTML."""
    md = markdown.Markdown(extensions=EXTENSIONS, output_format="html")
    return _clean(md.convert(source + references))


@lru_cache(maxsize=64)
def render_passages(content: str) -> str:
    """The whole document as passages: ``<div class="passage" data-start data-end>``.

    Cached by content: every reader of a version sees the same HTML.
    """
    references = _references(content)
    parts = []
    for block in split_blocks(content):
        html = render_block(block.source, references)
        if not html.strip():
            continue
        parts.append(
            f'<div class="passage" data-start="{block.start}" data-end="{block.end}">'
            f'<div class="passage-text">{html}</div>'
            f'<div class="passage-notes"></div>'
            f"</div>"
        )
    if not parts:
        parts.append('<div class="passage passage-empty" data-start="0" data-end="0">'
                     '<div class="passage-text"><p class="muted">This document is empty.</p></div>'
                     '<div class="passage-notes"></div></div>')
    return "\n".join(parts)
