"""Queries compiled once (``docreview.prepared``) answer exactly as the ORM does."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from rest_framework.authtoken.models import Token

from docreview.prepared import PreparedInsert, PreparedQuery
from realtime.models import Event, Stream
from reviews import selectors
from reviews.models import Document, Membership, Role, Visibility
from tests.conftest import token_for

pytestmark = pytest.mark.django_db

FIELDS = [f.attname for f in Document._meta.concrete_fields]


def with_role(path, user_id):
    role = Membership.objects.filter(document=OuterRef("pk"), user_id=user_id).values("role")[:1]
    return Document.objects.select_related("stream").filter(path=path).annotate(member_role=Subquery(role))


def test_a_prepared_lookup_returns_what_the_queryset_returns(document, reviewer, outsider):
    prepared = PreparedQuery(with_role, "\0path\0", -424242)
    for user in (reviewer, outsider):
        got = prepared.first(document.path, user.pk)
        want = with_role(document.path, user.pk).get()
        assert [getattr(got, f) for f in FIELDS] == [getattr(want, f) for f in FIELDS]
        assert got.member_role == want.member_role == (Role.REVIEWER if user == reviewer else None)
        # select_related: the stream is already there, converted as the ORM converts it.
        assert got.stream.last_id == want.stream.last_id and got.stream.key == document.path
        assert got.created_at == want.created_at and got.created_at.tzinfo is not None
        assert not got._state.adding and got._state.db == "default"
    assert prepared.first("no/such.md", reviewer.pk) is None
    # The SQL was compiled once and is reused with new values.
    assert prepared._compiled is not None and "%s" in prepared._compiled.sql


def test_a_marker_that_does_not_reach_the_sql_as_one_parameter_is_refused():
    with pytest.raises(ValueError):
        PreparedQuery(lambda path: Document.objects.filter(path="fixed"), "\0path\0").first("x")
    with pytest.raises(ValueError):
        PreparedQuery(lambda path: Document.objects.filter(path=path, title=path), "\0path\0").first("x")


def test_token_authentication_answers_as_drf_does(api, reviewer, document):
    key = token_for(reviewer)
    assert api(reviewer).get("/api/documents/").status_code == 200
    bad = api(None)
    bad.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = bad.get("/api/documents/")
    assert response.status_code == 401 and response.json() == {"detail": "Invalid token."}
    reviewer.is_active = False
    reviewer.save()
    inactive = api(None)
    inactive.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = inactive.get("/api/documents/")
    assert response.status_code == 401 and response.json() == {"detail": "User inactive or deleted."}
    assert Token.objects.filter(key=key).exists()


def test_document_for_gives_the_same_roles_as_role_of(document, maintainer, reviewer, viewer, outsider, moderator):
    from reviews.permissions import role_of

    expected = {maintainer: Role.MAINTAINER, reviewer: Role.REVIEWER, viewer: Role.VIEWER, outsider: None,
                moderator: Role.VIEWER}
    for user, role in expected.items():
        found = selectors.document_for(user, path=document.path)
        assert (found is None) == (role is None)
        assert role_of(user, Document.objects.get(pk=document.pk)) == role
        if found is not None:
            assert role_of(user, found) == role
            assert selectors.document_for(user, pk=str(document.pk)).pk == document.pk
    document.visibility = Visibility.INTERNAL
    document.save()
    assert role_of(outsider, selectors.document_for(outsider, path=document.path)) == Role.REVIEWER
    assert selectors.document_for(outsider, pk="9" * 30) is None
    assert selectors.document_for(outsider, pk="1; DROP") is None
    assert selectors.document_for(outsider, pk="²") is None  # "²".isdigit() is true


def test_ids_that_are_not_plain_digits_are_404_not_500(api, maintainer, document):
    client = api(maintainer)
    for pk in ("²", "9" * 30, "١٢"):
        for url in (f"/api/comments/{pk}/", f"/api/suggestions/{pk}/", f"/api/discussions/{pk}/",
                    f"/api/documents/{pk}/"):
            assert client.get(url).status_code == 404, url


def test_a_prepared_insert_stores_what_create_stores(document):
    stream = Stream.objects.get(key=document.path)
    prepared = PreparedInsert(Event, ["stream", "seq", "type", "data", "created_at"])
    now = timezone.now()
    data = {"id": 1, "body": "héllo \"quoted\"\n", "anchor": None, "tags": [1, 2.5, True]}
    with transaction.atomic():
        event = prepared.insert(stream_id=stream.pk, seq=10_001, type="comment.created", data=data, created_at=now)
        reference = Event.objects.create(stream_id=stream.pk, seq=10_002, type="comment.created", data=data)
    stored = Event.objects.get(pk=event.pk)
    assert event.pk and not event._state.adding
    assert (stored.stream_id, stored.seq, stored.type, stored.data, stored.created_at) == (
        stream.pk, 10_001, "comment.created", data, now)
    assert Event.objects.get(pk=reference.pk).data == stored.data
