"""Server-rendered pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from . import selectors
from .permissions import role_of


@login_required
def index(request):
    documents = selectors.with_open_comment_counts(selectors.documents_visible_to(request.user))
    return render(request, "reviews/index.html", {"documents": documents})


@login_required
def document_page(request, path: str):
    document = selectors.document_for(request.user, path=path)
    if document is None:
        raise Http404
    return render(request, "reviews/document.html", {
        "document": document,
        "role": role_of(request.user, document),
        "last_event_id": document.stream.last_id,
    })
