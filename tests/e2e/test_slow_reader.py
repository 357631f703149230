"""A client that stops reading is closed once what it leaves unread passes the
bound, on daphne and on uvicorn, while a reading client keeps getting
everything; the stalled client resumes by Last-Event-ID with nothing lost."""

from __future__ import annotations

import re
import socket

import pytest

from realtime.models import Event
from reviews import services
from tests.conftest import token_for
from tests.support.sse import EventStream
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e]
PATH = "guides/setup.md"
BODY = "x" * 3000
EVENTS = 120


def stalled_stream(port: int, token: str) -> socket.socket:
    """Open a stream with a small receive window, read its headers, then stop reading."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall((f"GET /api/events?docPath={PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Token {token}\r\nAccept: text/event-stream\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1024)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


def read_what_is_left(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:  # reset by the server: what was queued before it may be gone
        pass
    return data


@pytest.mark.parametrize("server_name", ["daphne", "uvicorn"])
def test_a_stalled_stream_is_closed_and_resumes_with_nothing_lost(server, document, viewer, maintainer,
                                                                   server_name):
    srv = server(server=server_name, env={
        "SSE_MAX_BUFFER_BYTES": str(96 * 1024),
        "SSE_SEND_BUFFER_BYTES": str(8 * 1024),
        # The events are written by this process, so the server learns of
        # them from the table: resync often.
        "SSE_RESYNC_SECONDS": "0.2",
    })
    stalled = stalled_stream(srv.port, token_for(viewer))
    reader = EventStream(srv.base_url, PATH, token=token_for(maintainer)).wait_connected()
    try:
        for i in range(EVENTS):
            services.comment_create(author=maintainer, document=document, body=f"{i} {BODY}")
            if i % 10 == 9:  # at the pace a reading client keeps up with
                reader.wait_for_id(i + 1, timeout=20)
        # 120 frames of ~3.3 KB are ~400 KB: past the 96 KB bound plus what
        # the socket buffers hold.
        wait_for(lambda: "reason=slow" in srv.log(), timeout=20, message="the stalled stream closed as slow")
        reader.wait_for_id(EVENTS, timeout=20)
        assert reader.ids() == list(range(1, EVENTS + 1))

        got = [int(i) for i in re.findall(rb"^id: (\d+)$", read_what_is_left(stalled), re.M)]
        assert got == list(range(1, len(got) + 1))
        assert len(got) < EVENTS, "the stalled client was sent everything: it was never held back"
        resumed = EventStream(srv.base_url, PATH, token=token_for(viewer), last_event_id=len(got)).wait_connected()
        try:
            resumed.wait_for_id(EVENTS, timeout=20)
            assert got + resumed.ids() == list(
                Event.objects.filter(stream__key=PATH).order_by("seq").values_list("seq", flat=True))
        finally:
            resumed.close()
    finally:
        stalled.close()
        reader.close()


@pytest.mark.parametrize("server_name", ["daphne", "uvicorn"])
def test_a_stalled_stream_whose_access_is_revoked_closes_and_lets_go_of_its_lease(server, document, viewer,
                                                                                    maintainer, server_name):
    """Closed while its client has stopped reading (here by a revocation on a
    document that then goes quiet, short of the slow bound): uvicorn would
    wait for the client forever to send the end of the response, so the
    hub drops the connection."""
    srv = server(server=server_name, env={
        "SSE_SEND_BUFFER_BYTES": str(8 * 1024),
        "SSE_RESYNC_SECONDS": "0.2",
    })
    stalled = stalled_stream(srv.port, token_for(viewer))
    reader = EventStream(srv.base_url, PATH, token=token_for(maintainer)).wait_connected()
    try:
        for i in range(40):  # ~130 KB: more than the socket buffers and uvicorn's 64 KB, far under 1 MB
            services.comment_create(author=maintainer, document=document, body=f"{i} {BODY}")
        # The hub writes each batch to every stream at once: once the reading
        # client has them all, so has the stalled one's connection.
        reader.wait_for_id(40, timeout=20)
        services.member_remove(document=document, user=viewer)
        wait_for(lambda: "reason=revoked" in srv.log(), timeout=15, message="the stalled stream closed")
        # Its lease is gone: the viewer is no longer online on the document.
        wait_for(lambda: viewer.username not in _online(srv, maintainer), timeout=10,
                 message="the viewer's lease released")
    finally:
        reader.close()
        stalled.close()


def _online(srv, user) -> list[str]:
    """Who ``GET /api/presence/`` says is online on the document."""
    import json
    import urllib.request

    request = urllib.request.Request(f"{srv.base_url}/api/presence/?docPath={PATH}",
                                     headers={"Authorization": f"Token {token_for(user)}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return [entry["username"] for entry in json.load(response)]
