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
from django.utils import timezone

from realtime.publish import ensure_stream

from . import anchoring
from .models import (
    CONTENT_MAX,
    Comment,
    CommentRevision,
    Discussion,
    DiscussionMessage,
    Document,
    Flag,
    FlagReason,
    Membership,
    ModerationAction,
    ModerationLogEntry,
    ModerationTarget,
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


def _lock_document(document_id: int) -> None:
    """Take the document's row lock before a comment's or suggestion's.

    ``document_update`` holds the document, then the event sequence, then
    re-anchors (saving comments and suggestions).  A write that locked a
    comment first and then waited for the sequence could deadlock with it;
    taking the document first puts every such write in the same order.
    """
    Document.objects.select_for_update().filter(pk=document_id).values_list("pk", flat=True).first()


def _placed(anchor: dict[str, Any], moved: anchoring.Relocation) -> dict[str, Any]:
    return dict(moved.anchor, state=moved.state, confidence=moved.confidence)


def _reanchor(document: Document, old_content: str) -> None:
    """Place every open comment and suggestion of ``document`` in its new content.

    Open comments are those neither resolved nor hidden (a closed one is placed
    again when it reopens).  Each one whose anchor changed is saved, which
    emits ``comment.updated`` / ``suggestion.updated``.  A suggestion whose
    text is gone or changed can no longer apply as written: it becomes
    ``outdated``.
    """
    content = document.content
    edit = anchoring.Edit(old_content, content)
    comments = (Comment.objects.filter(document=document, resolved=False, hidden=False, anchor__isnull=False)
                .select_related("document", "author", "parent"))
    for comment in comments:
        if not isinstance(comment.anchor, dict):
            continue
        anchor = _placed(comment.anchor, anchoring.relocate(comment.anchor, content, edit=edit))
        if anchor != comment.anchor:
            comment.anchor = anchor
            comment.save(update_fields=["anchor", "updated_at"])
    suggestions = (Suggestion.objects.filter(document=document, status=SuggestionStatus.OPEN)
                   .select_related("document", "author"))
    for suggestion in suggestions:
        moved = anchoring.relocate(suggestion.anchor, content, edit=edit)
        anchor = _placed(suggestion.anchor, moved)
        if moved.state == anchoring.ORPHANED or moved.anchor.get("quote") != suggestion.anchor.get("quote"):
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
    # Member changes of a document run one at a time: two maintainers
    # demoting each other at once cannot both see the other still there.
    _lock_document(document.pk)
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
    _lock_document(document.pk)
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
    else:
        # A quote alone is placed where it occurs, if that is unambiguous.
        found = anchoring.find_unambiguous(anchor, content)
        if found is None:
            return dict(anchor)
        anchor = dict(anchor, start=found[0], end=found[1])
    anchor = anchoring.with_context(anchor, content)
    if content[anchor["start"]:anchor["end"]] == anchor.get("quote", ""):
        anchor.update(state=anchoring.EXACT, confidence=1.0)
    return anchor


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
    if anchor is not None:
        # Checked and placed against the content as it is now, under the
        # document's lock: an edit committed since the caller read the
        # document would otherwise leave this anchor on the old text, unseen
        # by that edit's re-anchoring.
        document = _lock(document)
    anchor = _validated_anchor(anchor, document.content)
    if anchor is not None and anchor.get("start") is not None:
        if document.content[anchor["start"]:anchor["end"]] != anchor.get("quote", ""):
            raise ServiceError("invalid", "The quote does not match the document at start:end.", field="anchor")
    return Comment.objects.create(document=document, author=author, body=body, anchor=anchor, parent=parent)


@transaction.atomic
def comment_update(*, comment: Comment, body: str | None = None, resolved: bool | None = None,
                   hidden: bool | None = None, by: Any = None, reason: str = "") -> Comment:
    """Change a comment's body, resolved or hidden flag.

    A body change keeps the old body as a ``CommentRevision`` (editor ``by``,
    else the author: only authors edit bodies).  A hidden change is a
    moderation action: it is logged with ``by`` and ``reason``, and the
    replies are published again (readers see them vanish or come back with
    their parent).  A comment that reopens (unresolved or unhidden) is placed
    again in the current content: edits did not move it while it was closed.
    """
    _lock_document(comment.document_id)
    comment = Comment.objects.select_for_update().select_related("document", "author").get(pk=comment.pk)
    before = _state(comment)
    changed = []
    if body is not None and body != comment.body:
        CommentRevision.objects.create(comment=comment, editor=by or comment.author, body=comment.body)
        comment.body = body
        changed.append("body")
    for field, value in (("resolved", resolved), ("hidden", hidden)):
        if value is not None and getattr(comment, field) != value:
            setattr(comment, field, value)
            changed.append(field)
    reopened = (("resolved" in changed and not comment.resolved) or ("hidden" in changed and not comment.hidden))
    if reopened and isinstance(comment.anchor, dict) and not comment.resolved and not comment.hidden:
        anchor = _placed(comment.anchor, anchoring.relocate(comment.anchor, comment.document.content))
        if anchor != comment.anchor:
            comment.anchor = anchor
            changed.append("anchor")
    if changed:
        comment.save(update_fields=changed + ["updated_at"])
    if "hidden" in changed:
        _log(actor=by, action=ModerationAction.HIDE if comment.hidden else ModerationAction.UNHIDE,
             target=comment, before=before, reason=reason)
        for reply in comment.replies.select_related("document", "author", "parent"):
            # Unchanged, but readers now see it as their parent: gone or back.
            reply.save(update_fields=["updated_at"])
    return comment


@transaction.atomic
def comment_delete(*, comment: Comment, by: Any = None, reason: str = "", log: bool | None = None) -> bool:
    """Delete a comment and its replies (each emits ``comment.deleted``).

    Deleting someone else's comment is a moderation action (``log`` forces
    either way): logged with ``by``, ``reason`` and what was deleted.  False
    when it was already gone.
    """
    _lock_document(comment.document_id)
    comment = (Comment.objects.select_for_update().select_related("document", "author")
               .filter(pk=comment.pk).first())
    if comment is None:
        return False
    if log if log is not None else (by is not None and by.pk != comment.author_id):
        before = dict(_state(comment), body=comment.body, author=comment.author.get_username(),
                      replies=comment.replies.count())
        _log(actor=by, action=ModerationAction.DELETE, target=comment, before=before,
             after={"deleted": True}, reason=reason)
    comment.delete()
    return True


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
    _lock_document(suggestion.document_id)
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
    Otherwise the suggestion becomes ``outdated`` and nothing else changes;
    the reason is ``already_applied`` when the document already reads the
    replacement there, else ``outdated``.  A replacement equal to the quote
    answers ``no_change`` and leaves the suggestion open (its author may edit
    it).  ``expected_version`` (the approver's If-Match) must equal the document's
    version, so two maintainers cannot apply against different versions.
    The outdated status is committed: the caller answers 409 but the state
    change and its event stand.
    """
    document = _lock(suggestion.document)
    suggestion = Suggestion.objects.select_for_update().select_related("author").get(pk=suggestion.pk)
    suggestion.document = document
    if suggestion.status != SuggestionStatus.OPEN:
        if suggestion.status == SuggestionStatus.OUTDATED and anchoring.replacement_in_place(
                suggestion.anchor, suggestion.replacement, document.content):
            return ApprovalResult(suggestion, False, "already_applied")
        reasons = {SuggestionStatus.APPROVED: "already_applied", SuggestionStatus.REJECTED: "rejected"}
        return ApprovalResult(suggestion, False, reasons.get(suggestion.status, "outdated"))
    if expected_version is not None and expected_version != document.version:
        # Approved against another version than the one the maintainer saw;
        # the suggestion itself may still apply once they have looked again.
        return ApprovalResult(suggestion, False, "outdated")
    if suggestion.replacement == suggestion.anchor.get("quote"):
        return ApprovalResult(suggestion, False, "no_change")
    found = anchoring.find_unambiguous(suggestion.anchor, document.content)
    if found is None:
        suggestion.status = SuggestionStatus.OUTDATED
        suggestion.save(update_fields=["status", "updated_at"])
        applied = anchoring.replacement_in_place(suggestion.anchor, suggestion.replacement, document.content)
        return ApprovalResult(suggestion, False, "already_applied" if applied else "outdated")
    start, end = found
    if len(document.content) - (end - start) + len(suggestion.replacement) > CONTENT_MAX:
        # The document would outgrow what any edit of it may hold.
        return ApprovalResult(suggestion, False, "too_long")
    suggestion.status = SuggestionStatus.APPROVED
    suggestion.anchor = dict(suggestion.anchor, start=start, end=end)
    suggestion.save(update_fields=["status", "anchor", "updated_at"])
    # Open suggestions on the same passage competed with this one: they no
    # longer apply to the text they were written against.  Taken out of the
    # edit's re-placing of open suggestions (which could move one onto another
    # occurrence of its quote), then placed through the edit here, so their
    # anchors say where their text went; one event each, with both changes.
    overlapped = []
    for other in Suggestion.objects.filter(document=document, status=SuggestionStatus.OPEN):
        place = anchoring.find_unambiguous(other.anchor, document.content)
        if place is None or anchoring.overlaps(place, (start, end)):
            overlapped.append(other)
    Suggestion.objects.filter(pk__in=[other.pk for other in overlapped]).update(status=SuggestionStatus.OUTDATED)
    old_content = document.content
    document_update(document=document, content=old_content[:start] + suggestion.replacement + old_content[end:])
    document.refresh_from_db()
    if overlapped:
        edit = anchoring.Edit(old_content, document.content)
        for other in overlapped:
            other.status = SuggestionStatus.OUTDATED
            other.anchor = _placed(other.anchor, anchoring.relocate(other.anchor, document.content, edit=edit))
            other.save(update_fields=["status", "anchor", "updated_at"])
    suggestion.document = document
    return ApprovalResult(suggestion, True)


@transaction.atomic
def suggestion_reject(*, suggestion: Suggestion) -> Suggestion:
    _lock_document(suggestion.document_id)
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


@transaction.atomic
def discussion_message_delete(*, message: DiscussionMessage, by: Any = None, reason: str = "",
                              log: bool | None = None) -> bool:
    """Delete a message (emits ``discussion.message.deleted``).

    Deleting someone else's message is a moderation action, logged like a
    comment's.  False when it was already gone.
    """
    message = (DiscussionMessage.objects.select_for_update().select_related("discussion__document", "author")
               .filter(pk=message.pk).first())
    if message is None:
        return False
    if log if log is not None else (by is not None and by.pk != message.author_id):
        before = dict(_state(message), body=message.body, author=message.author.get_username())
        _log(actor=by, action=ModerationAction.DELETE, target=message, before=before,
             after={"deleted": True}, reason=reason)
    message.delete()
    return True


# --- moderation -------------------------------------------------------------------

Moderated = Comment | DiscussionMessage


def _target_type(target: Moderated) -> str:
    if isinstance(target, Comment):
        return ModerationTarget.COMMENT
    if isinstance(target, DiscussionMessage):
        return ModerationTarget.MESSAGE
    raise TypeError(f"cannot moderate {type(target).__name__}")


def _document_of(target: Moderated) -> Document:
    return target.document if isinstance(target, Comment) else target.discussion.document


def _state(target: Moderated) -> dict[str, Any]:
    """What a moderation log entry records of an item before and after."""
    return {"hidden": target.hidden, "openFlags": target.flags.filter(cleared_at__isnull=True).count()}


def _log(*, actor: Any, action: str, target: Moderated, before: dict[str, Any], reason: str,
         after: dict[str, Any] | None = None) -> ModerationLogEntry:
    return ModerationLogEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None, action=action, target_type=_target_type(target),
        target_id=target.pk, document=_document_of(target), old_state=before,
        new_state=after if after is not None else _state(target), reason=reason,
    )


def _locked(target: Moderated) -> Moderated:
    if isinstance(target, Comment):
        return Comment.objects.select_for_update().select_related("document", "author").get(pk=target.pk)
    return (DiscussionMessage.objects.select_for_update().select_related("discussion__document", "author")
            .get(pk=target.pk))


@transaction.atomic
def comment_hide(*, comment: Comment, by: Any, reason: str) -> Comment:
    """Hide a comment: moderators see ``comment.updated`` with ``hidden: true``,
    everyone else ``comment.deleted`` (its replies too).  Logged."""
    return comment_update(comment=comment, hidden=True, by=by, reason=reason)


@transaction.atomic
def comment_unhide(*, comment: Comment, by: Any, reason: str) -> Comment:
    """Show a hidden comment again (``comment.updated`` for everyone).  Logged."""
    return comment_update(comment=comment, hidden=False, by=by, reason=reason)


def _message_set_hidden(message: DiscussionMessage, hidden: bool, by: Any, reason: str) -> DiscussionMessage:
    message = _locked(message)
    if message.hidden == hidden:
        return message
    before = _state(message)
    message.hidden = hidden
    message.save(update_fields=["hidden"])
    _log(actor=by, action=ModerationAction.HIDE if hidden else ModerationAction.UNHIDE, target=message,
         before=before, reason=reason)
    return message


@transaction.atomic
def message_hide(*, message: DiscussionMessage, by: Any, reason: str) -> DiscussionMessage:
    """Hide a discussion message: moderators see ``discussion.message.updated``
    with ``hidden: true``, everyone else ``discussion.message.deleted``.  Logged."""
    return _message_set_hidden(message, True, by, reason)


@transaction.atomic
def message_unhide(*, message: DiscussionMessage, by: Any, reason: str) -> DiscussionMessage:
    """Show a hidden message again (``discussion.message.updated`` for everyone).  Logged."""
    return _message_set_hidden(message, False, by, reason)


@transaction.atomic
def flag_create(*, user: Any, target: Moderated, reason: str, note: str = "") -> Flag:
    """``user`` reports a comment or message to the moderators.

    One open flag per user per item (a second one: ``conflict``); ``other``
    needs a note.  Flags are for moderators only: no event is emitted.
    """
    if reason not in FlagReason.values:
        raise ServiceError("invalid", f"Choose one of: {', '.join(FlagReason.values)}.", field="reason")
    if reason == FlagReason.OTHER and not note.strip():
        raise ServiceError("invalid", "Say what is wrong when the reason is 'other'.", field="note")
    field = "comment" if isinstance(target, Comment) else "message"
    _target_type(target)
    open_flags = Flag.objects.filter(**{field: target}, user=user, cleared_at__isnull=True)
    duplicate = ServiceError("conflict", f"You have already flagged this {_target_type(target).label.lower()}.")
    if open_flags.exists():
        raise duplicate
    try:
        with transaction.atomic():
            return Flag.objects.create(**{field: target}, user=user, reason=reason, note=note)
    except IntegrityError as exc:  # a concurrent flag by the same user
        raise duplicate from exc


@transaction.atomic
def mark_reviewed(*, target: Moderated, by: Any, reason: str = "") -> int:
    """A moderator looked at the item and keeps it as it is: its open flags are
    cleared (kept as history).  Logged; no event (flags are not public).
    Returns the number of flags cleared."""
    target = _locked(target)
    before = _state(target)
    cleared = target.flags.filter(cleared_at__isnull=True).update(cleared_at=timezone.now(), cleared_by=by)
    _log(actor=by, action=ModerationAction.MARK_REVIEWED, target=target, before=before, reason=reason)
    return cleared


@transaction.atomic
def moderate_delete(*, target: Moderated, by: Any, reason: str) -> bool:
    """Delete a comment (with its replies) or a message as a moderator.  Logged."""
    if isinstance(target, Comment):
        return comment_delete(comment=target, by=by, reason=reason, log=True)
    return discussion_message_delete(message=target, by=by, reason=reason, log=True)
