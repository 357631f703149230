"""REST endpoints.  Every lookup goes through the selectors, every write through
the services; a document the user may not read is a 404 like a missing one."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import Http404
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from realtime.idempotency import IdempotentWritesMixin

from .. import representations as rep
from .. import selectors, services
from ..models import Comment, Discussion, Document, Membership, Suggestion
from ..permissions import can_edit_own, can_maintain, can_moderate, can_review, remember_role, role_of
from ..stream_access import is_valid_path
from . import serializers as s

User = get_user_model()


def _valid(serializer_class, data, *, partial: bool = False) -> dict[str, Any]:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _document_by_path(request: Request, path: str | None) -> Document:
    if path is None or path == "":
        raise ValidationError({"docPath": ["This field is required."]})
    if not is_valid_path(path):
        raise ValidationError({"docPath": ["Enter a valid document path."]})
    document = selectors.document_for(request.user, path=path)
    if document is None:
        raise Http404
    return document


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied()


class DocumentViewSet(IdempotentWritesMixin, viewsets.ViewSet):
    def list(self, request: Request) -> Response:
        qs = selectors.documents_visible_to(request.user)
        path = request.query_params.get("path")
        if path is not None:
            qs = qs.filter(path=path)
        # The list's query read each document's membership role already.
        return Response([rep.document_summary_json(doc, role=remember_role(request.user, doc, doc.member_role))
                         for doc in qs])

    def create(self, request: Request) -> Response:
        data = _valid(s.DocumentCreateSerializer, request.data)
        document = services.document_create(user=request.user, **data)
        return Response(rep.document_json(document, role=role_of(request.user, document)),
                        status=status.HTTP_201_CREATED)

    def _get(self, request: Request, pk: Any) -> Document:
        document = selectors.document_for(request.user, pk=pk)
        if document is None:
            raise Http404
        return document

    def retrieve(self, request: Request, pk: Any = None) -> Response:
        document = self._get(request, pk)
        return Response(rep.document_json(document, role=role_of(request.user, document)))

    def partial_update(self, request: Request, pk: Any = None) -> Response:
        document = self._get(request, pk)
        _require(can_maintain(request.user, document))
        data = _valid(s.DocumentUpdateSerializer, request.data, partial=True)
        document = services.document_update(document=document, **data)
        return Response(rep.document_json(document, role=role_of(request.user, document)))

    @action(detail=True, methods=["get", "post"], url_path="members")
    def members(self, request: Request, pk: Any = None) -> Response:
        document = self._get(request, pk)
        if request.method == "GET":
            memberships = Membership.objects.filter(document=document).select_related("user").order_by("user_id")
            return Response([rep.member_json(m) for m in memberships])
        _require(can_maintain(request.user, document))
        data = _valid(s.MemberSerializer, request.data)
        user = User.objects.filter(username=data["username"], is_active=True).first()
        if user is None:
            raise ValidationError({"username": ["No active user with this username."]})
        membership, created = services.member_set(document=document, user=user, role=data["role"])
        return Response(rep.member_json(membership), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>[0-9]+)")
    def member_detail(self, request: Request, pk: Any = None, user_id: str = "") -> Response:
        document = self._get(request, pk)
        _require(can_maintain(request.user, document))
        key = selectors.as_pk(user_id)
        user = None if key is None else User.objects.filter(pk=key).first()
        if user is None or not services.member_remove(document=document, user=user):
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)


class _DocumentScopedViewSet(IdempotentWritesMixin, viewsets.ViewSet):
    """List endpoints take ``?docPath=`` and page oldest first."""

    def paginated(self, request: Request, queryset, render) -> Response:
        from .pagination import OldestFirstCursorPagination

        paginator = OldestFirstCursorPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response([render(obj) for obj in page])


class CommentViewSet(_DocumentScopedViewSet):
    def list(self, request: Request) -> Response:
        document = _document_by_path(request, request.query_params.get("docPath"))
        return self.paginated(request, selectors.comments_visible_to(request.user, document), rep.comment_json)

    def create(self, request: Request) -> Response:
        data = _valid(s.CommentCreateSerializer, request.data)
        document = _document_by_path(request, data["docPath"])
        _require(can_review(request.user, document))
        parent = None
        if data.get("parent") is not None:
            parent = selectors.comments_visible_to(request.user, document).filter(pk=data["parent"]).first()
            if parent is None:
                raise ValidationError({"parent": ["No such comment on this document."]})
        comment = services.comment_create(author=request.user, document=document, body=data["body"],
                                          anchor=data.get("anchor"), parent=parent)
        return Response(rep.comment_json(comment), status=status.HTTP_201_CREATED)

    def _get(self, request: Request, pk: Any) -> Comment:
        comment = selectors.comment_for(request.user, pk)
        if comment is None:
            raise Http404
        return comment

    def retrieve(self, request: Request, pk: Any = None) -> Response:
        return Response(rep.comment_json(self._get(request, pk)))

    def partial_update(self, request: Request, pk: Any = None) -> Response:
        comment = self._get(request, pk)
        data = _valid(s.CommentUpdateSerializer, request.data, partial=True)
        user, document = request.user, comment.document
        own = can_edit_own(user, document, comment.author_id)
        if "body" in data:
            _require(own)
        if "resolved" in data:
            _require(own or can_maintain(user, document))
        if "hidden" in data:
            _require(can_moderate(user, document))
        comment = services.comment_update(comment=comment, by=request.user, **data)
        return Response(rep.comment_json(comment))

    def destroy(self, request: Request, pk: Any = None) -> Response:
        comment = self._get(request, pk)
        _require(can_edit_own(request.user, comment.document, comment.author_id)
                 or can_moderate(request.user, comment.document))
        services.comment_delete(comment=comment, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SuggestionViewSet(_DocumentScopedViewSet):
    def list(self, request: Request) -> Response:
        document = _document_by_path(request, request.query_params.get("docPath"))
        return self.paginated(request, selectors.suggestions_visible_to(request.user, document),
                              rep.suggestion_json)

    def create(self, request: Request) -> Response:
        data = _valid(s.SuggestionCreateSerializer, request.data)
        document = _document_by_path(request, data["docPath"])
        _require(can_review(request.user, document))
        suggestion = services.suggestion_create(author=request.user, document=document, anchor=data["anchor"],
                                                replacement=data["replacement"], note=data.get("note", ""))
        return Response(rep.suggestion_json(suggestion), status=status.HTTP_201_CREATED)

    def _get(self, request: Request, pk: Any) -> Suggestion:
        suggestion = selectors.suggestion_for(request.user, pk)
        if suggestion is None:
            raise Http404
        return suggestion

    def retrieve(self, request: Request, pk: Any = None) -> Response:
        return Response(rep.suggestion_json(self._get(request, pk)))

    def partial_update(self, request: Request, pk: Any = None) -> Response:
        suggestion = self._get(request, pk)
        _require(can_edit_own(request.user, suggestion.document, suggestion.author_id))
        data = _valid(s.SuggestionUpdateSerializer, request.data, partial=True)
        suggestion = services.suggestion_update(suggestion=suggestion, **data)
        return Response(rep.suggestion_json(suggestion))

    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: Any = None) -> Response:
        suggestion = self._get(request, pk)
        _require(can_maintain(request.user, suggestion.document))
        expected = request.headers.get("If-Match")
        expected_version = None
        if expected:
            expected = expected.strip().strip('"').removeprefix("W/").strip('"')
            if not (expected.isascii() and expected.isdigit() and len(expected) <= 18):
                raise ValidationError({"If-Match": ["Give the document version the approval is based on."]})
            expected_version = int(expected)
        result = services.suggestion_approve(suggestion=suggestion, expected_version=expected_version)
        if not result.applied:
            return Response({"detail": result.reason}, status=status.HTTP_409_CONFLICT)
        return Response(rep.suggestion_json(result.suggestion))

    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: Any = None) -> Response:
        suggestion = self._get(request, pk)
        _require(can_maintain(request.user, suggestion.document))
        suggestion = services.suggestion_reject(suggestion=suggestion)
        return Response(rep.suggestion_json(suggestion))


class DiscussionViewSet(_DocumentScopedViewSet):
    def list(self, request: Request) -> Response:
        document = _document_by_path(request, request.query_params.get("docPath"))
        return self.paginated(request, selectors.discussions_visible_to(request.user, document),
                              rep.discussion_json)

    def create(self, request: Request) -> Response:
        data = _valid(s.DiscussionCreateSerializer, request.data)
        document = _document_by_path(request, data["docPath"])
        _require(can_review(request.user, document))
        discussion = services.discussion_create(author=request.user, document=document, title=data["title"])
        return Response(rep.discussion_json(discussion), status=status.HTTP_201_CREATED)

    def _get(self, request: Request, pk: Any) -> Discussion:
        discussion = selectors.discussion_for(request.user, pk)
        if discussion is None:
            raise Http404
        return discussion

    def retrieve(self, request: Request, pk: Any = None) -> Response:
        return Response(rep.discussion_json(self._get(request, pk)))

    @action(detail=True, methods=["get", "post"])
    def messages(self, request: Request, pk: Any = None) -> Response:
        discussion = self._get(request, pk)
        if request.method == "GET":
            # Those who see hidden messages see which ones are.
            render = rep.moderated_message_json if can_moderate(request.user, discussion.document) \
                else rep.message_json
            return self.paginated(request, selectors.messages_visible_to(request.user, discussion), render)
        _require(can_review(request.user, discussion.document))
        data = _valid(s.MessageCreateSerializer, request.data)
        message = services.discussion_message_create(author=request.user, discussion=discussion, body=data["body"])
        return Response(rep.message_json(message), status=status.HTTP_201_CREATED)
