"""Finding an anchored passage again after the document changed.

Anchors are W3C Web Annotation style selectors: a ``quote`` with optional
``prefix``/``suffix`` context (TextQuoteSelector) and optional ``start``/``end``
offsets (TextPositionSelector).  Relocation tries the position, then the quote
with its context, then an approximate match of the quote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diff_match_patch import diff_match_patch

CONTEXT_CHARS = 32
EXACT, MOVED, ORPHANED = "exact", "moved", "orphaned"


def with_context(anchor: dict[str, Any], content: str) -> dict[str, Any]:
    """The anchor with prefix/suffix filled in from ``content`` where missing."""
    anchor = dict(anchor)
    start, end = anchor.get("start"), anchor.get("end")
    if isinstance(start, int) and isinstance(end, int):
        anchor.setdefault("prefix", content[max(0, start - CONTEXT_CHARS):start])
        anchor.setdefault("suffix", content[end:end + CONTEXT_CHARS])
    return anchor


def _occurrences(content: str, quote: str) -> list[int]:
    found, at = [], content.find(quote)
    while at != -1 and len(found) < 1000:
        found.append(at)
        at = content.find(quote, at + 1)
    return found


def find_unambiguous(anchor: dict[str, Any], content: str) -> tuple[int, int] | None:
    """Where the quoted text is now, if that can be said without doubt.

    The recorded position if the quote is still there; else the only
    occurrence of the quote; else the only one whose prefix and suffix match.
    """
    quote = anchor.get("quote") or ""
    if not quote:
        return None
    start, end = anchor.get("start"), anchor.get("end")
    if isinstance(start, int) and isinstance(end, int) and content[start:end] == quote:
        return start, end
    hits = _occurrences(content, quote)
    if len(hits) == 1:
        return hits[0], hits[0] + len(quote)
    prefix, suffix = anchor.get("prefix") or "", anchor.get("suffix") or ""
    if not hits or not (prefix or suffix):
        return None
    matching = [
        at for at in hits
        if content[max(0, at - len(prefix)):at] == prefix and content[at + len(quote):at + len(quote) + len(suffix)] == suffix
    ]
    if len(matching) == 1:
        return matching[0], matching[0] + len(quote)
    return None


@dataclass
class Relocation:
    anchor: dict[str, Any]
    state: str
    confidence: float


def map_through_edit(start: int, end: int, old: str, new: str) -> tuple[int, int]:
    """Where offsets ``start``/``end`` of ``old`` land in ``new``."""
    dmp = diff_match_patch()
    dmp.Diff_Timeout = 0.5
    diffs = dmp.diff_main(old, new, False)
    return dmp.diff_xIndex(diffs, start), dmp.diff_xIndex(diffs, end)


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two half-open ranges share a character (or are the same point)."""
    return (a[0] < b[1] and b[0] < a[1]) or a == b


def relocate(anchor: dict[str, Any], content: str, *, old_content: str | None = None) -> Relocation:
    """The anchor placed in the new ``content``, with its state and confidence.

    With ``old_content`` the position is first carried through the edit, so
    an unchanged passage stays with its own occurrence of a repeated quote.
    """
    quote = anchor.get("quote") or ""
    start, end = anchor.get("start"), anchor.get("end")
    found = None
    if old_content is not None and isinstance(start, int) and isinstance(end, int) and quote:
        mapped = map_through_edit(start, end, old_content, content)
        if content[mapped[0]:mapped[1]] == quote:
            found = mapped
    if found is None:
        found = find_unambiguous(anchor, content)
    if found is not None:
        start, end = found
        state = EXACT if (start, end) == (anchor.get("start"), anchor.get("end")) else MOVED
        new = dict(anchor, start=start, end=end, prefix=content[max(0, start - CONTEXT_CHARS):start],
                   suffix=content[end:end + CONTEXT_CHARS])
        return Relocation(new, state, 1.0)
    if quote and len(quote) <= 32 * 8:
        dmp = diff_match_patch()
        dmp.Match_Threshold = 0.3
        dmp.Match_Distance = max(1000, len(content))
        expected = anchor.get("start") if isinstance(anchor.get("start"), int) else 0
        # Match on the quote's head (diff-match-patch matches up to 32 chars).
        head = quote[:32]
        at = dmp.match_main(content, head, min(max(expected, 0), len(content)))
        if at != -1:
            end = min(len(content), at + len(quote))
            candidate = content[at:end]
            diffs = dmp.diff_main(quote, candidate)
            distance = dmp.diff_levenshtein(diffs)
            confidence = max(0.0, 1.0 - distance / max(len(quote), 1))
            if confidence >= 0.6:
                new = dict(anchor, start=at, end=end, quote=candidate,
                           prefix=content[max(0, at - CONTEXT_CHARS):at], suffix=content[end:end + CONTEXT_CHARS])
                return Relocation(new, MOVED, round(confidence, 2))
    return Relocation(dict(anchor), ORPHANED, 0.0)
