"""Reliability: break real components and check that no committed event is lost.

Every test ends by comparing what each client received with the event table:
same ids, same order, no gap, no duplicate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from django.db import connection

from realtime.models import Event
from reviews import services
from reviews.models import Role
from tests.conftest import REQUIRE_SERVICES, need
from tests.support.faults import RedisServer, TcpProxy
from tests.support.server import ROOT
from tests.support.sse import EventStream, ResumingStream
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e]
PATH = "guides/setup.md"


def table_ids() -> list[int]:
    return list(Event.objects.filter(stream__key=PATH).order_by("seq").values_list("seq", flat=True))


def assert_matches_table(ids: list[int], *, after: int = 0) -> None:
    expected = [i for i in table_ids() if i > after]
    assert ids == expected, f"received {ids[:5]}..{ids[-5:]} ({len(ids)}), table {len(expected)}"


@pytest.fixture
def world(transactional_db, document, tokens):
    return document, tokens


@pytest.fixture
def own_redis(redis_server_binary, tmp_path):
    started = []

    def start() -> RedisServer:
        server = RedisServer(redis_server_binary, tmp_path).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def write(srv, token, body):
    return httpx.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": body},
                      headers={"Authorization": f"Token {token}"}, timeout=15)


def writers(tokens):
    """Round-robin over two writers, so the 10/s per-user limit is not what a test measures."""
    names = ["rob", "maria"]
    return lambda i: tokens[names[i % 2]]


@pytest.mark.services
def test_layer_down_mid_stream_and_at_connect_loses_nothing(server, world, own_redis):
    _, tokens = world
    token = writers(tokens)
    redis_server = own_redis()
    env = {"REDIS_URL": redis_server.url, "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:8]}"}
    one, two = server(env=env), server(env=env)
    streams = [EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected() for srv in (one, two)]
    try:
        for i in range(4):
            assert write(one if i % 2 else two, token(i), f"up {i}").status_code == 201
        for stream in streams:
            stream.wait_for_id(4)
        redis_server.kill()
        # Writes still commit and answer 201; the publish failure is only logged.
        for i in range(6):
            assert write(one if i % 2 else two, token(i), f"down {i}").status_code == 201
        health = httpx.get(one.base_url + "/healthz", timeout=10)
        assert health.status_code == 503 and health.json() == {"db": "ok", "layer": "down"}
        # Open streams follow the table meanwhile (at most ~1 s behind).
        for stream in streams:
            stream.wait_for_id(10, timeout=10)
        # A stream opened while the layer is down works too.
        late = EventStream(one.base_url, PATH, token=tokens["maria"], last_event_id=10).wait_connected()
        streams.append(late)
        assert write(two, token(0), "still down").status_code == 201
        late.wait_for_id(11, timeout=10)
        # The layer returns (an empty Redis: memberships are renewed).
        redis_server.proc = None
        revived = RedisServer(redis_server.binary, redis_server.workdir)
        revived.port = redis_server.port
        revived.start()
        wait_for(lambda: httpx.get(one.base_url + "/healthz").status_code == 200, timeout=15, message="layer ok")
        for i in range(5):
            assert write(one if i % 2 else two, token(i), f"back {i}").status_code == 201
        for stream in streams:
            stream.wait_for_id(16, timeout=10)
        revived.kill()
        assert_matches_table(streams[0].ids())
        assert_matches_table(streams[1].ids())
        assert_matches_table(late.ids(), after=10)
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.services
def test_group_membership_outlives_group_expiry(server, world, own_redis):
    _, tokens = world
    redis_server = own_redis()
    srv = server(env={"REDIS_URL": redis_server.url, "CHANNEL_GROUP_EXPIRY": "2",
                      "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:8]}"})
    stream = EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected()
    try:
        assert write(srv, tokens["rob"], "early").status_code == 201
        stream.wait_for_id(1)
        deadline = time.monotonic() + 5  # well past group_expiry
        i = 0
        while time.monotonic() < deadline:
            i += 1
            assert write(srv, writers(tokens)(i), f"later {i}").status_code == 201
            stream.wait_for_id(1 + i, timeout=1.5)  # live, not the 600 s resync of the tests
            time.sleep(0.25)
        assert_matches_table(stream.ids())
    finally:
        stream.close()


@pytest.mark.services
def test_layer_drops_are_filled_from_the_table(server, world, own_redis):
    _, tokens = world
    redis_server = own_redis()
    # A channel of capacity 1: channels-redis drops whatever does not fit.
    srv = server(env={"REDIS_URL": redis_server.url, "CHANNEL_CAPACITY": "1", "SSE_RESYNC_SECONDS": "2",
                      "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:8]}"})
    stream = EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected()
    results = []

    def burst(name):
        with httpx.Client(headers={"Authorization": f"Token {tokens[name]}"}) as client:
            for i in range(10):
                results.append(client.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": "b"})
                               .status_code)

    try:
        threads = [threading.Thread(target=burst, args=(name,)) for name in ("rob", "maria")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results.count(201) == len(table_ids())
        stream.wait_for_id(len(table_ids()), timeout=10)
        assert_matches_table(stream.ids())
    finally:
        stream.close()


@pytest.mark.services
def test_sigkilled_process_clients_resume_elsewhere_and_in_flight_writes_are_all_or_nothing(server, world, own_redis):
    _, tokens = world
    redis_server = own_redis()
    # Three tabs of one user: after the kill, their old leases count against
    # the 5-stream limit until they expire (3 s here, 30 s by default).
    env = {"REDIS_URL": redis_server.url, "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:8]}", "SSE_LEASE_TTL_SECONDS": "3"}
    one, two = server(env=env), server(env=env)
    clients = [ResumingStream([two.base_url, one.base_url], PATH, token=tokens["vera"]) for _ in range(3)]
    answered: list[int] = []
    stop = threading.Event()

    def keep_writing(name):
        with httpx.Client(headers={"Authorization": f"Token {tokens[name]}"}, timeout=10) as client:
            while not stop.is_set():
                for target in (two, one):
                    try:
                        response = client.post(target.base_url + "/api/comments/",
                                               json={"docPath": PATH, "body": "w"})
                        if response.status_code == 201:
                            answered.append(response.json()["id"])
                    except httpx.HTTPError:
                        pass  # cut by the kill: either committed or not, the table says
                    time.sleep(0.12)

    threads = [threading.Thread(target=keep_writing, args=(n,)) for n in ("rob", "maria")]
    try:
        wait_for(lambda: all(c.connections and c.connections[0].connected.is_set() for c in clients),
                 message="clients connected")
        for thread in threads:
            thread.start()
        wait_for(lambda: len(table_ids()) >= 8, message="writes before the kill")
        two.kill()
        wait_for(lambda: len(table_ids()) >= 20, timeout=20, message="writes after the kill")
        stop.set()
        for thread in threads:
            thread.join()
        last = table_ids()[-1]
        for client in clients:
            client.wait_for_id(last, timeout=15)
            assert_matches_table(client.ids())
        from reviews.models import Comment

        # Every write answered 201 is committed (and was delivered above).
        assert set(answered) <= set(Comment.objects.values_list("id", flat=True))
    finally:
        stop.set()
        for client in clients:
            client.close()


def test_sigterm_closes_streams_promptly_and_lets_requests_finish(server, world):
    _, tokens = world
    srv = server()
    stream = EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected()
    outcomes: list[str] = []
    stop = threading.Event()

    def keep_writing():
        with httpx.Client(headers={"Authorization": f"Token {tokens['rob']}"}, timeout=10) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    response = client.post(srv.base_url + "/api/comments/", json={"docPath": PATH, "body": f"t{i}"})
                    outcomes.append(str(response.status_code))
                except httpx.ConnectError:
                    outcomes.append("refused")
                    return
                except httpx.HTTPError as exc:
                    outcomes.append(f"cut: {exc!r}")
                    return
                time.sleep(0.11)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        wait_for(lambda: outcomes.count("201") >= 3, message="writes before SIGTERM")
        signalled = time.monotonic()
        srv.signal(signal.SIGTERM)
        assert stream.ended.wait(3), "stream still open 3 s after SIGTERM"
        closed_after = time.monotonic() - signalled
        assert stream.failure is None, f"the stream was cut, not ended: {stream.failure!r}"
        srv.proc.wait(timeout=15)
        stop.set()
        writer.join()
        assert closed_after < 3
        assert not [o for o in outcomes if o.startswith("cut")], outcomes
        assert outcomes.count("201") == len(table_ids())
        # A write still in flight when the streams closed commits after: the
        # closed stream has a gap-free prefix, and its client gets the rest by
        # resuming (here from the same server, restarted).
        got = stream.ids()
        assert got == table_ids()[:len(got)]
        srv.start()
        resumed = EventStream(srv.base_url, PATH, token=tokens["vera"], last_event_id=got[-1] if got else 0)
        resumed.wait_connected()
        try:
            if table_ids()[len(got):]:
                resumed.wait_for_id(table_ids()[-1])
            assert_matches_table(got + resumed.ids())
        finally:
            resumed.close()
    finally:
        stop.set()
        stream.close()


def test_stream_lifetime_closes_with_jitter_and_the_client_resumes(server, world):
    _, tokens = world
    srv = server(env={"SSE_MAX_LIFETIME_SECONDS": "2"})
    client = ResumingStream([srv.base_url], PATH, token=tokens["vera"])
    try:
        for i in range(12):
            assert write(srv, writers(tokens)(i), f"l{i}").status_code == 201
            time.sleep(0.4)
        client.wait_for_id(12)
        assert len(client.connections) >= 2, "the stream was not recycled"
        assert_matches_table(client.ids())
        assert "reason=lifetime" in srv.log()
    finally:
        client.close()


def test_prune_events_keeps_serving_and_resets_ids_older_than_kept(server, world, settings):
    doc, tokens = world
    # The server's resync (not only the prune's layer message, which the
    # in-memory layer cannot carry between processes) tells it what was pruned.
    srv = server(env={"SSE_RESYNC_SECONDS": "0.2"})
    # A stream open through the writes: the server keeps the document's
    # recent frames in memory, and must not replay the pruned ones from there.
    watcher = EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected()
    for i in range(30):
        services.comment_create(author=doc.memberships.get(role=Role.REVIEWER).user, document=doc, body=f"p{i}")
    watcher.wait_for_id(30)
    env = {**os.environ, **srv.env}
    result = subprocess.run([sys.executable, "manage.py", "prune_events", "--max-per-key", "10"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pruned 20 events" in result.stdout
    assert table_ids() == list(range(21, 31))
    watcher.close()

    def asked_for_pruned_ids():
        """A stream from id 5, if the server answers it with stream.reset
        (once it has learned of the prune), else None."""
        probe = EventStream(srv.base_url, PATH, token=tokens["vera"], last_event_id=5).wait_connected()
        wait_for(lambda: probe.ids() or probe.of_type("stream.reset"), timeout=5, message="a replay or a reset")
        if probe.of_type("stream.reset"):
            return probe
        probe.close()
        return None

    old = wait_for(asked_for_pruned_ids, timeout=10, interval=0.3, message="stream.reset for pruned ids")
    kept = EventStream(srv.base_url, PATH, token=tokens["vera"], last_event_id=25).wait_connected()
    try:
        assert old.wait_for_event("stream.reset").json() == {"lastEventId": 30}
        kept.wait_for_id(30)
        assert kept.ids() == [26, 27, 28, 29, 30]
        assert old.ids() == []
    finally:
        old.close()
        kept.close()


def test_database_down_gives_503_keeps_open_streams_and_recovers(server, world):
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.skip("runs in the PostgreSQL pass of `make test` (this pass is on SQLite)")
        need(False, "PostgreSQL as the test database")
    _, tokens = world
    settings_dict = connection.settings_dict
    proxy = TcpProxy(int(settings_dict.get("PORT") or 5432), settings_dict.get("HOST") or "127.0.0.1").start()
    user = settings_dict.get("USER") or "postgres"
    srv = server(env={"DATABASE_URL": f"postgres://{user}@127.0.0.1:{proxy.port}/{settings_dict['NAME']}"})
    stream = EventStream(srv.base_url, PATH, token=tokens["vera"]).wait_connected()
    try:
        assert write(srv, tokens["rob"], "before").status_code == 201
        stream.wait_for_id(1)
        proxy.cut()
        refused = httpx.get(srv.base_url + "/api/events", params={"docPath": PATH},
                            headers={"Authorization": f"Token {tokens['maria']}"}, timeout=15)
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
        assert refused.headers["content-type"] == "application/json"
        failed_write = write(srv, tokens["rob"], "during")
        assert failed_write.status_code == 503
        health = httpx.get(srv.base_url + "/healthz", timeout=15)
        assert health.status_code == 503 and health.json()["db"] == "down"
        # The open stream keeps its connection: heartbeats go on (SSE_HEARTBEAT_SECONDS=1).
        time.sleep(2.5)
        assert not stream.ended.is_set() and srv.proc.poll() is None
        proxy.restore()
        wait_for(lambda: httpx.get(srv.base_url + "/healthz").status_code == 200, timeout=20, message="db back")
        assert write(srv, tokens["rob"], "after").status_code == 201
        stream.wait_for_id(2, timeout=10)
        assert_matches_table(stream.ids())
    finally:
        stream.close()
        proxy.cut()
