"""Reads that depend on who is asking.  Every list and lookup goes through these."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from .models import Comment, Discussion, DiscussionMessage, Document, Membership, Suggestion, Visibility
from .permissions import can_moderate, can_read, is_moderator, role_of


def documents_visible_to(user: Any) -> QuerySet[Document]:
    """Documents ``user`` may read, with ``member_role`` annotated (None: not a member)."""
    if not user.is_authenticated or not user.is_active:
        return Document.objects.none()
    role = Membership.objects.filter(document=OuterRef("pk"), user=user).values("role")[:1]
    qs = Document.objects.select_related("stream").annotate(member_role=Subquery(role))
    if is_moderator(user):
        return qs
    return qs.filter(Q(visibility=Visibility.INTERNAL) | Q(memberships__user=user)).distinct()


def document_for(user: Any, *, path: str | None = None, pk: Any = None) -> Document | None:
    """The readable document with that path or id, or None (missing and hidden alike).

    One lookup by a unique key and one membership query (``role_of``, whose
    answer stays cached on the document for the request's later checks):
    this runs on every write.
    """
    if path is None and not str(pk).isdigit():
        return None
    lookup = {"path": path} if path is not None else {"pk": pk}
    document = Document.objects.select_related("stream").filter(**lookup).first()
    if document is None or role_of(user, document) is None:
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


def comment_for(user: Any, pk: Any) -> Comment | None:
    """The comment with id ``pk`` if ``user`` may see it, else None (missing and hidden alike)."""
    if not str(pk).isdigit():
        return None
    comment = Comment.objects.select_related("document__stream", "author").filter(pk=pk).first()
    if comment is None or not can_read(user, comment.document):
        return None
    if not comments_visible_to(user, comment.document).filter(pk=comment.pk).exists():
        return None
    return comment


def suggestions_visible_to(user: Any, document: Document) -> QuerySet[Suggestion]:
    return Suggestion.objects.filter(document=document).select_related("author", "document")


def discussions_visible_to(user: Any, document: Document) -> QuerySet[Discussion]:
    return Discussion.objects.filter(document=document).select_related("author", "document")


def messages_visible_to(user: Any, discussion: Discussion) -> QuerySet[DiscussionMessage]:
    qs = DiscussionMessage.objects.filter(discussion=discussion).select_related("author")
    if not can_moderate(user, discussion.document):
        qs = qs.filter(hidden=False)
    return qs
