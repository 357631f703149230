"""Links, mixins and the moderation-action machinery shared by the admins."""

from __future__ import annotations

from typing import Any, Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from .. import services
from ..models import Flag, ModerationLogEntry
from ..permissions import is_moderator

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


