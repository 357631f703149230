"""Ephemeral endpoints: typing, cursor, presence (spec §4).

Typing and cursor updates go to the document's other streams and are never
stored.  They pass the same per-user write limit as every other write.  A
typing indicator lasts ``TYPING_TTL_SECONDS`` unless renewed; clients drop it
after that (the data says so in ``expiresIn``).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime import presence
from realtime.idempotency import IdempotentWritesMixin
from realtime.publish import send_ephemeral

from ..permissions import can_review
from . import serializers as s
from .views import _document_by_path, _require, _valid

TYPING_TTL_SECONDS = 5


class TypingSerializer(serializers.Serializer):
    docPath = s.DocPathField()
    target = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class CursorSerializer(serializers.Serializer):
    docPath = s.DocPathField()
    position = serializers.IntegerField(min_value=0, max_value=s.CONTENT_MAX)


class TypingView(IdempotentWritesMixin, APIView):
    def post(self, request: Request) -> Response:
        data = _valid(TypingSerializer, request.data)
        document = _document_by_path(request, data["docPath"])
        _require(can_review(request.user, document))
        send_ephemeral(key=document.path, type="user.typing", exclude_user=request.user.pk, data={
            "userId": request.user.pk, "username": request.user.get_username(), "target": data["target"],
            "expiresIn": TYPING_TTL_SECONDS,
        })
        return Response(status=status.HTTP_202_ACCEPTED)


class CursorView(IdempotentWritesMixin, APIView):
    def post(self, request: Request) -> Response:
        data = _valid(CursorSerializer, request.data)
        document = _document_by_path(request, data["docPath"])
        _require(can_review(request.user, document))
        send_ephemeral(key=document.path, type="user.cursor", exclude_user=request.user.pk, data={
            "userId": request.user.pk, "username": request.user.get_username(), "position": data["position"],
        })
        return Response(status=status.HTTP_202_ACCEPTED)


class PresenceView(APIView):
    def get(self, request: Request) -> Response:
        document = _document_by_path(request, request.query_params.get("docPath"))
        online = async_to_sync(presence.snapshot)(document.path)
        return Response([{"userId": uid, "username": name, "status": presence.ONLINE} for uid, name in online])
