"""The REST API of spec §1-3, in process."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from realtime.models import Event
from reviews import services
from reviews.models import Comment, Document, Suggestion, Visibility
from tests.conftest import DOC_CONTENT

pytestmark = pytest.mark.django_db


def test_token_endpoint_returns_a_token_that_works(reviewer, client):
    response = client.post("/api/auth/token/", {"username": "rob", "password": "rob-pass-123"},
                           content_type="application/json")
    assert response.status_code == 200
    token = response.json()["token"]
    listing = client.get("/api/documents/", HTTP_AUTHORIZATION=f"Token {token}")
    assert listing.status_code == 200
    bad = client.post("/api/auth/token/", {"username": "rob", "password": "wrong"}, content_type="application/json")
    assert bad.status_code == 400


def test_anonymous_gets_401(client, document):
    assert client.get("/api/documents/").status_code == 401
    assert client.get("/api/comments/", {"docPath": document.path}).status_code == 401


def test_document_list_detail_and_roles(api, document, reviewer, outsider):
    rows = api(reviewer).get("/api/documents/").json()
    assert rows == [{"id": document.pk, "path": "guides/setup.md", "title": "Setup", "version": 1,
                     "visibility": "private", "role": "reviewer", "lastEventId": 0}]
    assert api(outsider).get("/api/documents/").json() == []
    assert api(reviewer).get("/api/documents/", {"path": "guides/setup.md"}).json()[0]["id"] == document.pk
    assert api(reviewer).get("/api/documents/", {"path": "other.md"}).json() == []
    detail = api(reviewer).get(f"/api/documents/{document.pk}/").json()
    assert detail["content"] == DOC_CONTENT and detail["role"] == "reviewer"


def test_create_document_makes_the_creator_maintainer_and_409_on_taken_path(api, outsider, document):
    response = api(outsider).post("/api/documents/", {"path": "notes/a.md", "title": "A", "content": "x"},
                                  format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "maintainer" and response.json()["lastEventId"] == 0
    taken = api(outsider).post("/api/documents/", {"path": "guides/setup.md", "title": "B", "content": ""},
                               format="json")
    assert taken.status_code == 409
    assert Document.objects.filter(path="guides/setup.md").count() == 1


@pytest.mark.parametrize("path", ["", "/abs.md", "a//b.md", "a/../b.md", "./a.md", "a b.md", "a/" + "x" * 300,
                                  "ünï.md", "a/"])
def test_invalid_document_paths_are_400_and_write_nothing(api, outsider, path):
    response = api(outsider).post("/api/documents/", {"path": path, "title": "T"}, format="json")
    assert response.status_code == 400 and "path" in response.json()
    assert not Document.objects.exists()


def test_private_document_of_others_answers_like_a_missing_one(api, document, outsider):
    client = api(outsider)
    hidden = client.get(f"/api/documents/{document.pk}/")
    missing = client.get("/api/documents/999999/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content
    for endpoint in ("/api/comments/", "/api/suggestions/", "/api/discussions/"):
        a = client.get(endpoint, {"docPath": document.path})
        b = client.get(endpoint, {"docPath": "nowhere/x.md"})
        assert a.status_code == b.status_code == 404 and a.content == b.content
    write = client.post("/api/comments/", {"docPath": document.path, "body": "x"}, format="json")
    assert write.status_code == 404
    assert not Comment.objects.exists()


def test_internal_documents_let_every_user_review(api, maintainer, outsider):
    doc = services.document_create(user=maintainer, path="handbook/style.md", title="Style", content="Short.",
                                   visibility=Visibility.INTERNAL)
    rows = api(outsider).get("/api/documents/").json()
    assert [(r["path"], r["role"]) for r in rows] == [("handbook/style.md", "reviewer")]
    response = api(outsider).post("/api/comments/", {"docPath": doc.path, "body": "Nice"}, format="json")
    assert response.status_code == 201


def test_viewer_may_read_but_not_write(api, document, viewer):
    client = api(viewer)
    assert client.get("/api/comments/", {"docPath": document.path}).status_code == 200
    assert client.post("/api/comments/", {"docPath": document.path, "body": "x"}, format="json").status_code == 403
    assert client.post("/api/discussions/", {"docPath": document.path, "title": "x"}, format="json"
                       ).status_code == 403
    assert not Event.objects.exists()


def test_comment_lifecycle_and_permissions(api, document, reviewer, viewer, maintainer):
    client = api(reviewer)
    start = DOC_CONTENT.index("Python")
    created = client.post("/api/comments/", {
        "docPath": document.path, "body": "Which version?",
        "anchor": {"quote": "Python", "start": start, "end": start + 6},
    }, format="json")
    assert created.status_code == 201
    comment = created.json()
    assert set(comment) == {"id", "docPath", "author", "body", "anchor", "parent", "resolved", "hidden",
                            "createdAt", "updatedAt"}
    assert comment["author"] == {"id": reviewer.pk, "username": "rob"}
    assert comment["anchor"]["quote"] == "Python"
    reply = api(maintainer).post("/api/comments/", {"docPath": document.path, "body": "3.11",
                                                    "parent": comment["id"]}, format="json")
    assert reply.status_code == 201 and reply.json()["parent"] == comment["id"]
    nested = client.post("/api/comments/", {"docPath": document.path, "body": "deeper",
                                            "parent": reply.json()["id"]}, format="json")
    assert nested.status_code == 400 and "parent" in nested.json()

    # Body: author only.  Resolved: author or maintainer.  Hidden: maintainers/moderators.
    assert api(maintainer).patch(f"/api/comments/{comment['id']}/", {"body": "edited"}, format="json"
                                 ).status_code == 403
    assert client.patch(f"/api/comments/{comment['id']}/", {"body": "edited"}, format="json").json()["body"] == "edited"
    assert api(maintainer).patch(f"/api/comments/{comment['id']}/", {"resolved": True}, format="json"
                                 ).json()["resolved"] is True
    assert client.patch(f"/api/comments/{comment['id']}/", {"hidden": True}, format="json").status_code == 403
    assert api(viewer).delete(f"/api/comments/{comment['id']}/").status_code == 403

    listing = api(viewer).get("/api/comments/", {"docPath": document.path}).json()
    assert [c["id"] for c in listing["results"]] == [comment["id"], reply.json()["id"]]

    assert client.delete(f"/api/comments/{comment['id']}/").status_code == 204
    assert not Comment.objects.exists()  # the reply went with it
    types = list(Event.objects.order_by("seq").values_list("type", flat=True))
    assert types[-2:] == ["comment.deleted", "comment.deleted"]


def test_hidden_comments_vanish_for_readers_but_not_maintainers(api, document, reviewer, maintainer, viewer):
    comment = services.comment_create(author=reviewer, document=document, body="spam")
    assert api(maintainer).patch(f"/api/comments/{comment.pk}/", {"hidden": True}, format="json").status_code == 200
    assert api(viewer).get("/api/comments/", {"docPath": document.path}).json()["results"] == []
    assert api(viewer).get(f"/api/comments/{comment.pk}/").status_code == 404
    assert api(maintainer).get("/api/comments/", {"docPath": document.path}).json()["results"][0]["hidden"] is True


def test_lists_require_a_valid_doc_path(api, reviewer):
    assert api(reviewer).get("/api/comments/").json() == {"docPath": ["This field is required."]}
    assert api(reviewer).get("/api/comments/", {"docPath": "../x"}).status_code == 400


def test_cursor_pagination_oldest_first_at_most_200(api, document, reviewer):
    for i in range(205):
        Comment.objects.bulk_create([Comment(document=document, author=reviewer, body=f"c{i}")])
    client = api(reviewer)
    first = client.get("/api/comments/", {"docPath": document.path, "pageSize": 500}).json()
    assert len(first["results"]) == 200
    assert first["results"][0]["body"] == "c0"
    second = client.get(first["next"]).json()
    assert [c["body"] for c in second["results"]] == ["c200", "c201", "c202", "c203", "c204"]
    assert second["next"] is None


def test_input_limits_are_400_with_field_errors_and_write_nothing(api, document, reviewer):
    client = api(reviewer)
    too_long = client.post("/api/comments/", {"docPath": document.path, "body": "x" * 10_001}, format="json")
    assert too_long.status_code == 400 and "body" in too_long.json()
    out_of_range = client.post("/api/comments/", {"docPath": document.path, "body": "x",
                                                  "anchor": {"quote": "x", "start": 5, "end": 10_000}}, format="json")
    assert out_of_range.status_code == 400 and "anchor" in out_of_range.json()
    reversed_range = client.post("/api/comments/", {"docPath": document.path, "body": "x",
                                                    "anchor": {"quote": "x", "start": 5, "end": 2}}, format="json")
    assert reversed_range.status_code == 400
    blank = client.post("/api/comments/", {"docPath": document.path, "body": "   "}, format="json")
    assert blank.status_code == 400
    not_json = client.post("/api/comments/", "{nope", content_type="application/json")
    assert not_json.status_code == 400
    long_title = client.post("/api/discussions/", {"docPath": document.path, "title": "t" * 201}, format="json")
    assert long_title.status_code == 400 and "title" in long_title.json()
    assert not Comment.objects.exists() and not Event.objects.exists()


def test_request_body_over_2_mb_is_413(api, document, reviewer):
    body = '{"docPath": "guides/setup.md", "body": "' + "x" * (2 * 1024 * 1024) + '"}'
    response = api(reviewer).post("/api/comments/", body, content_type="application/json")
    assert response.status_code == 413
    assert not Comment.objects.exists()


def test_suggestion_quote_must_match_the_current_version(api, document, reviewer):
    client = api(reviewer)
    start = DOC_CONTENT.index("Python")
    mismatch = client.post("/api/suggestions/", {"docPath": document.path, "replacement": "Py",
                                                 "anchor": {"quote": "Ruby", "start": start, "end": start + 4}},
                           format="json")
    assert mismatch.status_code == 409
    missing_position = client.post("/api/suggestions/", {"docPath": document.path, "replacement": "Py",
                                                         "anchor": {"quote": "Python"}}, format="json")
    assert missing_position.status_code == 400
    ok = client.post("/api/suggestions/", {"docPath": document.path, "replacement": "Python 3",
                                           "anchor": {"quote": "Python", "start": start, "end": start + 6},
                                           "note": "be precise"}, format="json")
    assert ok.status_code == 201
    body = ok.json()
    assert body["status"] == "open" and body["baseVersion"] == 1 and body["note"] == "be precise"
    assert set(body) == {"id", "docPath", "author", "anchor", "replacement", "note", "status", "baseVersion",
                         "createdAt", "updatedAt"}


def test_only_maintainers_approve_and_outdated_is_409(api, document, reviewer, maintainer):
    start = DOC_CONTENT.index("Python")
    suggestion = api(reviewer).post("/api/suggestions/", {
        "docPath": document.path, "replacement": "Python 3",
        "anchor": {"quote": "Python", "start": start, "end": start + 6}}, format="json").json()
    assert api(reviewer).post(f"/api/suggestions/{suggestion['id']}/approve/").status_code == 403
    other = api(reviewer).post("/api/suggestions/", {
        "docPath": document.path, "replacement": "Go",
        "anchor": {"quote": "Python", "start": start, "end": start + 6}}, format="json").json()
    approved = api(maintainer).post(f"/api/suggestions/{suggestion['id']}/approve/")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    doc = api(maintainer).get(f"/api/documents/{document.pk}/").json()
    assert "Install Python 3, then" in doc["content"] and doc["version"] == 2
    # The other suggestion's quote still exists ("Python" inside "Python 3"),
    # but re-anchoring saw its passage change and marked it outdated.
    again = api(maintainer).post(f"/api/suggestions/{other['id']}/approve/")
    assert again.status_code == 409 and again.json() == {"detail": "outdated"}
    assert Suggestion.objects.get(pk=other["id"]).status == "outdated"
    twice = api(maintainer).post(f"/api/suggestions/{suggestion['id']}/approve/")
    assert twice.status_code == 409


def test_approve_with_a_stale_if_match_is_409(api, document, reviewer, maintainer):
    start = DOC_CONTENT.index("Configure")
    suggestion = api(reviewer).post("/api/suggestions/", {
        "docPath": document.path, "replacement": "Set up",
        "anchor": {"quote": "Configure", "start": start, "end": start + 9}}, format="json").json()
    services.document_update(document=document, title="Renamed", content=DOC_CONTENT + "\nMore.\n")
    stale = api(maintainer).post(f"/api/suggestions/{suggestion['id']}/approve/", HTTP_IF_MATCH="1")
    assert stale.status_code == 409
    fresh = api(maintainer).post(f"/api/suggestions/{suggestion['id']}/approve/", HTTP_IF_MATCH="2")
    assert fresh.status_code == 200


def test_reject_and_discussions(api, document, reviewer, maintainer, viewer):
    start = DOC_CONTENT.index("Python")
    suggestion = api(reviewer).post("/api/suggestions/", {
        "docPath": document.path, "replacement": "P",
        "anchor": {"quote": "Python", "start": start, "end": start + 6}}, format="json").json()
    rejected = api(maintainer).post(f"/api/suggestions/{suggestion['id']}/reject/")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    discussion = api(reviewer).post("/api/discussions/", {"docPath": document.path, "title": "Plan"}, format="json")
    assert discussion.status_code == 201
    did = discussion.json()["id"]
    message = api(maintainer).post(f"/api/discussions/{did}/messages/", {"body": "Go"}, format="json")
    assert message.status_code == 201
    assert message.json()["discussionId"] == did
    assert api(viewer).post(f"/api/discussions/{did}/messages/", {"body": "x"}, format="json").status_code == 403
    listing = api(viewer).get(f"/api/discussions/{did}/messages/").json()
    assert [m["body"] for m in listing["results"]] == ["Go"]


def test_members_management(api, document, maintainer, reviewer, outsider):
    client = api(maintainer)
    members = client.get(f"/api/documents/{document.pk}/members/").json()
    assert {m["username"]: m["role"] for m in members} == {"maria": "maintainer", "rob": "reviewer",
                                                            "vera": "viewer"}
    added = client.post(f"/api/documents/{document.pk}/members/", {"username": "otto", "role": "viewer"},
                        format="json")
    assert added.status_code == 201 and added.json() == {"userId": outsider.pk, "username": "otto",
                                                         "role": "viewer"}
    assert api(outsider).get(f"/api/documents/{document.pk}/").status_code == 200
    changed = client.post(f"/api/documents/{document.pk}/members/", {"username": "otto", "role": "reviewer"},
                          format="json")
    assert changed.status_code == 200 and changed.json()["role"] == "reviewer"
    assert api(reviewer).post(f"/api/documents/{document.pk}/members/", {"username": "otto", "role": "viewer"},
                              format="json").status_code == 403
    unknown = client.post(f"/api/documents/{document.pk}/members/", {"username": "ghost", "role": "viewer"},
                          format="json")
    assert unknown.status_code == 400 and "username" in unknown.json()
    assert client.delete(f"/api/documents/{document.pk}/members/{outsider.pk}/").status_code == 204
    assert api(outsider).get(f"/api/documents/{document.pk}/").status_code == 404
    last = client.delete(f"/api/documents/{document.pk}/members/{maintainer.pk}/")
    assert last.status_code == 409


def test_patch_document_increments_version_on_content_change(api, document, maintainer, reviewer):
    assert api(reviewer).patch(f"/api/documents/{document.pk}/", {"title": "X"}, format="json").status_code == 403
    titled = api(maintainer).patch(f"/api/documents/{document.pk}/", {"title": "New"}, format="json").json()
    assert titled["title"] == "New" and titled["version"] == 1
    edited = api(maintainer).patch(f"/api/documents/{document.pk}/", {"content": "Hello"}, format="json").json()
    assert edited["version"] == 2 and edited["lastEventId"] == 2
    assert list(Event.objects.values_list("type", flat=True)) == ["document.updated", "document.updated"]


def test_session_writes_need_csrf(document, reviewer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.get(username="rob"))
    response = client.post("/api/comments/", {"docPath": document.path, "body": "x"}, content_type="application/json")
    assert response.status_code == 403
    page = client.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    ok = client.post("/api/comments/", {"docPath": document.path, "body": "x"}, content_type="application/json",
                     HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 201


@pytest.mark.parametrize("method, url", [("get", "/api/nonexistent/"), ("delete", "/api/documents/1/members/abc/"),
                                         ("post", "/api/comments/1/nonexistent/")])
def test_an_api_url_that_matches_nothing_is_a_json_404(api, document, maintainer, method, url):
    response = getattr(api(maintainer), method)(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_page_that_does_not_exist_is_still_an_html_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_put_is_not_a_way_to_update(api, document, reviewer, maintainer):
    comment = api(reviewer).post("/api/comments/", {"docPath": document.path, "body": "mine"}, format="json").json()
    for user, url, body in ((reviewer, f"/api/comments/{comment['id']}/", {"body": "put"}),
                            (maintainer, f"/api/documents/{document.pk}/", {"title": "P", "content": "put"})):
        response = api(user).put(url, body, format="json")
        assert response.status_code == 405 and "PATCH" in response["Allow"] and "PUT" not in response["Allow"]
    document.refresh_from_db()
    assert document.version == 1 and Comment.objects.get(pk=comment["id"]).body == "mine"


def test_password_guessing_for_a_token_is_slowed_and_bad_bodies_are_400(reviewer, client, settings):
    from realtime import ratelimit

    ratelimit.bucket.cache_clear()
    settings.SIGN_IN_RATE_BURST, settings.SIGN_IN_RATE_PER_SECOND = 3, 0.01
    try:
        post = lambda body: client.post("/api/auth/token/", body, content_type="application/json")  # noqa: E731
        assert [post({"username": "rob", "password": "guess"}).status_code for _ in range(3)] == [400] * 3
        limited = post({"username": "ROB", "password": "rob-pass-123"})
        assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
        # Another account is not held back by rob's.
        assert post({"username": "someone-else", "password": "x"}).status_code == 400
        assert client.post("/api/auth/token/", "[" * 50_000, content_type="application/json").status_code == 400
    finally:
        ratelimit.bucket.cache_clear()
