"""Documents, members, suggestions and discussions."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .. import services
from ..models import (
    Comment,
    Discussion,
    DiscussionMessage,
    Document,
    Membership,
    ModerationLogEntry,
    Role,
    Suggestion,
)
from ..forms import ContentField
from ..permissions import is_moderator
from ..stream_access import is_valid_path
from .base import ModeratorVisibleMixin, ReadOnlyMixin, change_link, changelist_link, excerpt


class DocumentForm(forms.ModelForm):
    content = ContentField(widget=forms.Textarea(attrs={"rows": 20, "cols": 100}))

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
            # Only what the moderator changed: an untouched content is not a
            # new version (nor a reason to place every anchor again).
            changed = {field: value for field, value in data.items() if field in form.changed_data}
            if changed:
                services.document_update(document=obj, **changed)
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


