"""The event stream end to end: a real daphne process, a real SSE client."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from django.contrib.auth.models import User

from realtime.models import Event
from reviews import services
from reviews.models import Role
from tests.conftest import DOC_CONTENT, token_for
from tests.support.sse import EventStream
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def setup(server, maintainer, reviewer, viewer, outsider):
    doc = services.document_create(user=maintainer, path="guides/setup.md", title="Setup", content=DOC_CONTENT)
    services.member_set(document=doc, user=reviewer, role=Role.REVIEWER)
    services.member_set(document=doc, user=viewer, role=Role.VIEWER)
    srv = server()
    return {
        "server": srv,
        "doc": doc,
        "tokens": {u.username: token_for(u) for u in (maintainer, reviewer, viewer, outsider)},
    }


def post(srv, token, path, body, headers=None):
    return httpx.post(srv.base_url + path, json=body, timeout=10,
                      headers={"Authorization": f"Token {token}", **(headers or {})})


def test_subscriber_receives_comment_created_equal_to_the_rest_response(setup):
    srv, tokens = setup["server"], setup["tokens"]
    stream = EventStream(srv.base_url, "guides/setup.md", token=tokens["vera"]).wait_connected()
    try:
        assert stream.status == 200
        assert stream.response_headers["content-type"] == "text/event-stream"
        assert stream.response_headers["cache-control"] == "no-cache"
        assert stream.response_headers["x-accel-buffering"] == "no"
        response = post(srv, tokens["rob"], "/api/comments/", {"docPath": "guides/setup.md", "body": "Live!"})
        assert response.status_code == 201
        received = stream.wait_for_event("comment.created")
        envelope = received.json()
        assert received.id == 1 == envelope["id"]
        assert envelope["type"] == "comment.created" and envelope["docPath"] == "guides/setup.md"
        assert envelope["data"] == response.json()
        assert envelope["at"].endswith("Z")
    finally:
        stream.close()


def test_every_event_type_reaches_the_stream(setup):
    srv, tokens = setup["server"], setup["tokens"]
    stream = EventStream(srv.base_url, "guides/setup.md", token=tokens["maria"]).wait_connected()
    try:
        comment = post(srv, tokens["rob"], "/api/comments/", {"docPath": "guides/setup.md", "body": "c"}).json()
        assert httpx.patch(f"{srv.base_url}/api/comments/{comment['id']}/", json={"resolved": True},
                           headers={"Authorization": f"Token {tokens['rob']}"}).status_code == 200
        start = DOC_CONTENT.index("Python")
        s1 = post(srv, tokens["rob"], "/api/suggestions/", {
            "docPath": "guides/setup.md", "replacement": "Python 3", "anchor": {"quote": "Python", "start": start,
                                                                                "end": start + 6}}).json()
        s2 = post(srv, tokens["rob"], "/api/suggestions/", {
            "docPath": "guides/setup.md", "replacement": "x", "anchor": {"quote": "Setup", "start": 2, "end": 7}}).json()
        assert post(srv, tokens["maria"], f"/api/suggestions/{s1['id']}/approve/", {}).status_code == 200
        assert post(srv, tokens["maria"], f"/api/suggestions/{s2['id']}/reject/", {}).status_code == 200
        discussion = post(srv, tokens["rob"], "/api/discussions/", {"docPath": "guides/setup.md", "title": "T"}).json()
        assert post(srv, tokens["rob"], f"/api/discussions/{discussion['id']}/messages/",
                    {"body": "hello"}).status_code == 201
        assert httpx.delete(f"{srv.base_url}/api/comments/{comment['id']}/",
                            headers={"Authorization": f"Token {tokens['rob']}"}).status_code == 204
        last = Event.objects.filter(stream__key="guides/setup.md").order_by("-seq").first().seq
        stream.wait_for_id(last)
        seen = {r.event for r in stream.events()}
        assert seen >= {"comment.created", "comment.updated", "comment.deleted", "suggestion.created",
                        "suggestion.updated", "suggestion.approved", "discussion.created", "discussion.message",
                        "document.updated"}
        assert stream.ids() == list(range(1, last + 1))
        message = stream.of_type("discussion.message")[0].json()["data"]
        assert set(message) == {"id", "discussionId", "author", "body", "createdAt"}
    finally:
        stream.close()


def test_reconnect_with_last_event_id_gets_exactly_the_missed_events_then_live(setup):
    srv, tokens = setup["server"], setup["tokens"]
    write = lambda body: post(srv, tokens["rob"], "/api/comments/", {"docPath": "guides/setup.md", "body": body})
    first = EventStream(srv.base_url, "guides/setup.md", token=tokens["vera"]).wait_connected()
    for i in range(3):
        assert write(f"before {i}").status_code == 201
    first.wait_for_id(3)
    first.close()
    assert first.ids() == [1, 2, 3]
    for i in range(5):
        assert write(f"while away {i}").status_code == 201
    second = EventStream(srv.base_url, "guides/setup.md", token=tokens["vera"], last_event_id=3).wait_connected()
    try:
        second.wait_for_id(8)
        assert second.ids() == [4, 5, 6, 7, 8]
        assert write("live").status_code == 201
        second.wait_for_id(9)
        assert second.ids() == [4, 5, 6, 7, 8, 9]
        assert second.events()[-1].json()["data"]["body"] == "live"
    finally:
        second.close()
    # The query parameter works the same for clients that cannot set headers.
    third = EventStream(srv.base_url, "guides/setup.md", token=tokens["vera"], params={"lastEventId": "7"})
    try:
        third.wait_connected().wait_for_id(9)
        assert third.ids() == [8, 9]
    finally:
        third.close()


def test_without_last_event_id_the_last_events_are_replayed(setup, settings):
    srv, tokens = setup["server"], setup["tokens"]
    for i in range(105):
        services.comment_create(author=User.objects.get(username="rob"), document=setup["doc"], body=f"c{i}")
    stream = EventStream(srv.base_url, "guides/setup.md", token=tokens["vera"]).wait_connected()
    try:
        stream.wait_for_id(105)
        assert stream.ids() == list(range(6, 106))  # SSE_REPLAY_LIMIT = 100
    finally:
        stream.close()


def test_concurrent_writers_and_staggered_subscribers_see_one_gap_free_sequence(setup):
    srv, tokens = setup["server"], setup["tokens"]
    writers = [User.objects.create_user(username=f"writer{i}", password="pw-123456") for i in range(20)]
    for user in writers:
        services.member_set(document=setup["doc"], user=user, role=Role.REVIEWER)
    writer_tokens = [token_for(user) for user in writers]
    failures: list[str] = []
    started = threading.Barrier(21)

    def write_ten(token: str) -> None:
        started.wait()
        with httpx.Client(timeout=30, headers={"Authorization": f"Token {token}"}) as client:
            for i in range(10):
                response = client.post(srv.base_url + "/api/comments/", json={"docPath": "guides/setup.md",
                                                                              "body": f"race {i}"})
                if response.status_code != 201:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=write_ten, args=(t,)) for t in writer_tokens]
    for thread in threads:
        thread.start()
    streams = [EventStream(srv.base_url, "guides/setup.md", token=tokens["vera"], last_event_id=0)]
    started.wait()
    wait_for(lambda: Event.objects.filter(stream__key="guides/setup.md").count() >= 50, message="50 writes")
    streams.append(EventStream(srv.base_url, "guides/setup.md", token=tokens["maria"], last_event_id=0))
    wait_for(lambda: Event.objects.filter(stream__key="guides/setup.md").count() >= 120, message="120 writes")
    streams.append(EventStream(srv.base_url, "guides/setup.md", token=tokens["rob"], last_event_id=0))
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert failures == []
        for stream in streams:
            stream.wait_for_id(200, timeout=20)
            assert stream.ids() == list(range(1, 201)), "strictly increasing, gap-free, each id once"
    finally:
        for stream in streams:
            stream.close()


def test_an_id_beyond_the_last_one_gets_stream_reset(setup):
    srv, tokens = setup["server"], setup["tokens"]
    services.comment_create(author=User.objects.get(username="rob"), document=setup["doc"], body="one")
    stream = EventStream(srv.base_url, "guides/setup.md", token=tokens["vera"], last_event_id=50).wait_connected()
    try:
        reset = stream.wait_for_event("stream.reset")
        assert reset.json() == {"lastEventId": 1}
        assert post(srv, tokens["rob"], "/api/comments/", {"docPath": "guides/setup.md", "body": "after"}
                    ).status_code == 201
        stream.wait_for_id(2)
        assert stream.ids() == [2]
    finally:
        stream.close()


def test_event_text_cannot_inject_frames(setup):
    srv, tokens = setup["server"], setup["tokens"]
    body = "\n\nid: 999\nevent: x\ndata: y"
    stream = EventStream(srv.base_url, "guides/setup.md", token=tokens["vera"]).wait_connected()
    try:
        assert post(srv, tokens["rob"], "/api/comments/", {"docPath": "guides/setup.md", "body": body}
                    ).status_code == 201
        received = stream.wait_for_event("comment.created")
        assert received.id == 1
        assert received.json()["data"]["body"] == body
        assert post(srv, tokens["rob"], "/api/comments/", {"docPath": "guides/setup.md", "body": "next"}
                    ).status_code == 201
        stream.wait_for_id(2)
        assert [r.event for r in stream.events()] == ["comment.created", "comment.created"]
        assert {r.event for r in stream.received} <= {"comment.created", "user.presence"}
        assert stream.ids() == [1, 2]
    finally:
        stream.close()


def test_errors_are_json_before_any_stream_byte(setup):
    srv, tokens = setup["server"], setup["tokens"]
    url = srv.base_url + "/api/events"
    auth = {"Authorization": f"Token {tokens['otto']}"}

    missing = httpx.get(url, headers=auth)
    assert missing.status_code == 400 and missing.json() == {"docPath": ["This field is required."]}
    invalid = httpx.get(url, params={"docPath": "../etc/passwd"}, headers=auth)
    assert invalid.status_code == 400 and "docPath" in invalid.json()
    anonymous = httpx.get(url, params={"docPath": "guides/setup.md"})
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == "application/json"
    bad_token = httpx.get(url, params={"docPath": "guides/setup.md"}, headers={"Authorization": "Token nope"})
    assert bad_token.status_code == 401

    private = httpx.get(url, params={"docPath": "guides/setup.md"}, headers=auth)
    nowhere = httpx.get(url, params={"docPath": "guides/nowhere.md"}, headers=auth)
    assert private.status_code == nowhere.status_code == 404
    assert private.content == nowhere.content
    assert private.headers["content-type"] == nowhere.headers["content-type"] == "application/json"

    bad_id = httpx.get(url, params={"docPath": "guides/setup.md"},
                       headers={"Authorization": f"Token {tokens['vera']}", "Last-Event-ID": "-3"})
    assert bad_id.status_code == 400 and "-3" not in bad_id.text


def test_session_cookie_opens_the_stream(setup):
    srv = setup["server"]
    with httpx.Client(base_url=srv.base_url, timeout=10) as client:
        page = client.get("/accounts/login/")
        assert page.status_code == 200
        login = client.post("/accounts/login/", data={"username": "vera", "password": "vera-pass-123",
                                                      "csrfmiddlewaretoken": client.cookies["csrftoken"]},
                            headers={"Referer": srv.base_url + "/accounts/login/"})
        assert login.status_code == 302
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    stream = EventStream(srv.base_url, "guides/setup.md", headers={"Cookie": cookie}).wait_connected()
    try:
        assert stream.status == 200
        response = post(srv, setup["tokens"]["rob"], "/api/comments/", {"docPath": "guides/setup.md", "body": "hi"})
        assert response.status_code == 201
        stream.wait_for_id(1)
    finally:
        stream.close()


def test_client_going_away_frees_the_stream(setup):
    srv, tokens = setup["server"], setup["tokens"]
    streams = [EventStream(srv.base_url, "guides/setup.md", token=tokens["vera"]).wait_connected() for _ in range(3)]
    for stream in streams:
        stream.close()
    wait_for(lambda: srv.log().count("stream closed doc=guides/setup.md user=vera reason=client_gone") >= 3,
             message="three client_gone closes in the server log")
    assert json.loads(httpx.get(srv.base_url + "/healthz").text) == {"db": "ok", "layer": "ok"}
