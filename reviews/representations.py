"""The JSON of each object, the same in REST responses and in event data."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .models import Comment, Discussion, DiscussionMessage, Document, Membership, Suggestion


def timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def author_json(user: Any) -> dict[str, Any]:
    return {"id": user.pk, "username": user.get_username()}


def document_json(document: Document, *, role: str | None = None, include_viewer: bool = True) -> dict[str, Any]:
    """A document.  ``role`` and ``lastEventId`` depend on the viewer and the
    moment; event data (``include_viewer=False``) leaves them out."""
    data: dict[str, Any] = {
        "id": document.pk,
        "path": document.path,
        "title": document.title,
        "content": document.content,
        "version": document.version,
        "visibility": document.visibility,
    }
    if include_viewer:
        data["role"] = role
        data["lastEventId"] = document.stream.last_id
    return data


def document_summary_json(document: Document, *, role: str | None) -> dict[str, Any]:
    data = document_json(document, role=role)
    del data["content"]
    return data


def member_json(membership: Membership) -> dict[str, Any]:
    return {"userId": membership.user_id, "username": membership.user.get_username(), "role": membership.role}


def comment_json(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.pk,
        "docPath": comment.document.path,
        "author": author_json(comment.author),
        "body": comment.body,
        "anchor": comment.anchor,
        "parent": comment.parent_id,
        "resolved": comment.resolved,
        "hidden": comment.hidden,
        "createdAt": timestamp(comment.created_at),
        "updatedAt": timestamp(comment.updated_at),
    }


def suggestion_json(suggestion: Suggestion) -> dict[str, Any]:
    return {
        "id": suggestion.pk,
        "docPath": suggestion.document.path,
        "author": author_json(suggestion.author),
        "anchor": suggestion.anchor,
        "replacement": suggestion.replacement,
        "note": suggestion.note,
        "status": suggestion.status,
        "baseVersion": suggestion.base_version,
        "createdAt": timestamp(suggestion.created_at),
        "updatedAt": timestamp(suggestion.updated_at),
    }


def discussion_json(discussion: Discussion) -> dict[str, Any]:
    return {
        "id": discussion.pk,
        "docPath": discussion.document.path,
        "author": author_json(discussion.author),
        "title": discussion.title,
        "createdAt": timestamp(discussion.created_at),
        "updatedAt": timestamp(discussion.updated_at),
    }


def message_json(message: DiscussionMessage) -> dict[str, Any]:
    return {
        "id": message.pk,
        "discussionId": message.discussion_id,
        "author": author_json(message.author),
        "body": message.body,
        "createdAt": timestamp(message.created_at),
    }


def moderated_message_json(message: DiscussionMessage) -> dict[str, Any]:
    """A message as those who may see hidden ones get it: marked ``hidden``."""
    return dict(message_json(message), hidden=message.hidden)
