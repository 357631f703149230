from django.contrib import admin

from .models import Event, Stream


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Stream)
class StreamAdmin(ReadOnlyAdmin):
    list_display = ("key", "last_id", "first_kept_id")
    search_fields = ("key",)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("stream", "seq", "type", "created_at")
    list_filter = ("type", ("stream", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("stream__key",)
    list_select_related = ("stream",)
