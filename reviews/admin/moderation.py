"""Comments and messages, the moderation queue, the log and the flags."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from .. import services
from ..models import (
    Comment,
    CommentRevision,
    DiscussionMessage,
    Flag,
    FlaggedComment,
    FlaggedMessage,
    ModerationLogEntry,
    ModerationTarget,
)
from ..permissions import is_moderator
from .base import ModeratorOnlyMixin, ModeratedAdmin, FlaggedFilter, change_link, excerpt, moderation_action


def _hide(obj, *, by, reason):
    if isinstance(obj, Comment):
        return services.comment_hide(comment=obj, by=by, reason=reason)
    return services.message_hide(message=obj, by=by, reason=reason)


def _unhide(obj, *, by, reason):
    if isinstance(obj, Comment):
        return services.comment_unhide(comment=obj, by=by, reason=reason)
    return services.message_unhide(message=obj, by=by, reason=reason)


hide_action = moderation_action(verb="Hid", description="Hide selected items…")
unhide_action = moderation_action(verb="Unhid", description="Unhide selected items…")
review_action = moderation_action(verb="Marked reviewed", description="Mark reviewed (clear flags, keep content)…",
                                  reason_required=False)
delete_action = moderation_action(verb="Deleted", description="Delete selected items…")


@hide_action
def hide(obj, *, by, reason):
    return _hide(obj, by=by, reason=reason)


@unhide_action
def unhide(obj, *, by, reason):
    return _unhide(obj, by=by, reason=reason)


@review_action
def mark_reviewed(obj, *, by, reason):
    return services.mark_reviewed(target=obj, by=by, reason=reason)


@delete_action
def delete_with_reason(obj, *, by, reason):
    return services.moderate_delete(target=obj, by=by, reason=reason)


class RevisionInline(admin.TabularInline):
    model = CommentRevision
    extra = 0
    fields = ("created_at", "editor", "body")
    readonly_fields = fields
    verbose_name = "earlier body"
    verbose_name_plural = "revisions (earlier bodies, newest last)"

    def has_view_permission(self, request, obj=None) -> bool:
        return is_moderator(request.user)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Comment)
class CommentAdmin(ModeratedAdmin):
    target_type = ModerationTarget.COMMENT
    list_display = ("id", "summary", "document_link", "author_link", "anchor_state", "resolved", "hidden",
                    "flag_count", "created_at")
    list_filter = (("document", admin.RelatedOnlyFieldListFilter), "hidden", FlaggedFilter, "resolved",
                   "created_at")
    search_fields = ("body", "document__path", "author__username")
    list_select_related = ("document", "author")
    actions = [hide, unhide, mark_reviewed, delete_with_reason]
    fields = ("document_link", "author_link", "parent_link", "body", "anchor", "resolved", "hidden", "replies",
              "flags_table", "moderation_log", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [RevisionInline]

    @admin.display(description="comment")
    def summary(self, obj: Comment) -> str:
        return excerpt(obj.body)

    @admin.display(description="document", ordering="document__path")
    def document_link(self, obj: Comment) -> str:
        return change_link(obj.document)

    @admin.display(description="author", ordering="author__username")
    def author_link(self, obj: Comment) -> str:
        return change_link(obj.author)

    @admin.display(description="reply to")
    def parent_link(self, obj: Comment) -> str:
        return change_link(obj.parent, excerpt(obj.parent.body, 60)) if obj.parent_id else "-"

    @admin.display(description="replies")
    def replies(self, obj: Comment) -> str:
        replies = list(obj.replies.all())
        if not replies:
            return "-"
        return format_html_join(mark_safe("<br>"), "{}",
                                ((change_link(reply, excerpt(reply.body, 60)),) for reply in replies))

    @admin.display(description="anchor")
    def anchor_state(self, obj: Comment) -> str:
        if not isinstance(obj.anchor, dict):
            return "-"
        return obj.anchor.get("state", "exact")


@admin.register(DiscussionMessage)
class DiscussionMessageAdmin(ModeratedAdmin):
    target_type = ModerationTarget.MESSAGE
    list_display = ("id", "summary", "discussion_link", "document_link", "author_link", "hidden", "flag_count",
                    "created_at")
    list_filter = (("discussion__document", admin.RelatedOnlyFieldListFilter), "hidden", FlaggedFilter,
                   "created_at")
    search_fields = ("body", "discussion__title", "discussion__document__path", "author__username")
    list_select_related = ("discussion__document", "author")
    actions = [hide, unhide, mark_reviewed, delete_with_reason]
    fields = ("discussion_link", "document_link", "author_link", "body", "hidden", "flags_table",
              "moderation_log", "created_at")
    readonly_fields = fields

    @admin.display(description="message")
    def summary(self, obj: DiscussionMessage) -> str:
        return excerpt(obj.body)

    @admin.display(description="discussion")
    def discussion_link(self, obj: DiscussionMessage) -> str:
        return change_link(obj.discussion)

    @admin.display(description="document", ordering="discussion__document__path")
    def document_link(self, obj: DiscussionMessage) -> str:
        return change_link(obj.discussion.document)

    @admin.display(description="author", ordering="author__username")
    def author_link(self, obj: DiscussionMessage) -> str:
        return change_link(obj.author)


class QueueMixin:
    """Only items with open flags, the most flagged first, then the longest waiting."""

    list_display_links = ("id", "summary")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(open_flags__gt=0)

    def get_ordering(self, request):
        return ("-open_flags", "last_flagged", "id")

    def has_module_permission(self, request) -> bool:
        return is_moderator(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_moderator(request.user)


@admin.register(FlaggedComment)
class FlaggedCommentAdmin(QueueMixin, CommentAdmin):
    list_display = ("id", "summary", "flag_count", "flag_reasons", "document_link", "author_link", "hidden",
                    "last_flag")
    list_filter = (("document", admin.RelatedOnlyFieldListFilter), "hidden")


@admin.register(FlaggedMessage)
class FlaggedMessageAdmin(QueueMixin, DiscussionMessageAdmin):
    list_display = ("id", "summary", "flag_count", "flag_reasons", "document_link", "author_link", "hidden",
                    "last_flag")
    list_filter = (("discussion__document", admin.RelatedOnlyFieldListFilter), "hidden")


# --- read-only lists ------------------------------------------------------------------------



@admin.register(ModerationLogEntry)
class ModerationLogEntryAdmin(ModeratorOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "target", "document", "reason_excerpt")
    list_filter = ("action", "target_type", ("document", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("reason", "actor__username", "document__path")
    list_select_related = ("actor", "document")
    fields = ("created_at", "actor", "action", "target", "document", "old_state", "new_state", "reason")
    readonly_fields = fields

    def get_queryset(self, request):
        # Whether each entry's item still exists, in the list's own query
        # rather than one query per row.
        return super().get_queryset(request).annotate(
            comment_exists=Exists(Comment.objects.filter(pk=OuterRef("target_id"))),
            message_exists=Exists(DiscussionMessage.objects.filter(pk=OuterRef("target_id"))),
        )

    @admin.display(description="item")
    def target(self, obj: ModerationLogEntry) -> str:
        label = f"{obj.get_target_type_display()} {obj.target_id}"
        comment = obj.target_type == ModerationTarget.COMMENT
        model, exists = (Comment, obj.comment_exists) if comment else (DiscussionMessage, obj.message_exists)
        return change_link(model(pk=obj.target_id), label) if exists else f"{label} (deleted)"

    @admin.display(description="reason")
    def reason_excerpt(self, obj: ModerationLogEntry) -> str:
        return excerpt(obj.reason, 60) or "-"


@admin.register(Flag)
class FlagAdmin(ModeratorOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "target", "reason", "user", "is_open")
    list_filter = ("reason", ("cleared_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("note", "user__username", "comment__body", "message__body")
    list_select_related = ("user", "comment", "message")
    fields = ("created_at", "target", "reason", "note", "user", "cleared_at", "cleared_by")
    readonly_fields = fields

    @admin.display(description="item")
    def target(self, obj: Flag) -> str:
        item = obj.comment or obj.message
        kind = "Comment" if obj.comment_id else "Message"
        return change_link(item, f"{kind} {item.pk}: {excerpt(item.body, 50)}")

    @admin.display(description="open", boolean=True)
    def is_open(self, obj: Flag) -> bool:
        return obj.cleared_at is None

