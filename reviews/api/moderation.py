"""Moderation and export endpoints.

- ``POST /api/comments/{id}/flag/``, ``POST /api/messages/{id}/flag/`` (also
  ``/api/discussions/{d}/messages/{id}/flag/``) ``{reason, note?}``: anyone
  who can read the item reports it; one open flag per user per item (409).
- ``POST /api/comments/{id}/hide/`` and ``.../unhide/`` ``{reason}``, the same
  for messages: maintainers of the document and moderators.  Logged.
- ``DELETE /api/messages/{id}/``: the author or a moderator.
- ``GET /api/comments/{id}/revisions/``: a comment's earlier bodies (moderators).
- ``GET /api/documents/{id}/export?format=w3c|md``.

See docs/moderation.md.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.http import Http404, HttpResponse
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime.idempotency import IdempotentWritesMixin

from .. import exports, selectors, services
from .. import representations as rep
from ..models import Comment, DiscussionMessage, FlagReason
from ..permissions import can_edit_own, can_moderate
from .views import _require, _valid

NOTE_MAX = 1000
REASON_MAX = 1000


class FlagSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=FlagReason.choices)
    note = serializers.CharField(max_length=NOTE_MAX, required=False, allow_blank=True, default="")


class ModerationReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX)


def flag_json(flag) -> dict[str, Any]:
    target = {"type": "comment", "id": flag.comment_id} if flag.comment_id else {"type": "message",
                                                                                "id": flag.message_id}
    return {"id": flag.pk, "target": target, "reason": flag.reason, "note": flag.note,
            "createdAt": rep.timestamp(flag.created_at)}




def visible_comment(request: Request, pk: Any) -> Comment:
    """The comment if the user may see it, else 404 (missing and hidden alike)."""
    comment = selectors.comment_for(request.user, pk)
    if comment is None:
        raise Http404
    return comment


def visible_message(request: Request, pk: Any, discussion_pk: Any = None) -> DiscussionMessage:
    """The message if the user may see it, else 404 (missing and hidden alike)."""
    message = selectors.message_for(request.user, pk)
    if message is None or (discussion_pk is not None and str(message.discussion_id) != str(discussion_pk)):
        raise Http404
    return message


def _document_of(target: Comment | DiscussionMessage):
    return target.document if isinstance(target, Comment) else target.discussion.document


class _Flag(IdempotentWritesMixin, APIView):
    def target(self, request: Request, **kwargs: Any) -> Comment | DiscussionMessage:
        raise NotImplementedError

    def post(self, request: Request, **kwargs: Any) -> Response:
        target = self.target(request, **kwargs)
        data = _valid(FlagSerializer, request.data)
        flag = services.flag_create(user=request.user, target=target, reason=data["reason"], note=data["note"])
        return Response(flag_json(flag), status=status.HTTP_201_CREATED)


class CommentFlagView(_Flag):
    def target(self, request, pk=None, **kwargs):
        return visible_comment(request, pk)


class MessageFlagView(_Flag):
    def target(self, request, pk=None, discussion_pk=None, **kwargs):
        return visible_message(request, pk, discussion_pk)


class _Visibility(IdempotentWritesMixin, APIView):
    """Hide or unhide with a reason (maintainers of the document, moderators)."""

    hidden: bool = True

    def post(self, request: Request, pk: Any = None, **kwargs: Any) -> Response:
        target = self.target(request, pk)
        _require(can_moderate(request.user, _document_of(target)))
        reason = _valid(ModerationReasonSerializer, request.data)["reason"]
        if isinstance(target, Comment):
            change = services.comment_hide if self.hidden else services.comment_unhide
            return Response(rep.comment_json(change(comment=target, by=request.user, reason=reason)))
        change = services.message_hide if self.hidden else services.message_unhide
        return Response(rep.moderated_message_json(change(message=target, by=request.user, reason=reason)))


class CommentHideView(_Visibility):
    hidden = True

    def target(self, request, pk):
        return visible_comment(request, pk)


class CommentUnhideView(CommentHideView):
    hidden = False


class MessageHideView(_Visibility):
    hidden = True

    def target(self, request, pk):
        return visible_message(request, pk)


class MessageUnhideView(MessageHideView):
    hidden = False


class MessageDetailView(IdempotentWritesMixin, APIView):
    def delete(self, request: Request, pk: Any = None) -> Response:
        message = visible_message(request, pk)
        document = message.discussion.document
        _require(can_edit_own(request.user, document, message.author_id) or can_moderate(request.user, document))
        services.discussion_message_delete(message=message, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CommentRevisionsView(APIView):
    def get(self, request: Request, pk: Any = None) -> Response:
        comment = visible_comment(request, pk)
        _require(can_moderate(request.user, comment.document))
        return Response([
            {"id": revision.pk, "editor": rep.author_json(revision.editor) if revision.editor else None,
             "body": revision.body, "createdAt": rep.timestamp(revision.created_at)}
            for revision in comment.revisions.select_related("editor").order_by("id")
        ])


class FixedJSONNegotiation(DefaultContentNegotiation):
    """``?format=`` names the export format here, not a DRF renderer: errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _filename(path: str, suffix: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path) + suffix


class DocumentExportView(APIView):
    content_negotiation_class = FixedJSONNegotiation

    def get(self, request: Request, pk: Any = None) -> HttpResponse:
        document = selectors.document_for(request.user, pk=pk)
        if document is None:
            raise Http404
        fmt = request.query_params.get("format", "w3c")
        if fmt == "w3c":
            base_url = request.build_absolute_uri("/").rstrip("/")
            body = json.dumps(exports.w3c_collection(document, base_url=base_url), ensure_ascii=False, indent=2)
            response = HttpResponse(body, content_type=exports.W3C_CONTENT_TYPE)
            name = _filename(document.path, ".annotations.jsonld")
        elif fmt in ("md", "markdown"):
            response = HttpResponse(exports.markdown_summary(document), content_type=exports.MARKDOWN_CONTENT_TYPE)
            name = _filename(document.path, ".review.md")
        else:
            raise ValidationError({"format": ["Choose 'w3c' (Web Annotation JSON-LD) or 'md' (Markdown)."]})
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "private, no-store"
        return response

