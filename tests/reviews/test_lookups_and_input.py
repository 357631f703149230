"""Object lookups cost the same for a missing id and one the user may not
read, and odd input is a 4xx that changes nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from reviews import services
from reviews.models import Comment, Membership
from reviews.stream_access import is_valid_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_objects(maintainer, document):
    comment = services.comment_create(author=maintainer, document=document, body="private words")
    suggestion = services.suggestion_create(author=maintainer, document=document, anchor={"quote": "Install Python", "start": 9, "end": 23},
                                            replacement="Install Python 3.11")
    discussion = services.discussion_create(author=maintainer, document=document, title="Private talk")
    message = services.discussion_message_create(author=maintainer, discussion=discussion, body="private message")
    return {"comments": comment.pk, "suggestions": suggestion.pk, "discussions": discussion.pk,
            "messages": message.pk}


@pytest.mark.parametrize("kind", ["comments", "suggestions", "discussions", "messages"])
def test_an_unreadable_object_answers_like_a_missing_one_with_the_same_queries(kind, private_objects, api, outsider):
    client = api(outsider)
    # Messages have no GET of their own: DELETE is their lookup (refused alike).
    call = client.delete if kind == "messages" else client.get
    call(f"/api/{kind}/{private_objects[kind]}/")  # warm: token and the like
    answers = []
    for pk in (private_objects[kind], 10**9):
        with CaptureQueriesContext(connection) as queries:
            response = call(f"/api/{kind}/{pk}/")
        answers.append((response.status_code, response.json(), len(queries)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 404
    assert api(outsider).get(f"/api/discussions/{private_objects['discussions']}/").status_code == 404


def test_readers_still_get_what_they_may_see(private_objects, api, viewer, maintainer):
    for kind in ("comments", "suggestions", "discussions"):
        assert api(viewer).get(f"/api/{kind}/{private_objects[kind]}/").status_code == 200, kind
    message = private_objects["messages"]
    assert api(viewer).delete(f"/api/messages/{message}/").status_code == 403  # seen, not theirs to delete
    assert api(maintainer).delete(f"/api/messages/{message}/").status_code == 204
    comment = Comment.objects.get(pk=private_objects["comments"])
    services.comment_hide(comment=comment, by=maintainer, reason="off topic")
    assert api(viewer).get(f"/api/comments/{comment.pk}/").status_code == 404
    assert api(maintainer).get(f"/api/comments/{comment.pk}/").json()["id"] == comment.pk


def test_a_member_id_in_other_digits_is_404_and_removes_nobody(document, api, maintainer, viewer):
    odd = "".join(chr(0x660 + int(d)) for d in str(viewer.pk))  # Arabic-Indic digits
    response = api(maintainer).delete(f"/api/documents/{document.pk}/members/{odd}/")
    assert response.status_code == 404
    assert Membership.objects.filter(document=document, user=viewer).exists()


def test_deeply_nested_json_is_a_400_and_writes_nothing(document, api, reviewer):
    body = '{"docPath": "guides/setup.md", "body": "deep", "anchor": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = api(reviewer).post("/api/comments/", body, content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not Comment.objects.filter(body="deep").exists()


def test_a_csrf_failure_is_403_with_or_without_an_idempotency_key(document, reviewer):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(reviewer)
    data = {"docPath": document.path, "body": "no csrf token"}
    plain = client.post("/api/comments/", data, format="json")
    keyed = client.post("/api/comments/", data, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert plain.status_code == keyed.status_code == 403
    assert plain.json() == keyed.json()
    assert not Comment.objects.filter(body="no csrf token").exists()


def test_a_doc_path_with_a_trailing_newline_is_invalid(document, api, reviewer):
    assert not is_valid_path("guides/setup.md\n")
    response = api(reviewer).get("/api/comments/", {"docPath": document.path + "\n"})
    assert response.status_code == 400


def test_typing_and_cursor_take_an_idempotency_key_and_a_repeat_emits_nothing(document, api, reviewer, monkeypatch):
    from reviews.api import live

    sent = []
    monkeypatch.setattr(live, "send_ephemeral", lambda **kwargs: sent.append(kwargs["type"]) or True)
    client = api(reviewer)
    for path, body in (("/api/typing/", {"docPath": document.path}),
                       ("/api/cursor/", {"docPath": document.path, "position": 3})):
        first = client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=f"key {path}")
        again = client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=f"key {path}")
        assert first.status_code == again.status_code == 202
        assert again["Idempotent-Replayed"] == "true"
    assert sent == ["user.typing", "user.cursor"]


def test_the_same_json_in_another_key_order_is_the_same_request(document, api, reviewer):
    client = api(reviewer)
    first = client.post("/api/comments/", '{"docPath": "guides/setup.md", "body": "once"}',
                        content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    again = client.post("/api/comments/", '{"body":"once","docPath":"guides/setup.md"}',
                        content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    other = client.post("/api/comments/", {"docPath": document.path, "body": "twice"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="k")
    assert other.status_code == 422
    assert Comment.objects.filter(body="once").count() == 1 and not Comment.objects.filter(body="twice").exists()


def test_document_content_is_required_and_paths_are_not_trimmed(api, outsider, document, reviewer):
    from reviews.models import Document

    response = api(outsider).post("/api/documents/", {"path": "notes/a.md", "title": "A"}, format="json")
    assert response.status_code == 400 and "content" in response.json()
    response = api(outsider).post("/api/documents/", {"path": " notes/a.md ", "title": "A", "content": ""},
                                  format="json")
    assert response.status_code == 400 and "path" in response.json()
    assert not Document.objects.filter(path="notes/a.md").exists()
    response = api(reviewer).post("/api/comments/", {"docPath": document.path + "\n", "body": "x"}, format="json")
    assert response.status_code == 400 and "docPath" in response.json()
    assert not Comment.objects.filter(body="x").exists()


def test_an_unreadable_cursor_is_a_400_not_a_404(document, api, reviewer):
    response = api(reviewer).get("/api/comments/", {"docPath": document.path, "cursor": "garbage"})
    assert response.status_code == 400 and response.json() == {"cursor": ["Invalid cursor."]}


def test_a_long_passage_can_be_quoted(api, maintainer, reviewer):
    content = "# Long\n\n" + "word " * 4000
    document = services.document_create(user=maintainer, path="long.md", title="Long", content=content)
    services.member_set(document=document, user=reviewer, role="reviewer")
    start, end = 8, 8 + 12_000
    response = api(reviewer).post("/api/suggestions/", {
        "docPath": "long.md", "anchor": {"start": start, "end": end, "quote": content[start:end]},
        "replacement": "shorter"}, format="json")
    assert response.status_code == 201, response.json()


def test_the_stream_access_check_makes_the_same_queries_for_a_private_document_as_for_a_missing_one(
        document, outsider, viewer):
    from reviews.stream_access import DocumentStreamPolicy

    policy = DocumentStreamPolicy()

    def queries(key):
        with CaptureQueriesContext(connection) as captured:
            answers = policy.audiences_for([outsider, viewer], key)
        return [q["sql"].split(" WHERE ")[0] for q in captured], answers

    private, private_answers = queries(document.path)
    missing, missing_answers = queries("no/such/document.md")
    assert private == missing
    assert private_answers[outsider.pk] is None and missing_answers == {outsider.pk: None, viewer.pk: None}
    assert private_answers[viewer.pk] == "reader"
