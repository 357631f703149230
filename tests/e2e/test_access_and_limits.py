"""Access control, limits and hostile input against a real server (issue: access control)."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from django.contrib.auth.models import User

from realtime.models import Event
from reviews import services
from reviews.models import Comment
from tests.support.sse import EventStream
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e]
PATH = "guides/setup.md"


@pytest.fixture
def world(transactional_db, document, tokens):
    return document, tokens


def auth(token):
    return {"Authorization": f"Token {token}"}


def test_sixth_stream_of_a_user_gets_429_and_a_closed_one_frees_its_slot(server, world):
    srv = server()
    _, tokens = world
    streams = [EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected() for _ in range(5)]
    try:
        assert all(s.status == 200 for s in streams)
        sixth = httpx.get(srv.base_url + "/api/events", params={"docPath": PATH}, headers=auth(tokens["vera"]))
        assert sixth.status_code == 429
        assert int(sixth.headers["Retry-After"]) > 0 and sixth.headers["content-type"] == "application/json"
        streams.pop().close()
        again = wait_for(lambda: (s := EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected())
                         .status == 200 and s, message="a slot freed by the closed stream")
        streams.append(again)
    finally:
        for stream in streams:
            stream.close()


def test_document_stream_limit_is_503_with_retry_after(server, world):
    srv = server(env={"SSE_MAX_CONNECTIONS_PER_DOCUMENT": "2"})
    _, tokens = world
    streams = [EventStream(srv.base_url, PATH, token=tokens[name]).wait_connected() for name in ("vera", "rob")]
    try:
        third = httpx.get(srv.base_url + "/api/events", params={"docPath": PATH}, headers=auth(tokens["maria"]))
        assert third.status_code == 503 and int(third.headers["Retry-After"]) > 0
    finally:
        for stream in streams:
            stream.close()


def test_cross_site_origin_neither_streams_nor_uses_slots(server, world):
    srv = server()
    _, tokens = world
    for _ in range(6):
        evil = httpx.get(srv.base_url + "/api/events", params={"docPath": PATH},
                         headers={**auth(tokens["vera"]), "Origin": "https://evil.example"})
        assert evil.status_code == 403 and evil.headers["content-type"] == "application/json"
    same = EventStream(srv.base_url, PATH, token=tokens["vera"], headers={"Origin": srv.base_url}).wait_connected()
    streams = [same] + [EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected() for _ in range(4)]
    try:
        assert [s.status for s in streams] == [200] * 5
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "99999999999999999999999", "4\r\nevent: x", "4\x00"])
def test_malformed_last_event_id_is_400_and_not_echoed(server, world, value):
    srv = server()
    _, tokens = world
    with httpx.Client() as client:
        response = client.get(srv.base_url + "/api/events", params={"docPath": PATH, "lastEventId": value},
                              headers=auth(tokens["vera"]))
    assert response.status_code == 400
    assert value not in response.text


def test_removed_member_stream_closes_within_5s_and_sees_nothing_after(server, world):
    srv = server()
    doc, tokens = world
    stream = EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected()
    try:
        assert httpx.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": "before"},
                          headers=auth(tokens["rob"])).status_code == 201
        stream.wait_for_id(1)
        vera = User.objects.get(username="vera")
        removed_at = time.monotonic()
        response = httpx.delete(f"{srv.base_url}/api/documents/{doc.pk}/members/{vera.pk}/",
                                headers=auth(tokens["maria"]))
        assert response.status_code == 204
        assert httpx.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": "after"},
                          headers=auth(tokens["rob"])).status_code == 201
        assert stream.ended.wait(5), "stream still open 5 s after the removal"
        assert time.monotonic() - removed_at < 5
        assert stream.ids() == [1]
        again = httpx.get(srv.base_url + "/api/events", params={"docPath": PATH}, headers=auth(tokens["vera"]))
        assert again.status_code == 404
    finally:
        stream.close()


def test_deleting_a_token_closes_its_streams_and_it_opens_no_more(server, world):
    """The process caches granted access for a few seconds: deleting the token
    must close the streams and be refused at once all the same."""
    srv = server()
    _, tokens = world
    stream = EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected()
    second = EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected()  # granted from the cache
    try:
        assert stream.status == second.status == 200
        from rest_framework.authtoken.models import Token

        Token.objects.filter(key=tokens["vera"]).delete()
        assert stream.ended.wait(5) and second.ended.wait(5), "streams still open 5 s after the token went"
        again = httpx.get(srv.base_url + "/api/events", params={"docPath": PATH}, headers=auth(tokens["vera"]))
        # Refused in the REST API's words: the token is wrong, not missing.
        assert again.status_code == 401 and again.json() == {"detail": "Invalid token."}
        anonymous = httpx.get(srv.base_url + "/api/events", params={"docPath": PATH})
        assert anonymous.json() == {"detail": "Authentication credentials were not provided."}
    finally:
        stream.close()
        second.close()


def test_a_repeated_doc_path_means_its_last_value_on_the_stream_as_in_the_rest_api(server, world, outsider):
    srv = server()
    _, tokens = world
    services.document_create(user=outsider, path="private/notes.md", title="Notes", content="# Notes\n")
    for params, status in (([("docPath", "private/notes.md"), ("docPath", PATH)], 200),
                           ([("docPath", PATH), ("docPath", "private/notes.md")], 404)):
        # vera reads guides/setup.md, not the outsider's private document.
        listed = httpx.get(srv.base_url + "/api/comments/", params=params, headers=auth(tokens["vera"]))
        assert listed.status_code == status
        with httpx.stream("GET", srv.base_url + "/api/events", params=params, headers=auth(tokens["vera"]),
                          timeout=5) as stream:
            assert stream.status_code == status


def test_password_change_closes_session_streams_and_reconnect_is_401(server, world):
    srv = server()
    doc, _ = world
    with httpx.Client(base_url=srv.base_url) as client:
        client.get("/accounts/login/")
        assert client.post("/accounts/login/", data={"username": "vera", "password": "vera-pass-123",
                                                     "csrfmiddlewaretoken": client.cookies["csrftoken"]}
                           ).status_code == 302
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    stream = EventStream(srv.base_url, PATH, headers={"Cookie": cookie}).wait_connected()
    try:
        vera = User.objects.get(username="vera")
        vera.set_password("a-new-password-77")
        vera.save()
        assert stream.ended.wait(5)
        again = httpx.get(srv.base_url + "/api/events", params={"docPath": PATH}, headers={"Cookie": cookie})
        assert again.status_code == 401
    finally:
        stream.close()


def test_hidden_comment_reaches_readers_as_deleted_and_maintainers_as_hidden_live_and_in_replay(server, world):
    srv = server()
    doc, tokens = world
    reader = EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected()
    maintainer = EventStream(srv.base_url, PATH, token=tokens["maria"]).wait_connected()
    try:
        comment = httpx.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": "buy pills"},
                             headers=auth(tokens["rob"])).json()
        hide = httpx.patch(f"{srv.base_url}/api/comments/{comment['id']}/", json={"hidden": True},
                           headers=auth(tokens["maria"]))
        assert hide.status_code == 200
        for stream in (reader, maintainer):
            stream.wait_for_id(2)
        assert reader.events()[1].event == "comment.deleted"
        assert reader.events()[1].json()["data"] == {"id": comment["id"]}
        assert maintainer.events()[1].event == "comment.updated"
        assert maintainer.events()[1].json()["data"]["hidden"] is True
    finally:
        reader.close()
        maintainer.close()
    # Replay applies the reader's permissions now: even the creation is redacted.
    replay = EventStream(srv.base_url, PATH, token=tokens["vera"], last_event_id=0).wait_connected()
    try:
        replay.wait_for_id(2)
        assert [r.event for r in replay.events()] == ["comment.deleted", "comment.deleted"]
        assert "buy pills" not in "".join(r.data for r in replay.received)
    finally:
        replay.close()


def test_write_rate_limit_admits_the_burst_then_429_with_retry_after(server, world):
    srv = server()
    _, tokens = world
    statuses = []
    with httpx.Client(headers=auth(tokens["rob"])) as client:
        started = time.monotonic()
        for i in range(25):
            response = client.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": f"n{i}"})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
        elapsed = time.monotonic() - started
    admitted = statuses.count(201)
    assert set(statuses) <= {201, 429} and statuses.count(429) > 0
    assert admitted <= 10 + 10 * elapsed + 1
    assert Comment.objects.count() == admitted == Event.objects.count()


def test_parallel_retries_with_one_idempotency_key_write_once(server, world):
    srv = server()
    _, tokens = world
    key = str(uuid.uuid4())
    results = []
    barrier = threading.Barrier(5)

    def attempt():
        barrier.wait()
        response = httpx.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": "once"},
                              headers={**auth(tokens["rob"]), "Idempotency-Key": key}, timeout=30)
        results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=attempt) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 5
    assert {status for status, _ in results} == {201}
    assert all(body == results[0][1] for _, body in results)
    assert Comment.objects.filter(body="once").count() == 1
    assert Event.objects.count() == 1
    other = httpx.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": "different"},
                       headers={**auth(tokens["rob"]), "Idempotency-Key": key})
    assert other.status_code == 422 and Comment.objects.count() == 1
