"""Server-rendered pages: the document list and the review page.

The review page embeds everything it shows as JSON (``json_script``) together
with the document's ``lastEventId`` read *before* that data: the browser's
event stream starts right after it, and any event the snapshot already covers
is applied again idempotently (objects are replaced by id), so nothing is
missed and nothing shows twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_http_methods

from . import representations as rep
from . import selectors, services
from .forms import ContentField
from .models import Document, Membership, Visibility
from .permissions import can_maintain, can_moderate, can_review, remember_role, role_of
from .rendering import render_passages
from .stream_access import is_valid_path


class DocumentForm(forms.Form):
    title = forms.CharField(max_length=200)
    path = forms.CharField(max_length=255, help_text="Like guides/setup.md: letters, digits, '.', '_' or '-' "
                                                     "in segments joined by '/'.")
    visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.PRIVATE)
    content = ContentField(widget=forms.Textarea(attrs={"rows": 8}))

    def clean_path(self) -> str:
        path = self.cleaned_data["path"].strip()
        if not is_valid_path(path):
            raise forms.ValidationError("Enter a valid path: segments of letters, digits, '.', '_' or '-' "
                                        "joined by '/'.")
        return path


@login_required
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    """The user's documents with their open-comment counts, and a form to create one."""
    form = DocumentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            document = services.document_create(user=request.user, **form.cleaned_data)
        except services.ServiceError as exc:
            form.add_error(exc.field or None, exc.message)
        else:
            messages.success(request, f"Created {document.path}.")
            return redirect("document", path=document.path)
    documents = selectors.with_open_comment_counts(selectors.documents_visible_to(request.user))
    rows = [{"document": doc, "role": remember_role(request.user, doc, doc.member_role),
             "updated": _ago(doc.updated_at)}
            for doc in documents]
    status = 400 if request.method == "POST" else 200
    # A refused form opens with the focus on its first field in error.
    first_error = next((field.name for field in form if field.errors), None) if form.is_bound else None
    return render(request, "reviews/index.html", {"rows": rows, "form": form, "first_error": first_error},
                  status=status)


def _ago(moment) -> str:
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment).split(',')[0]} ago"


def page_state(user: Any, document: Document) -> dict[str, Any]:
    """Everything the review page shows, as the API's JSON, after ``lastEventId``.

    ``document`` must come straight from the selectors: its ``stream.last_id``
    was read with the document row, before any of the lists below.
    """
    role = role_of(user, document)
    render_message = rep.moderated_message_json if can_moderate(user, document) else rep.message_json
    messages: dict[int, list[dict[str, Any]]] = {}
    for message in selectors.document_messages_visible_to(user, document):
        messages.setdefault(message.discussion_id, []).append(render_message(message))
    discussions = []
    for discussion in selectors.discussions_visible_to(user, document):
        item = rep.discussion_json(discussion)
        item["messages"] = messages.get(discussion.pk, [])
        discussions.append(item)
    members = None
    if can_maintain(user, document):
        members = [rep.member_json(m) for m in
                   Membership.objects.filter(document=document).select_related("user").order_by("user__username")]
    return {
        "doc": rep.document_json(document, role=role),
        "me": {"id": user.pk, "username": user.get_username()},
        "canReview": can_review(user, document),
        "canMaintain": can_maintain(user, document),
        "comments": [rep.comment_json(c) for c in selectors.comments_visible_to(user, document)],
        "suggestions": [rep.suggestion_json(s) for s in selectors.suggestions_visible_to(user, document)],
        "discussions": discussions,
        "members": members,
    }


@login_required
def document_page(request: HttpRequest, path: str) -> HttpResponse:
    """The review page; ``?format=json`` answers its state and passages (for reloads)."""
    document = selectors.document_for(request.user, path=path)
    if document is None:
        raise Http404
    state = page_state(request.user, document)
    passages = render_passages(document.content)
    if request.GET.get("format") == "json":
        return JsonResponse({**state, "html": passages}, headers={"Cache-Control": "no-store"})
    response = render(request, "reviews/document.html", {
        "document": document,
        "role": state["doc"]["role"],
        "state": state,
        "passages": passages,
        "last_event_id": state["doc"]["lastEventId"],
    })
    response["Cache-Control"] = "no-store"
    return response
