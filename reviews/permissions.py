"""One predicate per question, used by the API, the pages and the event stream."""

from __future__ import annotations

from typing import Any

from .models import ROLE_RANK, Document, Role, Visibility

MODERATE_PERMISSION = "reviews.moderate_content"


def is_moderator(user: Any) -> bool:
    """Staff holding ``reviews.moderate_content``: read and moderate every document."""
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm(MODERATE_PERMISSION))


def role_of(user: Any, document: Document) -> str | None:
    """The user's effective role on ``document``, or None when they may not read it.

    A member has their role; on an internal document every signed-in user is at
    least a reviewer; a moderator who is not a member reads as a viewer.
    """
    if not user.is_authenticated or not user.is_active:
        return None
    cached = getattr(document, "_role_cache", {})
    if user.pk in cached:
        return cached[user.pk]
    return remember_role(user, document, document.memberships.filter(user=user).values_list("role", flat=True).first())


def remember_role(user: Any, document: Document, member_role: str | None) -> str | None:
    """``role_of`` from the user's membership role (None: not a member), read
    by the caller; kept on ``document`` for the request's later checks."""
    if not user.is_authenticated or not user.is_active:
        return None
    role = member_role
    if document.visibility == Visibility.INTERNAL and ROLE_RANK.get(role, 0) < ROLE_RANK[Role.REVIEWER]:
        role = Role.REVIEWER
    if role is None and is_moderator(user):
        role = Role.VIEWER
    cached = getattr(document, "_role_cache", {})
    cached[user.pk] = role
    document._role_cache = cached
    return role


def can_read(user: Any, document: Document) -> bool:
    return role_of(user, document) is not None


def can_review(user: Any, document: Document) -> bool:
    return ROLE_RANK.get(role_of(user, document), 0) >= ROLE_RANK[Role.REVIEWER]


def can_maintain(user: Any, document: Document) -> bool:
    return role_of(user, document) == Role.MAINTAINER


def can_moderate(user: Any, document: Document) -> bool:
    """Hide, unhide or delete anyone's content, and see hidden content."""
    return can_maintain(user, document) or is_moderator(user)


def can_edit_own(user: Any, document: Document, author_id: int) -> bool:
    """Authors edit their own content while they may still review the document."""
    return user.pk == author_id and can_review(user, document)
