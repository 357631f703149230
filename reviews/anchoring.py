"""Finding an anchored passage again after the document changed.

Anchors are W3C Web Annotation style selectors: a ``quote`` with optional
``prefix``/``suffix`` context (TextQuoteSelector) and optional ``start``/``end``
offsets (TextPositionSelector).  Relocation tries, in order:

1. the position carried through the edit (a diff of the old and new content),
   if the quote is still exactly there;
2. the quote alone if it occurs once, else the one occurrence whose prefix and
   suffix match;
3. an approximate match: the text the edit turned the passage into, or a
   fuzzy search for the quote near where it was (diff-match-patch), whichever
   is closer to the quote, if it is close enough.

The result is ``exact`` (same place, same text), ``moved`` (found elsewhere,
or found changed: then ``confidence`` < 1 says how similar the text is) or
``orphaned`` (not found: the anchor keeps its last known quote and offsets,
which no longer point at anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diff_match_patch import diff_match_patch

CONTEXT_CHARS = 32
EXACT, MOVED, ORPHANED = "exact", "moved", "orphaned"
# An approximate match below this similarity is no match at all.
MIN_SIMILARITY = 0.6
# The fuzzy search looks this far either side of where the passage was; an
# unchanged passage is found anywhere by the exact search before it.
FUZZY_WINDOW = 20_000
# diff-match-patch's bitap matcher takes patterns up to this length.
MATCH_BITS = 32


def with_context(anchor: dict[str, Any], content: str) -> dict[str, Any]:
    """The anchor with prefix/suffix filled in from ``content`` where missing."""
    anchor = dict(anchor)
    start, end = anchor.get("start"), anchor.get("end")
    if isinstance(start, int) and isinstance(end, int):
        anchor.setdefault("prefix", content[max(0, start - CONTEXT_CHARS):start])
        anchor.setdefault("suffix", content[end:end + CONTEXT_CHARS])
    return anchor


def _position(anchor: dict[str, Any]) -> tuple[int, int] | None:
    start, end = anchor.get("start"), anchor.get("end")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end:
        return start, end
    return None


def _occurrences(content: str, quote: str) -> list[int]:
    found, at = [], content.find(quote)
    while at != -1 and len(found) < 1000:
        found.append(at)
        at = content.find(quote, at + 1)
    return found


def find_unambiguous(anchor: dict[str, Any], content: str, *, trust_position: bool = True) -> tuple[int, int] | None:
    """Where the quoted text is now, if that can be said without doubt.

    The recorded position if the quote is still there (unless
    ``trust_position`` is false: the offsets belong to another version); else
    the only occurrence of the quote; else the only one whose prefix and
    suffix match.
    """
    quote = anchor.get("quote") or ""
    if not quote:
        return None
    position = _position(anchor)
    if trust_position and position is not None and content[position[0]:position[1]] == quote:
        return position
    hits = _occurrences(content, quote)
    if len(hits) == 1:
        return hits[0], hits[0] + len(quote)
    prefix, suffix = anchor.get("prefix") or "", anchor.get("suffix") or ""
    if not hits or not (prefix or suffix):
        return None
    matching = [
        at for at in hits
        if content[max(0, at - len(prefix)):at] == prefix
        and content[at + len(quote):at + len(quote) + len(suffix)] == suffix
    ]
    if len(matching) == 1:
        return matching[0], matching[0] + len(quote)
    return None


def replacement_in_place(anchor: dict[str, Any], replacement: str, content: str) -> bool:
    """Whether ``content`` already reads ``replacement`` where the anchor's quote stood.

    True when the replacement stands between the anchor's prefix and suffix
    exactly once (a suggestion someone applied by hand, or approved twice).
    """
    prefix, suffix = anchor.get("prefix") or "", anchor.get("suffix") or ""
    if not (prefix or suffix) or replacement == anchor.get("originalQuote", anchor.get("quote")):
        return False
    return len(_occurrences(content, prefix + replacement + suffix)) == 1


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two half-open ranges share a character (or are the same point)."""
    return (a[0] < b[1] and b[0] < a[1]) or a == b


class Edit:
    """One change of a document's content, diffed once and used for every anchor."""

    def __init__(self, old: str, new: str, *, timeout: float = 0.5) -> None:
        self.old, self.new = old, new
        self._dmp = diff_match_patch()
        self._dmp.Diff_Timeout = timeout
        self.diffs = self._dmp.diff_main(old, new, True)

    def map(self, start: int, end: int) -> tuple[int, int]:
        """Where offsets ``start``/``end`` of the old content land in the new one.

        Text inserted exactly at a boundary falls outside the range at its
        start and inside it at its end; a deleted range maps to a point.
        """
        new_start = self._dmp.diff_xIndex(self.diffs, start)
        new_end = max(new_start, self._dmp.diff_xIndex(self.diffs, end))
        return new_start, new_end


@dataclass
class Relocation:
    anchor: dict[str, Any]
    state: str
    confidence: float


def similarity(a: str, b: str) -> float:
    """1 for equal texts, falling to 0 with their edit distance."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    dmp = diff_match_patch()
    dmp.Diff_Timeout = 0.1
    distance = dmp.diff_levenshtein(dmp.diff_main(a, b, False))
    return max(0.0, 1.0 - distance / max(len(a), len(b)))


def _fuzzy_search(quote: str, content: str, near: int) -> tuple[int, int] | None:
    """The passage most like ``quote`` near offset ``near``: its head and tail
    located separately so a passage that grew or shrank is taken whole."""
    lo = max(0, near - FUZZY_WINDOW)
    window = content[lo:near + FUZZY_WINDOW + len(quote)]
    if not window:
        return None
    dmp = diff_match_patch()
    dmp.Match_Threshold = 0.3
    dmp.Match_Distance = FUZZY_WINDOW
    head = quote[:MATCH_BITS]
    at = dmp.match_main(window, head, min(max(near - lo, 0), len(window)))
    if at == -1:
        return None
    end = at + len(quote)
    if len(quote) > MATCH_BITS:
        tail = quote[-MATCH_BITS:]
        tail_at = dmp.match_main(window, tail, min(max(end - len(tail), 0), len(window)))
        if tail_at != -1 and tail_at + len(tail) > at and tail_at + len(tail) - at <= 2 * len(quote):
            end = tail_at + len(tail)
    return lo + at, lo + min(end, len(window))


def _placed(anchor: dict[str, Any], content: str, start: int, end: int) -> dict[str, Any]:
    placed = dict(anchor, start=start, end=end, prefix=content[max(0, start - CONTEXT_CHARS):start],
                  suffix=content[end:end + CONTEXT_CHARS])
    quote = content[start:end]
    if quote != anchor.get("quote"):
        # The text changed under the comment: remember what it was written on.
        placed.setdefault("originalQuote", anchor.get("quote") or "")
        placed["quote"] = quote
    if placed.get("originalQuote") == quote:
        del placed["originalQuote"]
    return placed


def relocate(anchor: dict[str, Any], content: str, *, old_content: str | None = None,
             edit: Edit | None = None) -> Relocation:
    """The anchor placed in the new ``content``, with its state and confidence.

    With ``edit`` (or ``old_content``, diffed here) the position is first
    carried through the edit, so an unchanged passage stays with its own
    occurrence of a repeated quote; the recorded offsets are not trusted on
    their own since they belong to the old content.
    """
    if edit is None and old_content is not None:
        edit = Edit(old_content, content)
    quote = anchor.get("quote") or ""
    position = _position(anchor)
    mapped = edit.map(*position) if edit is not None and position is not None else None

    def result(start: int, end: int, confidence: float) -> Relocation:
        same_place = position is None or (start, end) == position
        state = EXACT if same_place and confidence == 1.0 else MOVED
        return Relocation(_placed(anchor, content, start, end), state, round(confidence, 2))

    # 1. The position through the edit, or unchanged when there was no edit.
    here = mapped if edit is not None else position
    if here is not None and (not quote or content[here[0]:here[1]] == quote):
        return result(*here, 1.0)
    if not quote:
        return Relocation(dict(anchor), ORPHANED, 0.0)
    # 2. The quote, with its context if it occurs more than once.
    found = find_unambiguous(anchor, content, trust_position=edit is None)
    if found is not None:
        return result(*found, 1.0)
    # 3. Approximately: what the edit made of the passage, or a fuzzy search.
    candidates = []
    if mapped is not None and mapped[1] > mapped[0]:
        candidates.append(mapped)
    near = (mapped or position or (0, 0))[0]
    searched = _fuzzy_search(quote, content, min(near, len(content)))
    if searched is not None:
        candidates.append(searched)
    best, best_score = None, 0.0
    for start, end in candidates:
        score = similarity(quote, content[start:end])
        if score > best_score:
            best, best_score = (start, end), score
    if best is not None and best_score >= MIN_SIMILARITY:
        return result(*best, min(best_score, 0.99))
    return Relocation(dict(anchor), ORPHANED, 0.0)
