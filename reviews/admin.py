"""The moderation console.

Every change made here goes through ``reviews.services``, so it emits its
events and keeps the domain's rules; nothing uses ``queryset.update()`` or a
bare ``save()``.  Moderation actions (hide, unhide, mark reviewed, delete)
ask for a reason on an intermediate page, are logged, and are offered only to
moderators: staff holding ``reviews.moderate_content``.  Objects with no
admin workflow of their own (suggestions, discussions, the logs) are
read-only here.
"""

from __future__ import annotations

from typing import Any, Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from . import services
from .models import (
    Comment,
    CommentRevision,
    Discussion,
    DiscussionMessage,
    Document,
    Flag,
    FlaggedComment,
    FlaggedMessage,
    Membership,
    ModerationLogEntry,
    ModerationTarget,
    Role,
    Suggestion,
)
from .permissions import is_moderator
from .stream_access import is_valid_path

OPEN_FLAGS = Q(flags__cleared_at__isnull=True)
# The actions an item's page offers, with their labels there.
ITEM_ACTIONS = (("hide", "Hide…"), ("unhide", "Unhide…"), ("mark_reviewed", "Mark reviewed…"),
                ("delete_with_reason", "Delete…"))
# Posted by an item's page so the action returns there.
RETURN_FIELD = "_return"


# --- links ------------------------------------------------------------------------


def change_link(obj: Any, text: Any = None) -> str:
    """A link to ``obj``'s admin page (its text when there is none)."""
    if obj is None:
        return "-"
    opts = obj._meta.concrete_model._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except Exception:  # noqa: BLE001 - a model without an admin page
        return str(text if text is not None else obj)
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


def changelist_link(model: type, text: str, **filters: Any) -> str:
    opts = model._meta
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


def excerpt(text: str, length: int = 80) -> str:
    return Truncator(text.replace("\n", " ")).chars(length)


def target_of(entry_type: str, target_id: int) -> Any:
    model = Comment if entry_type == ModerationTarget.COMMENT else DiscussionMessage
    return model.objects.filter(pk=target_id).first()


def moderation_log_table(target_type: str, target_id: int) -> str:
    entries = ModerationLogEntry.objects.filter(target_type=target_type, target_id=target_id).select_related("actor")
    if not entries:
        return "No moderation yet."
    rows = format_html_join(
        "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((entry.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"), entry.actor or "-", entry.get_action_display(),
          _state_text(entry.old_state), _state_text(entry.new_state), entry.reason or "-") for entry in entries),
    )
    return format_html(
        '<table class="moderation-log"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Before</th>'
        "<th>After</th><th>Reason</th></tr></thead><tbody>{}</tbody></table>", rows)


def _state_text(state: dict[str, Any]) -> str:
    return ", ".join(f"{key}: {excerpt(str(value), 60)}" for key, value in state.items()) or "-"


# --- permissions ------------------------------------------------------------------------


class ModeratorVisibleMixin:
    """Moderators may see these lists even without Django's view permissions."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or is_moderator(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or is_moderator(request.user)


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ModeratorOnlyMixin(ReadOnlyMixin):
    """Moderation records: moderators only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_moderator(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_moderator(request.user)


# --- moderation actions ----------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=1000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Recorded in the moderation log of each item.")

    def __init__(self, *args: Any, required: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = required


class FlaggedFilter(admin.SimpleListFilter):
    title = "flagged"
    parameter_name = "flagged"

    def lookups(self, request, model_admin):
        return (("yes", "With open flags"), ("no", "Without open flags"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(open_flags__gt=0)
        if self.value() == "no":
            return queryset.filter(open_flags=0)
        return queryset


def moderation_action(*, verb: str, description: str, reason_required: bool = True):
    """An admin action that asks for a reason, then calls ``service(obj, by, reason)`` per item."""

    def decorate(service: Callable[..., Any]):
        def action(modeladmin: "ModeratedAdmin", request: HttpRequest, queryset: QuerySet):
            return modeladmin.run_moderation(request, queryset, name=action.__name__, verb=verb,
                                             title=description, service=service, reason_required=reason_required)

        action.__name__ = service.__name__
        return admin.action(description=description, permissions=["moderate"])(action)

    return decorate


class ModeratedAdmin(ModeratorVisibleMixin, admin.ModelAdmin):
    """Shared by comments and messages: flags, the moderation log and the actions."""

    target_type: str = ""
    change_form_template = "admin/reviews/moderated_change_form.html"

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        return is_moderator(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # content is changed by its authors; moderators use the actions

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting is the logged "delete" action

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Annotated before ordering, so the queue can order by its flag count.
        qs = self.model._default_manager.get_queryset().annotate(
            open_flags=Count("flags", filter=OPEN_FLAGS, distinct=True),
            last_flagged=Max("flags__created_at", filter=OPEN_FLAGS),
        ).prefetch_related(
            Prefetch("flags", queryset=Flag.objects.filter(cleared_at__isnull=True), to_attr="open_flag_list")
        )
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    @admin.display(description="open flags", ordering="open_flags")
    def flag_count(self, obj: Any) -> int:
        return getattr(obj, "open_flags", 0)

    @admin.display(description="flag reasons")
    def flag_reasons(self, obj: Any) -> str:
        reasons: dict[str, int] = {}
        for flag in getattr(obj, "open_flag_list", []):
            reasons[flag.get_reason_display()] = reasons.get(flag.get_reason_display(), 0) + 1
        return ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in reasons.items()) or "-"

    @admin.display(description="last flagged", ordering="last_flagged")
    def last_flag(self, obj: Any) -> Any:
        return getattr(obj, "last_flagged", None)

    @admin.display(description="flags")
    def flags_table(self, obj: Any) -> str:
        flags = obj.flags.select_related("user", "cleared_by").order_by("-created_at")
        if not flags:
            return "No flags."
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((flag.created_at.strftime("%Y-%m-%d %H:%M UTC"), flag.user, flag.get_reason_display(), flag.note or "-",
              "open" if flag.is_open else f"cleared by {flag.cleared_by or '-'}") for flag in flags),
        )
        return format_html("<table><thead><tr><th>When</th><th>Who</th><th>Reason</th><th>Note</th>"
                           "<th>State</th></tr></thead><tbody>{}</tbody></table>", rows)

    @admin.display(description="moderation log")
    def moderation_log(self, obj: Any) -> str:
        return moderation_log_table(self.target_type, obj.pk)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = dict(extra_context or {})
        obj = self.get_object(request, object_id)
        if obj is not None and self.has_moderate_permission(request):
            opts = self.model._meta
            available = self.get_actions(request)
            extra_context["moderation_actions"] = [
                (name, label) for name, label in ITEM_ACTIONS
                if name in available and not (name == "hide" and obj.hidden) and not (name == "unhide" and not obj.hidden)
            ]
            extra_context["moderation_url"] = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            extra_context["action_checkbox_name"] = helpers.ACTION_CHECKBOX_NAME
        return super().change_view(request, object_id, form_url, extra_context)

    def run_moderation(self, request: HttpRequest, queryset: QuerySet, *, name: str, verb: str, title: str,
                       service: Callable[..., Any], reason_required: bool):
        if not self.has_moderate_permission(request):
            raise PermissionDenied
        form = ReasonForm(request.POST if request.POST.get("apply") else None, required=reason_required)
        if form.is_bound and form.is_valid():
            done = 0
            for obj in queryset:
                try:
                    if service(obj, by=request.user, reason=form.cleaned_data["reason"]) is not False:
                        done += 1
                except ObjectDoesNotExist:
                    continue  # deleted with its parent earlier in this batch
                except services.ServiceError as exc:
                    self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            noun = self.model._meta.verbose_name if done == 1 else self.model._meta.verbose_name_plural
            self.message_user(request, f"{verb} {done} {noun}.", messages.SUCCESS)
            return self._back_to_item(request, queryset)
        context = {
            **self.admin_site.each_context(request),
            "title": title.rstrip("…."),
            "opts": self.model._meta,
            "objects": list(queryset),
            "form": form,
            "action": name,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "return_to_item": request.POST.get(RETURN_FIELD) == "item",
            "media": self.media,
        }
        return TemplateResponse(request, "admin/reviews/moderation_confirmation.html", context)

    def _back_to_item(self, request: HttpRequest, queryset: QuerySet) -> HttpResponseRedirect | None:
        """Started from an item's page: back to it if it still exists (else the list)."""
        if request.POST.get(RETURN_FIELD) != "item":
            return None
        # The item's own page, not the queue's: once reviewed it leaves the queue.
        concrete = self.model._meta.concrete_model
        remaining = list(concrete._default_manager.filter(pk__in=[obj.pk for obj in queryset])[:2])
        if len(remaining) != 1:
            return None
        opts = concrete._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change",
                                            args=[remaining[0].pk]))


# --- documents and members ------------------------------------------------------------------


class DocumentForm(forms.ModelForm):
    class Meta:
        model = Document
        fields = ["path", "title", "content", "visibility"]

    def clean_path(self) -> str:
        path = self.cleaned_data["path"]
        if not is_valid_path(path):
            raise forms.ValidationError("Segments of letters, digits, '.', '_' or '-' joined by '/'.")
        return path


class MembershipFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        roles = [form.cleaned_data.get("role") for form in self.forms
                 if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if self.instance.pk and Role.MAINTAINER not in roles:
            raise forms.ValidationError("A document must keep at least one maintainer.")


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or is_moderator(request.user)


@admin.register(Document)
class DocumentAdmin(ModeratorVisibleMixin, admin.ModelAdmin):
    form = DocumentForm
    list_display = ("path", "title", "visibility", "version", "comment_count", "updated_at")
    list_filter = ("visibility", "updated_at")
    search_fields = ("path", "title")
    inlines = [MembershipInline]
    fields = ("path", "title", "visibility", "content", "version", "related", "created_by", "created_at",
              "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(comment_total=Count("comments", distinct=True))

    def get_readonly_fields(self, request, obj=None):
        readonly = ["version", "related", "created_by", "created_at", "updated_at"]
        # The path is the key of the document's event stream: it never changes.
        return readonly + ["path"] if obj is not None else readonly

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # no service deletes documents: their event streams would dangle

    @admin.display(description="comments", ordering="comment_total")
    def comment_count(self, obj: Document) -> int:
        return obj.comment_total

    @admin.display(description="related")
    def related(self, obj: Document) -> str:
        if obj.pk is None:
            return "-"
        links = [
            changelist_link(Comment, "comments", document__id__exact=obj.pk),
            changelist_link(Suggestion, "suggestions", document__id__exact=obj.pk),
            changelist_link(Discussion, "discussions", document__id__exact=obj.pk),
            changelist_link(DiscussionMessage, "messages", discussion__document__id__exact=obj.pk),
            changelist_link(ModerationLogEntry, "moderation log", document__id__exact=obj.pk),
            format_html('<a href="{}?stream__id__exact={}">event log</a>',
                        reverse("admin:realtime_event_changelist"), obj.stream_id),
            format_html('<a href="/docs/{}">review page</a>', obj.path),
        ]
        return format_html_join(" · ", "{}", ((link,) for link in links))

    def save_model(self, request, obj: Document, form, change: bool) -> None:
        data = {field: form.cleaned_data[field] for field in ("title", "content", "visibility")}
        if change:
            services.document_update(document=obj, **data)
            obj.refresh_from_db()
            return
        document = services.document_create(user=request.user, path=form.cleaned_data["path"], **data)
        # The admin goes on with this instance (inlines, redirect): make it the saved one.
        obj.pk, obj.stream, obj.created_by = document.pk, document.stream, document.created_by
        obj.created_at, obj.updated_at, obj.version = document.created_at, document.updated_at, document.version

    def save_formset(self, request, form, formset, change: bool) -> None:
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        document = form.instance
        for inline in formset.forms:
            data = getattr(inline, "cleaned_data", None)
            if not data or (not data.get("DELETE") and not inline.has_changed()):
                continue
            try:
                if data.get("DELETE"):
                    if inline.instance.pk:
                        services.member_remove(document=document, user=inline.instance.user)
                else:
                    if inline.instance.pk and inline.initial.get("user") not in (None, data["user"].pk):
                        old = Membership.objects.get(pk=inline.instance.pk)
                        services.member_remove(document=document, user=old.user)
                    services.member_set(document=document, user=data["user"], role=data["role"])
            except services.ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


@admin.register(Membership)
class MembershipAdmin(ReadOnlyMixin, ModeratorVisibleMixin, admin.ModelAdmin):
    list_display = ("document", "user", "role", "created_at")
    list_filter = ("role", ("document", admin.RelatedOnlyFieldListFilter))
    search_fields = ("document__path", "user__username")
    list_select_related = ("document", "user")


# --- comments and messages ------------------------------------------------------------------


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


@admin.register(Suggestion)
class SuggestionAdmin(ReadOnlyMixin, ModeratorVisibleMixin, admin.ModelAdmin):
    list_display = ("id", "document_link", "author_link", "quote", "replacement_excerpt", "status", "anchor_state",
                    "created_at")
    list_filter = (("document", admin.RelatedOnlyFieldListFilter), "status", "created_at")
    search_fields = ("replacement", "note", "document__path", "author__username")
    list_select_related = ("document", "author")
    fields = ("document_link", "author_link", "anchor", "replacement", "note", "status", "base_version",
              "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="document", ordering="document__path")
    def document_link(self, obj: Suggestion) -> str:
        return change_link(obj.document)

    @admin.display(description="author", ordering="author__username")
    def author_link(self, obj: Suggestion) -> str:
        return change_link(obj.author)

    @admin.display(description="quote")
    def quote(self, obj: Suggestion) -> str:
        return excerpt(str((obj.anchor or {}).get("quote", "")), 50)

    @admin.display(description="replacement")
    def replacement_excerpt(self, obj: Suggestion) -> str:
        return excerpt(obj.replacement, 50)

    @admin.display(description="anchor")
    def anchor_state(self, obj: Suggestion) -> str:
        return (obj.anchor or {}).get("state", "exact")


@admin.register(Discussion)
class DiscussionAdmin(ReadOnlyMixin, ModeratorVisibleMixin, admin.ModelAdmin):
    list_display = ("id", "title", "document_link", "author_link", "message_count", "created_at")
    list_filter = (("document", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("title", "document__path", "author__username")
    list_select_related = ("document", "author")
    fields = ("title", "document_link", "author_link", "message_count", "created_at", "updated_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(messages_total=Count("messages"))

    @admin.display(description="document", ordering="document__path")
    def document_link(self, obj: Discussion) -> str:
        return change_link(obj.document)

    @admin.display(description="author", ordering="author__username")
    def author_link(self, obj: Discussion) -> str:
        return change_link(obj.author)

    @admin.display(description="messages", ordering="messages_total")
    def message_count(self, obj: Discussion) -> str:
        return changelist_link(DiscussionMessage, str(obj.messages_total), discussion__id__exact=obj.pk)


@admin.register(ModerationLogEntry)
class ModerationLogEntryAdmin(ModeratorOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "target", "document", "reason_excerpt")
    list_filter = ("action", "target_type", ("document", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("reason", "actor__username", "document__path")
    list_select_related = ("actor", "document")
    fields = ("created_at", "actor", "action", "target", "document", "old_state", "new_state", "reason")
    readonly_fields = fields

    @admin.display(description="item")
    def target(self, obj: ModerationLogEntry) -> str:
        label = f"{obj.get_target_type_display()} {obj.target_id}"
        found = target_of(obj.target_type, obj.target_id)
        return change_link(found, label) if found is not None else f"{label} (deleted)"

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
