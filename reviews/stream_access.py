"""The review domain's answer to the event stream's questions (see realtime.access)."""

from __future__ import annotations

import re
from typing import Any

from realtime.access import EventView

from .models import Comment
from .permissions import can_moderate, role_of
from .selectors import document_for

# Audiences: moderators (maintainers and staff moderators) see hidden content
# as hidden; everyone else sees it as deleted.
READER = "reader"
MODERATOR = "moderator"

PATH_SEGMENT = r"[A-Za-z0-9._-]+"
PATH_RE = re.compile(rf"^{PATH_SEGMENT}(/{PATH_SEGMENT})*$")


def is_valid_path(path: str) -> bool:
    """Spec §2: 1-255 chars, segments of [A-Za-z0-9._-] joined by '/', no '.' or '..' segment."""
    if not (1 <= len(path) <= 255) or not PATH_RE.match(path):
        return False
    return all(segment not in (".", "..") for segment in path.split("/"))


class DocumentStreamPolicy:
    def is_valid_key(self, key: str) -> bool:
        return is_valid_path(key)

    def audience_for(self, user: Any, key: str) -> str | None:
        if not is_valid_path(key):
            return None
        document = document_for(user, path=key)
        if document is None or role_of(user, document) is None:
            return None
        return MODERATOR if can_moderate(user, document) else READER

    def redact(self, audience: str, key: str, events: list[EventView]) -> list[EventView]:
        if audience == MODERATOR:
            return events
        ids = {
            event.data.get("id")
            for event in events
            if event.type in ("comment.created", "comment.updated") and isinstance(event.data, dict)
        }
        if not ids:
            return events
        hidden = set(Comment.objects.filter(pk__in=ids, hidden=True).values_list("pk", flat=True))
        if not hidden:
            return events
        return [
            EventView(event.seq, "comment.deleted", {"id": event.data["id"]})
            if event.type in ("comment.created", "comment.updated") and event.data.get("id") in hidden
            else event
            for event in events
        ]
