"""Shared fixtures: users with each role, a document, API clients, a real server."""

from __future__ import annotations

import os
import shutil
import socket

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from reviews import services
from reviews.models import Role
from tests.support.server import ServerProcess

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def need(available: bool, what: str) -> None:
    """Skip when ``what`` is missing, unless REQUIRE_SERVICES=1 (then fail)."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url():
    """The machine's Redis (a database of its own for the suite)."""
    need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


@pytest.fixture
def redis_server_binary():
    path = shutil.which("redis-server")
    need(path is not None, "the redis-server binary")
    return path


def make_user(username: str, **extra) -> User:
    user = User.objects.create_user(username=username, password=f"{username}-pass-123", **extra)
    return user


@pytest.fixture
def maintainer(db):
    return make_user("maria")


@pytest.fixture
def reviewer(db):
    return make_user("rob")


@pytest.fixture
def viewer(db):
    return make_user("vera")


@pytest.fixture
def outsider(db):
    return make_user("otto")


@pytest.fixture
def moderator(db):
    user = make_user("mod", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="moderate_content"))
    return User.objects.get(pk=user.pk)


DOC_CONTENT = "# Setup\n\nInstall Python, then run make run.\n\nConfigure the database.\n"


@pytest.fixture
def document(maintainer, reviewer, viewer):
    doc = services.document_create(user=maintainer, path="guides/setup.md", title="Setup", content=DOC_CONTENT)
    services.member_set(document=doc, user=reviewer, role=Role.REVIEWER)
    services.member_set(document=doc, user=viewer, role=Role.VIEWER)
    return doc


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api():
    """``api(user)``: an API client authenticated with the user's token."""
    return client_for


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def server(transactional_db, tmp_path):
    """A real daphne process serving the test database; stopped after the test."""
    started: list[ServerProcess] = []

    def start(**kwargs) -> ServerProcess:
        proc = ServerProcess(log_dir=tmp_path, **kwargs).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
    _forget_leases_of(started)


def _forget_leases_of(servers: list[ServerProcess]) -> None:
    """The killed servers' stream leases and presence, on Redis, would count
    for their TTL: the next test would see their users online.  Drop them."""
    for url, prefix in {(srv.env.get("REDIS_URL"), srv.env.get("CHANNEL_PREFIX", "docreview"))
                        for srv in servers if srv.env.get("REDIS_URL")}:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            for pattern in (f"{prefix}:lease:*", f"{prefix}:presence:*", f"{prefix}:proc:*"):
                keys = list(client.scan_iter(match=pattern, count=500))
                if keys:
                    client.delete(*keys)
        except redis.RedisError:
            pass  # a test that stopped its own Redis: nothing left to forget
        finally:
            client.close()


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Each test starts with full write buckets (in-process limiter)."""
    from realtime import ratelimit

    ratelimit.bucket.cache_clear()
    yield
    ratelimit.bucket.cache_clear()


@pytest.fixture
def tokens(maintainer, reviewer, viewer, outsider):
    """API tokens of the ``document`` fixture's people (and an outsider), by username."""
    return {user.username: token_for(user) for user in (maintainer, reviewer, viewer, outsider)}
