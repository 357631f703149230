"""Two server processes on one Redis: limits, revocation, presence and delivery hold across them."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from django.contrib.auth.models import User

from realtime.models import Event
from reviews import services
from reviews.models import Comment, Role
from tests.conftest import DOC_CONTENT, token_for
from tests.support.sse import EventStream
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.services]
PATH = "guides/setup.md"


@pytest.fixture
def pair(server, redis_url, maintainer, reviewer, viewer, outsider):
    doc = services.document_create(user=maintainer, path=PATH, title="Setup", content=DOC_CONTENT)
    services.member_set(document=doc, user=reviewer, role=Role.REVIEWER)
    services.member_set(document=doc, user=viewer, role=Role.VIEWER)
    env = {"REDIS_URL": redis_url, "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:10]}",
           "SSE_LEASE_TTL_SECONDS": "3", "SSE_PRESENCE_SWEEP_SECONDS": "1", "SSE_PRESENCE_GRACE_SECONDS": "1"}
    one, two = server(env=env), server(env=env)
    tokens = {u.username: token_for(u) for u in (maintainer, reviewer, viewer, outsider)}
    return doc, one, two, tokens


def auth(token):
    return {"Authorization": f"Token {token}"}


def test_every_stream_gets_every_event_with_streams_and_writers_split_over_two_processes(pair):
    doc, one, two, tokens = pair
    streams = [EventStream(srv.base_url, PATH, token=tokens[name]).wait_connected()
               for srv in (one, two) for name in ("vera", "maria")]
    try:
        for i in range(30):
            srv = one if i % 2 else two
            token = tokens["rob"] if i % 3 else tokens["maria"]
            response = httpx.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": f"m{i}"},
                                  headers=auth(token))
            assert response.status_code in (201, 429)
        last = Event.objects.filter(stream__key=PATH).count()
        for stream in streams:
            stream.wait_for_id(last)
            assert stream.ids() == list(range(1, last + 1))
    finally:
        for stream in streams:
            stream.close()


def test_presence_is_seen_across_processes_and_a_killed_process_takes_its_users_offline(pair):
    doc, one, two, tokens = pair
    watcher = EventStream(one.base_url, PATH, token=tokens["maria"]).wait_connected()
    try:
        elsewhere = EventStream(two.base_url, PATH, token=tokens["rob"]).wait_connected()
        wait_for(lambda: any(r.json()["data"] == {"userId": User.objects.get(username="rob").pk,
                                                  "username": "rob", "status": "online"}
                             for r in watcher.of_type("user.presence")), message="rob online, seen on process one")
        online = httpx.get(one.base_url + "/api/presence/", params={"docPath": PATH}, headers=auth(tokens["vera"]))
        assert {row["username"] for row in online.json()} == {"maria", "rob"}
        two.kill()
        elsewhere.close()
        killed_at = time.monotonic()
        wait_for(lambda: any(r.json()["data"]["status"] == "offline" and r.json()["data"]["username"] == "rob"
                             for r in watcher.of_type("user.presence")), timeout=30, message="rob offline")
        # The TTL is 3 s here (60 s by default): the lease expired, a sweep announced it.
        assert time.monotonic() - killed_at < 30
    finally:
        watcher.close()


def test_revocation_on_one_process_closes_the_stream_on_the_other(pair):
    doc, one, two, tokens = pair
    stream = EventStream(two.base_url, PATH, token=tokens["vera"]).wait_connected()
    try:
        vera = User.objects.get(username="vera")
        assert httpx.delete(f"{one.base_url}/api/documents/{doc.pk}/members/{vera.pk}/",
                            headers=auth(tokens["maria"])).status_code == 204
        assert stream.ended.wait(5), "the stream on the other process stayed open"
        assert httpx.get(two.base_url + "/api/events", params={"docPath": PATH},
                         headers=auth(tokens["vera"])).status_code == 404
    finally:
        stream.close()


def test_write_rate_limit_is_shared_by_both_processes(pair):
    doc, one, two, tokens = pair
    statuses: list[int] = []
    lock = threading.Lock()

    def hammer(srv, count):
        with httpx.Client(headers=auth(tokens["rob"]), timeout=30) as client:
            for i in range(count):
                status = client.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": "x"}).status_code
                with lock:
                    statuses.append(status)
                time.sleep(0.04)  # 25/s per process, 50/s in all

    started = time.monotonic()
    threads = [threading.Thread(target=hammer, args=(srv, 25)) for srv in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    admitted = statuses.count(201)
    assert set(statuses) <= {201, 429}
    assert admitted <= 10 + 10 * elapsed + 1, f"{admitted} admitted in {elapsed:.2f}s"
    assert statuses.count(429) >= 50 - (10 + 10 * elapsed + 1)
    assert Comment.objects.count() == admitted


def test_stream_limit_counts_both_processes_and_a_dead_process_frees_its_slots(pair):
    doc, one, two, tokens = pair
    on_two = [EventStream(two.base_url, PATH, token=tokens["vera"]).wait_connected() for _ in range(3)]
    on_one = [EventStream(one.base_url, PATH, token=tokens["vera"]).wait_connected() for _ in range(2)]
    try:
        assert [s.status for s in on_two + on_one] == [200] * 5
        for srv in (one, two):
            sixth = httpx.get(srv.base_url + "/api/events", params={"docPath": PATH}, headers=auth(tokens["vera"]))
            assert sixth.status_code == 429
        two.kill()
        for stream in on_two:
            stream.close()
        # The dead process's leases expire (TTL 3 s here, 60 s by default).
        fresh = wait_for(lambda: (s := EventStream(one.base_url, PATH, token=tokens["vera"]).wait_connected())
                         .status == 200 and s, timeout=20, interval=0.5, message="slots freed")
        on_one.append(fresh)
    finally:
        for stream in on_one + on_two:
            stream.close()


def test_a_killed_process_frees_its_users_stream_slots_within_seconds_not_the_lease_ttl(server, redis_url,
                                                                                           maintainer, viewer):
    """Clients of a killed process reconnect to another at once; the dead
    process's leases (TTL 30 s) must not hold their slots meanwhile."""
    services.document_create(user=maintainer, path=PATH, title="Setup", content=DOC_CONTENT)
    env = {"REDIS_URL": redis_url, "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:10]}", "SSE_LEASE_TTL_SECONDS": "30"}
    one, two = server(env=env), server(env=env)
    token = token_for(maintainer)
    on_two = [EventStream(two.base_url, PATH, token=token).wait_connected() for _ in range(5)]
    try:
        assert [s.status for s in on_two] == [200] * 5
        refused = httpx.get(one.base_url + "/api/events", params={"docPath": PATH}, headers=auth(token))
        assert refused.status_code == 429
        two.kill()
        killed = time.monotonic()
        back = wait_for(lambda: (s := EventStream(one.base_url, PATH, token=token).wait_connected())
                        .status == 200 and s, timeout=20, interval=0.5, message="slots freed")
        assert time.monotonic() - killed < 15
        back.close()
    finally:
        for stream in on_two:
            stream.close()


def test_metrics_add_up_over_processes(server, redis_url, maintainer, viewer, tmp_path):
    doc = services.document_create(user=maintainer, path=PATH, title="Setup", content=DOC_CONTENT)
    services.member_set(document=doc, user=viewer, role=Role.VIEWER)
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {"REDIS_URL": redis_url, "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:10]}",
           "PROMETHEUS_MULTIPROC_DIR": str(directory), "METRICS_TOKEN": "metrics-secret"}
    one, two = server(env=env), server(env=env)
    token = token_for(viewer)
    streams = [EventStream(srv.base_url, PATH, token=token).wait_connected() for srv in (one, two, two)]
    try:
        def open_streams() -> float:
            text = httpx.get(one.base_url + "/metrics", headers={"Authorization": "Bearer metrics-secret"}).text
            line = next(l for l in text.splitlines() if l.startswith("docreview_streams_open"))
            return float(line.split()[-1])

        wait_for(lambda: open_streams() == 3, message="3 open streams summed over both processes")
    finally:
        for stream in streams:
            stream.close()


def test_two_maintainers_demoting_each_other_at_once_on_two_processes_leave_one(pair, maintainer, reviewer):
    doc, one, two, tokens = pair
    url = f"/api/documents/{doc.pk}/members/"
    for _ in range(5):
        services.member_set(document=doc, user=maintainer, role=Role.MAINTAINER)
        services.member_set(document=doc, user=reviewer, role=Role.MAINTAINER)
        barrier = threading.Barrier(2)
        answers = []

        def demote(srv, actor, target):
            barrier.wait()
            response = httpx.post(srv.base_url + url, json={"username": target, "role": "reviewer"},
                                  headers=auth(tokens[actor]), timeout=30)
            answers.append(response.status_code)

        threads = [threading.Thread(target=demote, args=(one, "maria", "rob")),
                   threading.Thread(target=demote, args=(two, "rob", "maria"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # One wins; the other finds the last maintainer leaving (409) or, when
        # it is read after the win, that its actor is no longer one (403).
        first, second = sorted(answers)
        assert first == 200 and second in (403, 409), answers
        assert doc.memberships.filter(role=Role.MAINTAINER).count() == 1
