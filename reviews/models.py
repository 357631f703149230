"""Documents under review and everything people say about them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    REVIEWER = "reviewer", "Reviewer"
    MAINTAINER = "maintainer", "Maintainer"


ROLE_RANK = {Role.VIEWER: 1, Role.REVIEWER: 2, Role.MAINTAINER: 3}


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
