from django.contrib import admin

from .models import Comment, Discussion, DiscussionMessage, Document, Membership, Suggestion


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("path", "title", "visibility", "version", "updated_at")
    list_filter = ("visibility",)
    search_fields = ("path", "title")
    readonly_fields = ("stream", "version", "created_by", "created_at", "updated_at")
    inlines = [MembershipInline]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("id", "document", "author", "resolved", "hidden", "created_at")
    list_filter = ("hidden", "resolved", "created_at")
    search_fields = ("body", "document__path", "author__username")
    list_select_related = ("document", "author")
    readonly_fields = ("document", "author", "parent", "anchor", "created_at", "updated_at")


@admin.register(Suggestion)
class SuggestionAdmin(admin.ModelAdmin):
    list_display = ("id", "document", "author", "status", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("replacement", "note", "document__path")
    list_select_related = ("document", "author")
    readonly_fields = ("document", "author", "anchor", "base_version", "created_at", "updated_at")


@admin.register(Discussion)
class DiscussionAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "document", "author", "created_at")
    search_fields = ("title", "document__path")
    list_select_related = ("document", "author")


@admin.register(DiscussionMessage)
class DiscussionMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "discussion", "author", "hidden", "created_at")
    list_filter = ("hidden",)
    search_fields = ("body",)
    list_select_related = ("discussion", "author")
