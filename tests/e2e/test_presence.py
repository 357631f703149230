"""Presence, typing and cursors over real streams (issue: presence)."""

from __future__ import annotations

import httpx
import pytest

from reviews import services
from reviews.models import Role
from tests.conftest import DOC_CONTENT, token_for
from tests.support.sse import EventStream
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e]
PATH = "guides/setup.md"


@pytest.fixture
def world(maintainer, reviewer, viewer, transactional_db):
    doc = services.document_create(user=maintainer, path=PATH, title="Setup", content=DOC_CONTENT)
    services.member_set(document=doc, user=reviewer, role=Role.REVIEWER)
    services.member_set(document=doc, user=viewer, role=Role.VIEWER)
    return {u.username: (u, token_for(u)) for u in (maintainer, reviewer, viewer)}


def presence_of(stream: EventStream) -> list[tuple[str, str]]:
    return [(r.json()["data"]["username"], r.json()["data"]["status"]) for r in stream.of_type("user.presence")]


def online_via_api(srv, token) -> set[str]:
    response = httpx.get(srv.base_url + "/api/presence/", params={"docPath": PATH},
                         headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200
    assert all(row["status"] == "online" for row in response.json())
    return {row["username"] for row in response.json()}


def test_online_once_for_many_tabs_and_offline_once_when_all_close(server, world):
    srv = server(env={"SSE_PRESENCE_GRACE_SECONDS": "1"})
    watcher = EventStream(srv.base_url, PATH, token=world["maria"][1]).wait_connected()
    tabs = []
    try:
        tabs = [EventStream(srv.base_url, PATH, token=world["rob"][1]).wait_connected() for _ in range(3)]
        wait_for(lambda: ("rob", "online") in presence_of(watcher), message="rob online")
        assert online_via_api(srv, world["maria"][1]) == {"maria", "rob"}
        tabs.pop().close()
        # A new stream gets one online event per user online, right after its replay.
        newcomer = EventStream(srv.base_url, PATH, token=world["vera"][1]).wait_connected()
        wait_for(lambda: {"maria", "rob", "vera"} <= {name for name, _ in presence_of(newcomer)},
                 message="snapshot of who is online")
        assert sorted(presence_of(newcomer)) == [("maria", "online"), ("rob", "online"), ("vera", "online")]
        newcomer.close()
        wait_for(lambda: ("vera", "offline") in presence_of(watcher), message="vera offline")
        assert ("rob", "offline") not in presence_of(watcher), "two rob tabs still open"
        for tab in tabs:
            tab.close()
        tabs = []
        wait_for(lambda: ("rob", "offline") in presence_of(watcher), message="rob offline")
        assert presence_of(watcher).count(("rob", "online")) == 1
        assert presence_of(watcher).count(("rob", "offline")) == 1
        assert online_via_api(srv, world["maria"][1]) == {"maria"}
    finally:
        watcher.close()
        for tab in tabs:
            tab.close()


def test_a_reconnect_within_the_grace_period_does_not_flicker(server, world):
    srv = server(env={"SSE_PRESENCE_GRACE_SECONDS": "3"})
    watcher = EventStream(srv.base_url, PATH, token=world["maria"][1]).wait_connected()
    try:
        first = EventStream(srv.base_url, PATH, token=world["rob"][1]).wait_connected()
        wait_for(lambda: ("rob", "online") in presence_of(watcher), message="rob online")
        first.close()
        second = EventStream(srv.base_url, PATH, token=world["rob"][1], last_event_id=0).wait_connected()
        # Cross the grace period, then make sure nothing about rob was sent.
        marker = EventStream(srv.base_url, PATH, token=world["vera"][1]).wait_connected()
        marker.close()
        wait_for(lambda: ("vera", "offline") in presence_of(watcher), timeout=10, message="vera offline")
        assert presence_of(watcher).count(("rob", "online")) == 1
        assert ("rob", "offline") not in presence_of(watcher)
        second.close()
    finally:
        watcher.close()


def test_typing_and_cursor_reach_others_but_not_the_sender(server, world):
    srv = server()
    other = EventStream(srv.base_url, PATH, token=world["maria"][1]).wait_connected()
    own = EventStream(srv.base_url, PATH, token=world["rob"][1]).wait_connected()
    try:
        headers = {"Authorization": f"Token {world['rob'][1]}"}
        assert httpx.post(srv.base_url + "/api/typing/", json={"docPath": PATH, "target": "comment:1"},
                          headers=headers).status_code == 202
        assert httpx.post(srv.base_url + "/api/cursor/", json={"docPath": PATH, "position": 12},
                          headers=headers).status_code == 202
        typing = other.wait_for_event("user.typing").json()["data"]
        assert typing["username"] == "rob" and typing["target"] == "comment:1"
        cursor = other.wait_for_event("user.cursor").json()["data"]
        assert cursor["position"] == 12
        # Never persisted: no id, no sequence number used.
        assert other.ids() == []
        assert httpx.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": "x"},
                          headers=headers).status_code == 201
        own.wait_for_id(1)
        assert own.of_type("user.typing") == [] and own.of_type("user.cursor") == []
        viewer = {"Authorization": f"Token {world['vera'][1]}"}
        assert httpx.post(srv.base_url + "/api/typing/", json={"docPath": PATH}, headers=viewer).status_code == 403
        assert httpx.post(srv.base_url + "/api/cursor/", json={"docPath": PATH, "position": -1},
                          headers=headers).status_code == 400
    finally:
        other.close()
        own.close()
