"""Every write of the review domain.

The API, the admin, the pages and the shell call these functions; each runs
in one transaction, and the model signals record the events of what it saved
in that same transaction (see ``reviews.signals``).  Permission checks are the
caller's (the API knows who asks); these functions enforce the domain's own
rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from realtime.publish import ensure_stream

from . import anchoring
from .models import (
    Comment,
    Discussion,
    DiscussionMessage,
    Document,
    Membership,
    Role,
    Suggestion,
    SuggestionStatus,
    Visibility,
)

User = get_user_model()


class ServiceError(Exception):
    """A domain rule said no.  ``code`` names the rule; the API maps it to a status."""

    def __init__(self, code: str, message: str = "", field: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message or code
        self.field = field


# --- documents --------------------------------------------------------------


@transaction.atomic
def document_create(*, user: Any, path: str, title: str, content: str = "",
                    visibility: str = Visibility.PRIVATE) -> Document:
    """Create a document; its creator becomes its first maintainer.  A taken path: ``conflict``."""
    if Document.objects.filter(path=path).exists():
        raise ServiceError("conflict", "A document with this path already exists.", field="path")
    stream = ensure_stream(path)
    try:
        with transaction.atomic():
            document = Document.objects.create(path=path, title=title, content=content, visibility=visibility,
                                               stream=stream, created_by=user)
    except IntegrityError as exc:
        raise ServiceError("conflict", "A document with this path already exists.", field="path") from exc
    Membership.objects.create(document=document, user=user, role=Role.MAINTAINER)
    return document


def _lock(document: Document) -> Document:
    return Document.objects.select_for_update().select_related("stream").get(pk=document.pk)


def _reanchor(document: Document, old_content: str) -> None:
    """Place every open comment and suggestion of ``document`` in its new content."""
    content = document.content
    for comment in Comment.objects.filter(document=document, resolved=False).exclude(anchor=None):
        moved = anchoring.relocate(comment.anchor, content, old_content=old_content)
        anchor = dict(moved.anchor, state=moved.state, confidence=moved.confidence)
        if anchor != comment.anchor:
            comment.anchor = anchor
            comment.save(update_fields=["anchor", "updated_at"])
    for suggestion in Suggestion.objects.filter(document=document, status=SuggestionStatus.OPEN):
        moved = anchoring.relocate(suggestion.anchor, content, old_content=old_content)
        anchor = dict(moved.anchor, state=moved.state, confidence=moved.confidence)
        if moved.state == anchoring.ORPHANED or moved.anchor.get("quote") != suggestion.anchor.get("quote"):
            # What it would replace is gone or changed: it can no longer apply as written.
            suggestion.status = SuggestionStatus.OUTDATED
        if anchor != suggestion.anchor or suggestion.status != SuggestionStatus.OPEN:
            suggestion.anchor = anchor
            suggestion.save(update_fields=["anchor", "status", "updated_at"])


@transaction.atomic
def document_update(*, document: Document, title: str | None = None, content: str | None = None,
                    visibility: str | None = None) -> Document:
    """Change a document; a content change increments ``version`` and re-anchors."""
    document = _lock(document)
    changed = []
    if title is not None and title != document.title:
        document.title = title
        changed.append("title")
    if visibility is not None and visibility != document.visibility:
        document.visibility = visibility
        changed.append("visibility")
    content_changed = content is not None and content != document.content
    old_content = document.content
    if content_changed:
        document.content = content
        document.version += 1
        changed += ["content", "version"]
    if changed:
        document.save(update_fields=changed + ["updated_at"])
        if content_changed:
            _reanchor(document, old_content)
        document.stream.refresh_from_db(fields=["last_id"])
    return document


@transaction.atomic
def member_set(*, document: Document, user: Any, role: str) -> tuple[Membership, bool]:
    """Add ``user`` with ``role`` or change their role.  Returns (membership, created)."""
    membership, created = Membership.objects.select_for_update().get_or_create(
        document=document, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        if membership.role == Role.MAINTAINER and role != Role.MAINTAINER:
            _keep_a_maintainer(document, membership)
        membership.role = role
        membership.save(update_fields=["role"])
    return membership, created


def _keep_a_maintainer(document: Document, leaving: Membership) -> None:
    others = Membership.objects.filter(document=document, role=Role.MAINTAINER).exclude(pk=leaving.pk)
    if not others.exists():
        raise ServiceError("last_maintainer", "A document must keep at least one maintainer.")


@transaction.atomic
def member_remove(*, document: Document, user: Any) -> bool:
    membership = Membership.objects.select_for_update().filter(document=document, user=user).first()
    if membership is None:
        return False
    if membership.role == Role.MAINTAINER:
        _keep_a_maintainer(document, membership)
    membership.delete()
    return True


# --- comments ---------------------------------------------------------------


def _validated_anchor(anchor: dict[str, Any] | None, content: str, *, require_position: bool = False) -> dict | None:
    if anchor is None:
        return None
    start, end = anchor.get("start"), anchor.get("end")
    if (start is None) != (end is None) or (require_position and start is None):
        raise ServiceError("invalid", "Give both start and end.", field="anchor")
    if start is not None:
        if not (0 <= start <= end <= len(content)):
            raise ServiceError("invalid", f"start and end must satisfy 0 <= start <= end <= {len(content)}.",
                               field="anchor")
    return anchoring.with_context(anchor, content)


@transaction.atomic
def comment_create(*, author: Any, document: Document, body: str, anchor: dict[str, Any] | None = None,
                   parent: Comment | None = None) -> Comment:
    """A comment, or a reply to a top-level comment of the same document."""
    if parent is not None:
        if parent.document_id != document.pk:
            raise ServiceError("invalid", "The parent comment belongs to another document.", field="parent")
        if parent.parent_id is not None:
            raise ServiceError("invalid", "Replies are one level deep: reply to the top-level comment.",
                               field="parent")
    anchor = _validated_anchor(anchor, document.content)
    if anchor is not None and anchor.get("start") is not None:
        if document.content[anchor["start"]:anchor["end"]] != anchor.get("quote", ""):
            raise ServiceError("invalid", "The quote does not match the document at start:end.", field="anchor")
    return Comment.objects.create(document=document, author=author, body=body, anchor=anchor, parent=parent)


@transaction.atomic
def comment_update(*, comment: Comment, body: str | None = None, resolved: bool | None = None,
                   hidden: bool | None = None) -> Comment:
    comment = Comment.objects.select_for_update().select_related("document", "author").get(pk=comment.pk)
    changed = []
    for field, value in (("body", body), ("resolved", resolved), ("hidden", hidden)):
        if value is not None and getattr(comment, field) != value:
            setattr(comment, field, value)
            changed.append(field)
    if changed:
        comment.save(update_fields=changed + ["updated_at"])
    return comment


@transaction.atomic
def comment_delete(*, comment: Comment) -> None:
    """Delete a comment and its replies (each emits ``comment.deleted``)."""
    comment.delete()


# --- suggestions --------------------------------------------------------------


@transaction.atomic
def suggestion_create(*, author: Any, document: Document, anchor: dict[str, Any], replacement: str,
                      note: str = "") -> Suggestion:
    """A proposed replacement of ``content[start:end]``.  The quote must match: ``conflict``."""
    document = _lock(document)
    anchor = _validated_anchor(anchor, document.content, require_position=True)
    if document.content[anchor["start"]:anchor["end"]] != anchor.get("quote", ""):
        raise ServiceError("conflict", "The quote does not match the current version of the document.",
                           field="anchor")
    return Suggestion.objects.create(document=document, author=author, anchor=anchor, replacement=replacement,
                                     note=note, base_version=document.version)


@transaction.atomic
def suggestion_update(*, suggestion: Suggestion, replacement: str | None = None,
                      note: str | None = None) -> Suggestion:
    suggestion = Suggestion.objects.select_for_update().select_related("document", "author").get(pk=suggestion.pk)
    if suggestion.status != SuggestionStatus.OPEN:
        raise ServiceError("not_open", f"The suggestion is {suggestion.status}.")
    changed = []
    for field, value in (("replacement", replacement), ("note", note)):
        if value is not None and getattr(suggestion, field) != value:
            setattr(suggestion, field, value)
            changed.append(field)
    if changed:
        suggestion.save(update_fields=changed + ["updated_at"])
    return suggestion


@dataclass
class ApprovalResult:
    suggestion: Suggestion
    applied: bool
    reason: str = ""


@transaction.atomic
def suggestion_approve(*, suggestion: Suggestion, expected_version: int | None = None) -> ApprovalResult:
    """Apply a suggestion to its document, or mark it outdated.

    The quoted text is replaced where it still stands (or where quote and
    context find it again unambiguously); the document's version increments.
    Otherwise the suggestion becomes ``outdated`` and nothing else changes.
    ``expected_version`` (the approver's If-Match) must equal the document's
    version, so two maintainers cannot apply against different versions.
    The outdated status is committed: the caller answers 409 but the state
    change and its event stand.
    """
    document = _lock(suggestion.document)
    suggestion = Suggestion.objects.select_for_update().select_related("author").get(pk=suggestion.pk)
    suggestion.document = document
    if suggestion.status != SuggestionStatus.OPEN:
        reasons = {SuggestionStatus.APPROVED: "already_applied", SuggestionStatus.REJECTED: "rejected"}
        return ApprovalResult(suggestion, False, reasons.get(suggestion.status, "outdated"))
    if expected_version is not None and expected_version != document.version:
        # Approved against another version than the one the maintainer saw.
        return ApprovalResult(suggestion, False, "outdated")
    if suggestion.replacement == suggestion.anchor.get("quote"):
        return ApprovalResult(suggestion, False, "no_change")
    found = anchoring.find_unambiguous(suggestion.anchor, document.content)
    if found is None:
        suggestion.status = SuggestionStatus.OUTDATED
        suggestion.save(update_fields=["status", "updated_at"])
        return ApprovalResult(suggestion, False, "outdated")
    start, end = found
    suggestion.status = SuggestionStatus.APPROVED
    suggestion.anchor = dict(suggestion.anchor, start=start, end=end)
    suggestion.save(update_fields=["status", "anchor", "updated_at"])
    # Open suggestions on the same passage competed with this one: they no
    # longer apply to the text they were written against.
    for other in Suggestion.objects.filter(document=document, status=SuggestionStatus.OPEN):
        place = anchoring.find_unambiguous(other.anchor, document.content)
        if place is None or anchoring.overlaps(place, (start, end)):
            other.status = SuggestionStatus.OUTDATED
            other.save(update_fields=["status", "updated_at"])
    document_update(document=document,
                    content=document.content[:start] + suggestion.replacement + document.content[end:])
    document.refresh_from_db()
    suggestion.document = document
    return ApprovalResult(suggestion, True)


@transaction.atomic
def suggestion_reject(*, suggestion: Suggestion) -> Suggestion:
    suggestion = Suggestion.objects.select_for_update().select_related("document", "author").get(pk=suggestion.pk)
    if suggestion.status != SuggestionStatus.OPEN:
        raise ServiceError("not_open", f"The suggestion is {suggestion.status}.")
    suggestion.status = SuggestionStatus.REJECTED
    suggestion.save(update_fields=["status", "updated_at"])
    return suggestion


# --- discussions ----------------------------------------------------------------


@transaction.atomic
def discussion_create(*, author: Any, document: Document, title: str) -> Discussion:
    return Discussion.objects.create(document=document, author=author, title=title)


@transaction.atomic
def discussion_message_create(*, author: Any, discussion: Discussion, body: str) -> DiscussionMessage:
    message = DiscussionMessage.objects.create(discussion=discussion, author=author, body=body)
    Discussion.objects.filter(pk=discussion.pk).update(updated_at=message.created_at)
    return message
