"""Documents under review and everything people say about them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    REVIEWER = "reviewer", "Reviewer"
    MAINTAINER = "maintainer", "Maintainer"


ROLE_RANK = {Role.VIEWER: 1, Role.REVIEWER: 2, Role.MAINTAINER: 3}

# A document's content holds at most this many characters, however it is written.
CONTENT_MAX = 1_000_000


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private (members only)"
    INTERNAL = "internal", "Internal (every signed-in user reviews)"


class Document(models.Model):
    path = models.CharField(max_length=255, unique=True)
    title = models.CharField(max_length=200)
    content = models.TextField(blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    # The document's event sequence: stream.last_id is its last event id.
    stream = models.OneToOneField("realtime.Stream", on_delete=models.PROTECT, related_name="document")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path

    @property
    def last_event_id(self) -> int:
        return self.stream.last_id


class Membership(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["document_id", "user_id"]
        constraints = [models.UniqueConstraint(fields=["document", "user"], name="reviews_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} {self.role} on {self.document}"


class Comment(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comments")
    body = models.TextField()
    # W3C Web Annotation style selector: {quote, prefix?, suffix?, start?, end?}
    anchor = models.JSONField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    resolved = models.BooleanField(default=False)
    hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        permissions = [("moderate_content", "Can moderate content on every document")]
        indexes = [models.Index(fields=["document", "id"])]

    def __str__(self) -> str:
        return f"Comment {self.pk} on {self.document_id}"


class SuggestionStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    OUTDATED = "outdated", "Outdated"


class Suggestion(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="suggestions")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="suggestions")
    anchor = models.JSONField()
    replacement = models.TextField(blank=True, default="")
    note = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=SuggestionStatus.choices, default=SuggestionStatus.OPEN)
    base_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["document", "id"])]

    def __str__(self) -> str:
        return f"Suggestion {self.pk} on {self.document_id} ({self.status})"


class Discussion(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="discussions")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="discussions")
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title


class DiscussionMessage(models.Model):
    discussion = models.ForeignKey(Discussion, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="discussion_messages")
    body = models.TextField()
    hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Message {self.pk} in {self.discussion_id}"


# --- moderation ------------------------------------------------------------------


class FlagReason(models.TextChoices):
    SPAM = "spam", "Spam"
    ABUSE = "abuse", "Abuse"
    OFF_TOPIC = "off-topic", "Off-topic"
    OTHER = "other", "Other"


class Flag(models.Model):
    """A user's report that a comment or a discussion message needs a moderator.

    Exactly one of ``comment`` and ``message`` is set.  A flag is open until a
    moderator marks the item reviewed (``cleared_at``); a user holds at most one
    open flag per item, and cleared flags stay as the item's history.
    """

    comment = models.ForeignKey(Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="flags")
    message = models.ForeignKey(DiscussionMessage, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="flags")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flags")
    reason = models.CharField(max_length=16, choices=FlagReason.choices)
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(comment__isnull=False, message__isnull=True)
                           | models.Q(comment__isnull=True, message__isnull=False)),
                name="reviews_flag_one_target",
            ),
            models.UniqueConstraint(fields=["user", "comment"], condition=models.Q(cleared_at__isnull=True),
                                    name="reviews_flag_open_per_user_comment"),
            models.UniqueConstraint(fields=["user", "message"], condition=models.Q(cleared_at__isnull=True),
                                    name="reviews_flag_open_per_user_message"),
        ]

    def __str__(self) -> str:
        target = f"comment {self.comment_id}" if self.comment_id else f"message {self.message_id}"
        return f"{self.get_reason_display()} flag on {target} by {self.user_id}"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


class ModerationAction(models.TextChoices):
    HIDE = "hide", "Hidden"
    UNHIDE = "unhide", "Unhidden"
    MARK_REVIEWED = "mark_reviewed", "Marked reviewed"
    DELETE = "delete", "Deleted"


class ModerationTarget(models.TextChoices):
    COMMENT = "comment", "Comment"
    MESSAGE = "message", "Discussion message"


class ModerationLogEntry(models.Model):
    """Who did what to which item, when and why, with the state before and after.

    The target is named by type and id, not by a foreign key, so the entry
    outlives a deleted item.
    """

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="moderation_actions")
    action = models.CharField(max_length=16, choices=ModerationAction.choices)
    target_type = models.CharField(max_length=16, choices=ModerationTarget.choices)
    target_id = models.BigIntegerField()
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="moderation_log")
    old_state = models.JSONField(default=dict)
    new_state = models.JSONField(default=dict)
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "moderation log entry"
        verbose_name_plural = "moderation log"
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.target_type} {self.target_id}"


class CommentRevision(models.Model):
    """A comment's body as it was before one edit."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="revisions")
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["comment_id", "id"]

    def __str__(self) -> str:
        return f"Revision {self.pk} of comment {self.comment_id}"


# The moderation queue: items with open flags, as their own admin lists.


class FlaggedComment(Comment):
    class Meta:
        proxy = True
        verbose_name = "moderation queue: comment"
        verbose_name_plural = "moderation queue: comments"


class FlaggedMessage(DiscussionMessage):
    class Meta:
        proxy = True
        verbose_name = "moderation queue: message"
        verbose_name_plural = "moderation queue: messages"
