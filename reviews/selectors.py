"""Reads that depend on who is asking.  Every list and lookup goes through these."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from docreview.prepared import PreparedQuery

from .models import Comment, Discussion, DiscussionMessage, Document, Membership, Suggestion, Visibility
from .permissions import can_moderate, is_moderator, remember_role


def documents_visible_to(user: Any) -> QuerySet[Document]:
    """Documents ``user`` may read, with ``member_role`` annotated (None: not a member)."""
    if not user.is_authenticated or not user.is_active:
        return Document.objects.none()
    role = Membership.objects.filter(document=OuterRef("pk"), user=user).values("role")[:1]
    qs = Document.objects.select_related("stream").annotate(member_role=Subquery(role))
    if is_moderator(user):
        return qs
    return qs.filter(Q(visibility=Visibility.INTERNAL) | Q(memberships__user=user)).distinct()


def _document_with_role(lookup: str):
    """The document by ``lookup`` (path or pk), with the member role of a user."""
    def build(value: Any, user_id: int) -> QuerySet[Document]:
        role = Membership.objects.filter(document=OuterRef("pk"), user_id=user_id).values("role")[:1]
        return Document.objects.select_related("stream").filter(**{lookup: value}).annotate(member_role=Subquery(role))

    return build


_DOCUMENT_BY_PATH = PreparedQuery(_document_with_role("path"), "\0document-path\0", -7_000_001)
_DOCUMENT_BY_PK = PreparedQuery(_document_with_role("pk"), -7_000_002, -7_000_001)
MAX_PK = 2**63 - 1


def as_pk(value: Any) -> int | None:
    """``value`` as a primary key, or None: ASCII digits only (``"²".isdigit()``
    is true) and within a 64-bit column."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > MAX_PK:
        return None
    return int(text)


def document_for(user: Any, *, path: str | None = None, pk: Any = None) -> Document | None:
    """The readable document with that path or id, or None (missing and hidden alike).

    One query for the document and the user's membership (compiled once:
    this runs on every write); the role stays cached on the document for the
    request's later checks.
    """
    if not user.is_authenticated or not user.is_active:
        return None
    if path is not None:
        document = _DOCUMENT_BY_PATH.first(path, user.pk)
    elif (key := as_pk(pk)) is not None:
        document = _DOCUMENT_BY_PK.first(key, user.pk)
    else:
        return None
    if document is None or remember_role(user, document, document.member_role) is None:
        return None
    return document


def with_open_comment_counts(qs: QuerySet[Document]) -> QuerySet[Document]:
    return qs.annotate(
        open_comments=Count("comments", filter=Q(comments__resolved=False, comments__hidden=False,
                                                 comments__parent__isnull=True), distinct=True)
    )


def comments_visible_to(user: Any, document: Document) -> QuerySet[Comment]:
    qs = Comment.objects.filter(document=document).select_related("author", "document")
    if not can_moderate(user, document):
        qs = qs.filter(hidden=False).exclude(parent__hidden=True)
    return qs


def _readable(user: Any, queryset: QuerySet, pk: Any, document: str) -> Any | None:
    """The object with id ``pk`` from ``queryset`` if ``user`` may read its
    document (reached through ``document``, e.g. ``"discussion__document"``),
    else None.

    One query whatever the answer, the user's membership role read with the
    object: a missing id and one on a document the user may not read cost
    the same, so the time to answer does not tell them apart either.
    """
    key = as_pk(pk)
    if key is None or not user.is_authenticated or not user.is_active:
        return None
    role = Membership.objects.filter(document=OuterRef(f"{document}_id"), user_id=user.pk).values("role")[:1]
    obj = queryset.annotate(member_role=Subquery(role)).filter(pk=key).first()
    if obj is None:
        return None
    owner = obj
    for name in document.split("__"):
        owner = getattr(owner, name)
    if remember_role(user, owner, obj.member_role) is None:
        return None
    return obj


def comment_for(user: Any, pk: Any) -> Comment | None:
    """The comment with id ``pk`` if ``user`` may see it, else None (missing and hidden alike)."""
    comment = _readable(user, Comment.objects.select_related("document__stream", "author", "parent"), pk, "document")
    if comment is None:
        return None
    hidden = comment.hidden or (comment.parent_id is not None and comment.parent.hidden)
    if hidden and not can_moderate(user, comment.document):
        return None
    return comment


def suggestion_for(user: Any, pk: Any) -> Suggestion | None:
    return _readable(user, Suggestion.objects.select_related("document__stream", "author"), pk, "document")


def discussion_for(user: Any, pk: Any) -> Discussion | None:
    return _readable(user, Discussion.objects.select_related("document__stream", "author"), pk, "document")


def message_for(user: Any, pk: Any) -> DiscussionMessage | None:
    """The discussion message with id ``pk`` if ``user`` may see it (hidden
    ones only to moderators of its document), else None."""
    message = _readable(user, DiscussionMessage.objects.select_related("discussion__document__stream", "author"),
                        pk, "discussion__document")
    if message is None or (message.hidden and not can_moderate(user, message.discussion.document)):
        return None
    return message


def suggestions_visible_to(user: Any, document: Document) -> QuerySet[Suggestion]:
    return Suggestion.objects.filter(document=document).select_related("author", "document")


def discussions_visible_to(user: Any, document: Document) -> QuerySet[Discussion]:
    return Discussion.objects.filter(document=document).select_related("author", "document")


def document_messages_visible_to(user: Any, document: Document) -> QuerySet[DiscussionMessage]:
    """Every message of every discussion of ``document`` that ``user`` may see, in one query."""
    qs = DiscussionMessage.objects.filter(discussion__document=document).select_related("author")
    if not can_moderate(user, document):
        qs = qs.filter(hidden=False)
    return qs


def messages_visible_to(user: Any, discussion: Discussion) -> QuerySet[DiscussionMessage]:
    qs = DiscussionMessage.objects.filter(discussion=discussion).select_related("author")
    if not can_moderate(user, discussion.document):
        qs = qs.filter(hidden=False)
    return qs
