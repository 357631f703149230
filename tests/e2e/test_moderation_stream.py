"""Moderation end to end: the real admin on a real daphne, and real SSE clients."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from django.contrib.auth.models import Permission, User

from reviews import services
from reviews.models import Comment, Role
from tests.conftest import DOC_CONTENT, token_for
from tests.support.sse import EventStream

pytestmark = [pytest.mark.e2e]

DOC = "guides/setup.md"


@pytest.fixture
def setup(server, maintainer, reviewer, viewer):
    doc = services.document_create(user=maintainer, path=DOC, title="Setup", content=DOC_CONTENT)
    services.member_set(document=doc, user=reviewer, role=Role.REVIEWER)
    services.member_set(document=doc, user=viewer, role=Role.VIEWER)
    moderator = User.objects.create_user(username="mod", password="mod-pass-123", is_staff=True)
    moderator.user_permissions.add(Permission.objects.get(codename="moderate_content"))
    return {"server": server(), "doc": doc, "tokens": {u.username: token_for(u) for u in (maintainer, reviewer,
                                                                                          viewer)}}


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


class AdminSession:
    """A browser-like session in the admin: the login form, then form posts with CSRF."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=15, headers={"Origin": base_url})
        login_page = self.client.get("/accounts/login/")
        response = self.client.post("/accounts/login/", data={
            "username": username, "password": password, "csrfmiddlewaretoken": csrf_token(login_page.text),
        }, headers={"Referer": base_url + "/accounts/login/"})
        assert response.status_code == 302, response.text[:500]

    def run_action(self, changelist: str, action: str, ids: list[int], reason: str) -> httpx.Response:
        """Pick the action in the changelist form, then submit the reason page as rendered."""
        page = self.client.get(changelist)
        assert page.status_code == 200 and f'value="{action}"' in page.text
        referer = {"Referer": self.base_url + changelist}
        intermediate = self.client.post(changelist, headers=referer, data={
            "csrfmiddlewaretoken": csrf_token(page.text), "action": action, "index": "0", "select_across": "0",
            "_selected_action": [str(i) for i in ids],
        })
        assert intermediate.status_code == 200 and 'name="reason"' in intermediate.text, intermediate.text[:500]
        form = intermediate.text[intermediate.text.index('<form method="post">'):]
        data: dict[str, list[str]] = {}
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form):
            data.setdefault(name, []).append(value)
        data["reason"] = [reason]
        return self.client.post(changelist, data=data, headers=referer)

    def close(self) -> None:
        self.client.close()


def test_a_moderator_hides_a_comment_in_the_admin_and_a_readers_open_stream_gets_comment_deleted(setup):
    srv, tokens = setup["server"], setup["tokens"]
    comment = services.comment_create(author=User.objects.get(username="rob"), document=setup["doc"],
                                      body="cheap watches at example.com")
    reader = EventStream(srv.base_url, DOC, token=tokens["vera"]).wait_connected()
    maintainer = EventStream(srv.base_url, DOC, token=tokens["maria"]).wait_connected()
    admin = AdminSession(srv.base_url, "mod", "mod-pass-123")
    try:
        reader.wait_for_id(1)
        maintainer.wait_for_id(1)
        done = admin.run_action("/admin/reviews/comment/", "hide", [comment.pk], reason="spam link")
        assert done.status_code == 302
        deleted = reader.wait_for_event("comment.deleted")
        assert deleted.id == 2 and deleted.json()["data"] == {"id": comment.pk}
        assert "cheap watches" not in deleted.data
        updated = maintainer.wait_for_event("comment.updated")
        assert updated.id == 2 and updated.json()["data"]["hidden"] is True
        assert Comment.objects.get(pk=comment.pk).hidden

        # Unhiding brings it back to the reader's page, live.
        assert admin.run_action("/admin/reviews/comment/", "unhide", [comment.pk], reason="appeal").status_code == 302
        back = reader.wait_for_event("comment.updated")
        assert back.id == 3 and back.json()["data"]["hidden"] is False
        assert back.json()["data"]["body"] == "cheap watches at example.com"
        assert reader.ids() == [1, 2, 3] and maintainer.wait_for_id(3) == [1, 2, 3]
    finally:
        admin.close()
        reader.close()
        maintainer.close()
    # A reader connecting afterwards replays it as it is now: visible again.
    late = EventStream(srv.base_url, DOC, token=tokens["vera"], last_event_id=0).wait_connected()
    try:
        late.wait_for_id(3)
        assert [r.event for r in late.events()] == ["comment.created", "comment.deleted", "comment.updated"]
    finally:
        late.close()


def test_a_hidden_message_reaches_readers_as_message_deleted(setup):
    srv, tokens = setup["server"], setup["tokens"]
    rob = User.objects.get(username="rob")
    discussion = services.discussion_create(author=rob, document=setup["doc"], title="Scope")
    message = services.discussion_message_create(author=rob, discussion=discussion, body="rude words")
    reader = EventStream(srv.base_url, DOC, token=tokens["vera"]).wait_connected()
    admin = AdminSession(srv.base_url, "mod", "mod-pass-123")
    try:
        reader.wait_for_id(2)
        assert admin.run_action("/admin/reviews/discussionmessage/", "hide", [message.pk],
                                reason="abuse").status_code == 302
        gone = reader.wait_for_event("discussion.message.deleted")
        assert gone.id == 3 and gone.json()["data"] == {"id": message.pk, "discussionId": discussion.pk}
        listing = httpx.get(f"{srv.base_url}/api/discussions/{discussion.pk}/messages/",
                            headers={"Authorization": f"Token {tokens['vera']}"})
        assert listing.json()["results"] == []
    finally:
        admin.close()
        reader.close()


def _race(srv, token: str, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    start = threading.Barrier(len(requests))
    answers: list[httpx.Response | None] = [None] * len(requests)

    def send(i: int, url: str, headers: dict) -> None:
        with httpx.Client(timeout=20, headers={"Authorization": f"Token {token}"}) as client:
            start.wait()
            answers[i] = client.post(srv.base_url + url, headers=headers)

    threads = [threading.Thread(target=send, args=(i, url, headers)) for i, (url, headers) in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(answer is not None for answer in answers)
    return answers


def _suggest(srv, token: str, quote: str, replacement: str) -> int:
    start = DOC_CONTENT.index(quote)
    response = httpx.post(srv.base_url + "/api/suggestions/", headers={"Authorization": f"Token {token}"}, json={
        "docPath": DOC, "replacement": replacement, "anchor": {"quote": quote, "start": start,
                                                               "end": start + len(quote)}})
    assert response.status_code == 201
    return response.json()["id"]


def test_two_approvals_racing_on_the_same_version_one_wins_one_gets_409(setup):
    srv, tokens = setup["server"], setup["tokens"]
    first = _suggest(srv, tokens["rob"], "Python", "Python 3.11")
    second = _suggest(srv, tokens["rob"], "Configure", "Set up")
    stream = EventStream(srv.base_url, DOC, token=tokens["vera"]).wait_connected()
    try:
        answers = _race(srv, tokens["maria"], [(f"/api/suggestions/{first}/approve/", {"If-Match": "1"}),
                                               (f"/api/suggestions/{second}/approve/", {"If-Match": "1"})])
        assert sorted(a.status_code for a in answers) == [200, 409]
        assert [a.json() for a in answers if a.status_code == 409] == [{"detail": "outdated"}]
        document = httpx.get(f"{srv.base_url}/api/documents/{setup['doc'].pk}/",
                             headers={"Authorization": f"Token {tokens['maria']}"}).json()
        assert document["version"] == 2
        assert ("Python 3.11" in document["content"]) != ("Set up" in document["content"])
        stream.wait_for_event("document.updated")
        assert len(stream.of_type("suggestion.approved")) == 1 and len(stream.of_type("document.updated")) == 1
    finally:
        stream.close()


def test_the_same_suggestion_approved_twice_at_once_is_applied_once(setup):
    srv, tokens = setup["server"], setup["tokens"]
    suggestion = _suggest(srv, tokens["rob"], "Configure", "Set up")
    answers = _race(srv, tokens["maria"], [(f"/api/suggestions/{suggestion}/approve/", {"If-Match": "1"})] * 2)
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert [a.json() for a in answers if a.status_code == 409] == [{"detail": "already_applied"}]
    content = httpx.get(f"{srv.base_url}/api/documents/{setup['doc'].pk}/",
                        headers={"Authorization": f"Token {tokens['maria']}"}).json()["content"]
    assert content.count("Set up") == 1
