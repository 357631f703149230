"""A document's review, exported: W3C Web Annotation JSON-LD and a Markdown summary.

Hidden comments (and replies to them) are never exported, whoever asks: an
export is a file that travels, and moderation decisions must travel with it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from django.db.models import Count, Q

from .anchoring import ORPHANED
from .models import Comment, Discussion, Document, Suggestion, SuggestionStatus
from .representations import timestamp

ANNOTATION_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
W3C_CONTENT_TYPE = f'application/ld+json; profile="{ANNOTATION_CONTEXT}"'
MARKDOWN_CONTENT_TYPE = "text/markdown; charset=utf-8"


def exported_comments(document: Document) -> list[Comment]:
    """The comments an export shows: not hidden, not replies to hidden ones, oldest first."""
    return list(
        Comment.objects.filter(document=document, hidden=False).exclude(parent__hidden=True)
        .select_related("author").order_by("id")
    )


def _anchor(comment: Comment) -> dict[str, Any] | None:
    return comment.anchor if isinstance(comment.anchor, dict) and comment.anchor.get("quote") else None


def _is_orphaned(anchor: dict[str, Any] | None) -> bool:
    return bool(anchor) and anchor.get("state") == ORPHANED


# --- W3C Web Annotation ---------------------------------------------------------------


def _selectors(anchor: dict[str, Any]) -> list[dict[str, Any]]:
    quote = {"type": "TextQuoteSelector", "exact": anchor["quote"]}
    for key in ("prefix", "suffix"):
        if anchor.get(key):
            quote[key] = anchor[key]
    selectors = [quote]
    start, end = anchor.get("start"), anchor.get("end")
    # An orphaned anchor's offsets point at text that is gone: quote only.
    if isinstance(start, int) and isinstance(end, int) and not _is_orphaned(anchor):
        selectors.append({"type": "TextPositionSelector", "start": start, "end": end})
    return selectors


def annotation(comment: Comment, *, base_url: str, source: str) -> dict[str, Any]:
    """One comment as a W3C Web Annotation (https://www.w3.org/TR/annotation-model/)."""
    body: list[dict[str, Any]] = [
        {"type": "TextualBody", "value": comment.body, "format": "text/plain", "purpose": "commenting"},
    ]
    if comment.resolved:
        body.append({"type": "TextualBody", "value": "resolved", "purpose": "tagging"})
    if comment.parent_id is not None:
        motivation, target = "replying", f"{base_url}/api/comments/{comment.parent_id}/"
    else:
        motivation = "commenting"
        anchor = _anchor(comment)
        target = {"source": source, "selector": _selectors(anchor)} if anchor else source
    return {
        "@context": ANNOTATION_CONTEXT,
        "id": f"{base_url}/api/comments/{comment.pk}/",
        "type": "Annotation",
        "motivation": motivation,
        "creator": {"type": "Person", "nickname": comment.author.get_username(),
                    "name": comment.author.get_full_name() or comment.author.get_username()},
        "created": timestamp(comment.created_at),
        "modified": timestamp(comment.updated_at),
        "body": body,
        "target": target,
    }


def w3c_collection(document: Document, *, base_url: str) -> dict[str, Any]:
    """The document's comments as an AnnotationCollection with one embedded page.

    ``base_url`` (scheme and host, no trailing slash) makes the ids absolute.
    """
    base_url = base_url.rstrip("/")
    source = f"{base_url}/docs/{document.path}"
    collection_id = f"{base_url}/api/documents/{document.pk}/export?format=w3c"
    items = [annotation(comment, base_url=base_url, source=source) for comment in exported_comments(document)]
    for item in items:
        del item["@context"]  # stated once, on the collection
    return {
        "@context": ANNOTATION_CONTEXT,
        "id": collection_id,
        "type": "AnnotationCollection",
        "label": f"Review comments on {document.path} (version {document.version})",
        "total": len(items),
        "first": {"id": f"{collection_id}&page=0", "type": "AnnotationPage", "startIndex": 0, "items": items},
    }


# --- Markdown summary ---------------------------------------------------------------------


def _inline(text: str, limit: int = 0) -> str:
    """User text on one line, unable to start Markdown structure or raw HTML."""
    text = " ".join(text.split())
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("`", "\\`").replace("*", "\\*").replace("_", "\\_") \
        .replace("[", "\\[").replace("]", "\\]").replace("<", "&lt;")


def _indented(text: str, indent: str) -> str:
    lines = text.replace("<", "&lt;").splitlines() or [""]
    return "\n".join(indent + line if line.strip() else "" for line in lines)


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _line_of(content: str, offset: int) -> int:
    return content.count("\n", 0, max(0, min(offset, len(content)))) + 1


def _comment_block(comment: Comment, replies: list[Comment]) -> list[str]:
    state = "resolved" if comment.resolved else "open"
    lines = [f"- **{_inline(comment.author.get_username())}** · {_when(comment.created_at)} · {state}",
             _indented(comment.body, "  ")]
    for reply in replies:
        lines += [f"  - **{_inline(reply.author.get_username())}** · {_when(reply.created_at)}",
                  _indented(reply.body, "    ")]
    return lines


def markdown_summary(document: Document, *, now: datetime | None = None) -> str:
    """A readable summary: comments by passage, orphaned ones with the text they
    were written on, general comments, suggestions and discussions."""
    content = document.content
    comments = exported_comments(document)
    replies: dict[int, list[Comment]] = defaultdict(list)
    for comment in comments:
        if comment.parent_id is not None:
            replies[comment.parent_id].append(comment)
    top = [c for c in comments if c.parent_id is None]
    anchored = [c for c in top if _anchor(c) and not _is_orphaned(_anchor(c))]
    anchored.sort(key=lambda c: (c.anchor.get("start") if isinstance(c.anchor.get("start"), int) else 0, c.pk))
    orphaned = [c for c in top if _is_orphaned(_anchor(c))]
    general = [c for c in top if not _anchor(c)]
    suggestions = list(Suggestion.objects.filter(document=document).select_related("author").order_by("id"))
    discussions = list(Discussion.objects.filter(document=document).annotate(
        shown=Count("messages", filter=Q(messages__hidden=False))).select_related("author").order_by("id"))

    open_count = sum(1 for c in top if not c.resolved)
    by_status = defaultdict(int)
    for suggestion in suggestions:
        by_status[suggestion.status] += 1
    out = [
        f"# Review of {_inline(document.title)}",
        "",
        f"`{document.path}`, version {document.version} · exported {_when(now or datetime.now(timezone.utc))}",
        "",
        f"- Comments: {len(top)} ({open_count} open, {len(top) - open_count} resolved), "
        f"{_count(len(comments) - len(top), 'reply', 'replies')}; {len(orphaned)} orphaned",
        "- Suggestions: " + (", ".join(f"{by_status[s]} {s}" for s in SuggestionStatus.values if by_status[s])
                             or "none"),
        f"- Discussions: {len(discussions)}",
        "",
    ]
    if anchored:
        out += ["## Comments on passages", ""]
        for comment in anchored:
            anchor = comment.anchor
            line = _line_of(content, anchor["start"]) if isinstance(anchor.get("start"), int) else None
            where = f"line {line}" if line else "passage"
            moved = " (moved)" if anchor.get("state") == "moved" else ""
            out += [f"### {where.capitalize()}{moved}: “{_inline(anchor['quote'], 80)}”", ""]
            out += _comment_block(comment, replies[comment.pk]) + [""]
    if orphaned:
        out += ["## Orphaned comments", "", "The text these were written on is no longer in the document.", ""]
        for comment in orphaned:
            quote = comment.anchor.get("originalQuote") or comment.anchor["quote"]
            out += [f"### Was: “{_inline(quote, 80)}”", ""]
            out += _comment_block(comment, replies[comment.pk]) + [""]
    if general:
        out += ["## General comments", ""]
        for comment in general:
            out += _comment_block(comment, replies[comment.pk])
        out.append("")
    if suggestions:
        out += ["## Suggestions", ""]
        for suggestion in suggestions:
            quote = _inline(str((suggestion.anchor or {}).get("quote", "")), 80)
            replacement = _inline(suggestion.replacement, 80) or "(delete)"
            out.append(f"- **{suggestion.status}** · {_inline(suggestion.author.get_username())} · "
                       f"“{quote}” → “{replacement}”")
            if suggestion.note:
                out.append(_indented(suggestion.note, "  "))
        out.append("")
    if discussions:
        out += ["## Discussions", ""]
        for discussion in discussions:
            out.append(f"- {_inline(discussion.title)} · {_inline(discussion.author.get_username())} · "
                       f"{_count(discussion.shown, 'message', 'messages')}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
