"""Model signals record the events.  Receivers stay thin: they build the data
and call ``realtime.publish.record``, which writes the row in the saving
transaction and publishes after commit."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from realtime.publish import record

from . import representations as rep
from .models import Comment, Discussion, DiscussionMessage, Document, Suggestion, SuggestionStatus
from .stream_access import READER


@receiver(post_save, sender=Comment, dispatch_uid="reviews.comment_saved")
def comment_saved(sender, instance: Comment, created: bool, **kwargs) -> None:
    # Hidden, or a reply to a hidden comment: readers see it deleted.
    unseen = instance.hidden or (instance.parent_id is not None and instance.parent.hidden)
    variants = {READER: ("comment.deleted", {"id": instance.pk})} if unseen else None
    record(key=instance.document.path, type="comment.created" if created else "comment.updated",
           data=rep.comment_json(instance), variants=variants)


@receiver(post_delete, sender=Comment, dispatch_uid="reviews.comment_deleted")
def comment_deleted(sender, instance: Comment, **kwargs) -> None:
    record(key=instance.document.path, type="comment.deleted", data={"id": instance.pk})


@receiver(post_save, sender=Suggestion, dispatch_uid="reviews.suggestion_saved")
def suggestion_saved(sender, instance: Suggestion, created: bool, update_fields=None, **kwargs) -> None:
    if created:
        type_ = "suggestion.created"
    elif instance.status == SuggestionStatus.APPROVED and update_fields and "status" in update_fields:
        type_ = "suggestion.approved"
    else:
        type_ = "suggestion.updated"
    record(key=instance.document.path, type=type_, data=rep.suggestion_json(instance))


@receiver(post_save, sender=Discussion, dispatch_uid="reviews.discussion_saved")
def discussion_saved(sender, instance: Discussion, created: bool, **kwargs) -> None:
    if created:
        record(key=instance.document.path, type="discussion.created", data=rep.discussion_json(instance))


@receiver(post_save, sender=DiscussionMessage, dispatch_uid="reviews.message_saved")
def message_saved(sender, instance: DiscussionMessage, created: bool, **kwargs) -> None:
    gone = {"id": instance.pk, "discussionId": instance.discussion_id}
    variants = {READER: ("discussion.message.deleted", gone)} if instance.hidden else None
    if created:
        record(key=instance.discussion.document.path, type="discussion.message", data=rep.message_json(instance),
               variants=variants)
    else:
        record(key=instance.discussion.document.path, type="discussion.message.updated",
               data=rep.moderated_message_json(instance), variants=variants)


@receiver(post_delete, sender=DiscussionMessage, dispatch_uid="reviews.message_deleted")
def message_deleted(sender, instance: DiscussionMessage, **kwargs) -> None:
    record(key=instance.discussion.document.path, type="discussion.message.deleted",
           data={"id": instance.pk, "discussionId": instance.discussion_id})


@receiver(post_save, sender=Document, dispatch_uid="reviews.document_saved")
def document_saved(sender, instance: Document, created: bool, **kwargs) -> None:
    if not created:
        record(key=instance.path, type="document.updated", data=rep.document_json(instance, include_viewer=False))


