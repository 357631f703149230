"""The review domain's answer to the event stream's questions (see realtime.access)."""

from __future__ import annotations

import re
from typing import Any

from realtime.access import EventView

from .models import ROLE_RANK, Comment, DiscussionMessage, Document, Membership, Role, Visibility
from .permissions import can_moderate, is_moderator, role_of
from .selectors import document_for

# Audiences: moderators (maintainers and staff moderators) see hidden content
# as hidden; everyone else sees it as deleted.
READER = "reader"
MODERATOR = "moderator"

PATH_SEGMENT = r"[A-Za-z0-9._-]+"
PATH_RE = re.compile(rf"^{PATH_SEGMENT}(/{PATH_SEGMENT})*$")


def is_valid_path(path: str) -> bool:
    """Spec §2: 1-255 chars, segments of [A-Za-z0-9._-] joined by '/', no '.' or '..' segment."""
    if not (1 <= len(path) <= 255) or not PATH_RE.fullmatch(path):
        return False
    return all(segment not in (".", "..") for segment in path.split("/"))


class DocumentStreamPolicy:
    def is_valid_key(self, key: str) -> bool:
        return is_valid_path(key)

    def audiences(self) -> list[str]:
        """Every audience, so the hub's replay ring holds each one's frames."""
        return [READER, MODERATOR]

    def audiences_for(self, users: list[Any], key: str) -> dict[Any, str | None]:
        """``audience_for`` of many users of one key: two queries, not two per user.

        The same rules as ``role_of`` and ``can_moderate``.  The same queries
        run whether the document exists or not: a document one may not read
        answers in the same time as a missing one."""
        if not is_valid_path(key):
            return {user.pk: None for user in users}
        active = [user for user in users if user.is_authenticated and user.is_active]
        roles = dict(Membership.objects.filter(document__path=key, user_id__in=[u.pk for u in active])
                     .values_list("user_id", "role")) if active else {}
        moderators = {user.pk for user in active if user.is_staff and is_moderator(user)}  # staff only
        document = Document.objects.filter(path=key).only("id", "visibility").first()
        out: dict[Any, str | None] = {user.pk: None for user in users}
        if document is None:
            return out
        for user in active:
            role = roles.get(user.pk)
            if document.visibility == Visibility.INTERNAL and ROLE_RANK.get(role, 0) < ROLE_RANK[Role.REVIEWER]:
                role = Role.REVIEWER
            moderator = user.pk in moderators
            if role is None and moderator:
                role = Role.VIEWER
            if role is None:
                continue
            out[user.pk] = MODERATOR if (role == Role.MAINTAINER or moderator) else READER
        return out

    def audience_for(self, user: Any, key: str) -> str | None:
        if not is_valid_path(key):
            return None
        document = document_for(user, path=key)
        if document is None or role_of(user, document) is None:
            return None
        return MODERATOR if can_moderate(user, document) else READER

    def redact(self, audience: str, key: str, events: list[EventView]) -> list[EventView]:
        """Readers see what is hidden *now* (or gone) as deleted.

        A comment that is hidden, whose parent is hidden, or that no longer
        exists reaches readers as ``comment.deleted``; a discussion message
        that is hidden or gone as ``discussion.message.deleted``.  So a replay
        never shows a reader what a moderator has since taken away, while every
        ``seq`` stays in place.  An event recorded while the item was hidden
        stays a deletion even after it is shown again, as readers saw it live;
        the later ``*.updated`` brings it back.
        """
        if audience == MODERATOR:
            return events
        comment_ids = _ids(events, COMMENT_TYPES)
        message_ids = _ids(events, MESSAGE_TYPES)
        unseen_comments = set()
        if comment_ids:
            visible = (Comment.objects.filter(pk__in=comment_ids, hidden=False)
                       .exclude(parent__hidden=True).values_list("pk", flat=True))
            unseen_comments = comment_ids - set(visible)
        unseen_messages = set()
        if message_ids:
            visible = DiscussionMessage.objects.filter(pk__in=message_ids, hidden=False).values_list("pk", flat=True)
            unseen_messages = message_ids - set(visible)
        if not comment_ids and not message_ids:
            return events
        views = []
        for event in events:
            # What was hidden when it happened stays a deletion, as it was live.
            hidden_then = isinstance(event.data, dict) and event.data.get("hidden") is True
            if event.type in COMMENT_TYPES and (_id(event) in unseen_comments or hidden_then):
                event = EventView(event.seq, "comment.deleted", {"id": event.data["id"]})
            elif event.type in MESSAGE_TYPES and (_id(event) in unseen_messages or hidden_then):
                event = EventView(event.seq, "discussion.message.deleted",
                                  {"id": event.data["id"], "discussionId": event.data.get("discussionId")})
            views.append(event)
        return views


COMMENT_TYPES = frozenset({"comment.created", "comment.updated"})
MESSAGE_TYPES = frozenset({"discussion.message", "discussion.message.updated"})


def _id(event: EventView) -> Any:
    return event.data.get("id") if isinstance(event.data, dict) else None


def _ids(events: list[EventView], types: frozenset[str]) -> set[int]:
    return {i for event in events if event.type in types and isinstance(i := _id(event), int)}
